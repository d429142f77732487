"""Tutorial: evolve the hyperparameters of a small CNN, one Lightning training per MPI rank.

    mpiexec -n 4 python -m mpi4py tutorials/cnn_hpo.py
    tensorboard --logdir runs/tutorial

Every rank trains on its own device (a GPU if the node has some, else a share of the CPU cores), shares
each result with the other ranks, and breeds its next candidate from the best ones found so far.
"""

from mpi4py import MPI

import evohpo
from evohpo import Choice, Float
from evohpo.hpo.data import load_dataset
from evohpo.hpo.devices import setup_device
from evohpo.hpo.model import cnn_space
from evohpo.hpo.objective import LightningObjective

comm = MPI.COMM_WORLD

# 1. Where this rank trains: node-local rank modulo the visible GPUs, else CPU threads.
device = setup_device(comm)

# 2. Data in memory: scikit-learn's 8x8 digits need no download (try "mnist" with data_dir=...).
data = load_dataset("digits", comm=comm)

# 3. The search space: the library's CNN knobs, some of them narrowed or replaced.
space = {
    **cnn_space(max_channels=32),
    "lr": Float(1e-3, 3e-2, log=True),  # log scale
    "dropout": (0.0, 0.3),  # Propulate-style tuple: a float range
    "batch_size": Choice([32, 64, 128]),
}

# 4. The objective: params -> best validation accuracy, one TensorBoard run each; it declares
#    direction="maximize" and metric="val_acc", which optimize() takes over.
objective = LightningObjective(data, device=device, epochs=5, log_dir="runs/tutorial/trials")

# 5. Search: 6 trainings per rank; journals in checkpoints/tutorial let a rerun resume where it stopped.
result = evohpo.optimize(
    objective, space, comm=comm, generations=6, seed=1, checkpoint="checkpoints/tutorial", resume=False
)

if comm.rank == 0:
    print(f"best validation accuracy {result.best_value:.3f} after {result.n_evaluations} trainings")
    print("with", result.best.params)
    for ind, acc in zip(result.top[:3], result.top_values):
        print(f"  {acc:.3f}  {ind.id}  {ind.params}")
