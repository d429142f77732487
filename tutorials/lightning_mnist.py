"""Tutorial: search the hyperparameters of your own LightningModule and Trainer, with pruning.

    mpiexec -n 4 python -m mpi4py tutorials/lightning_mnist.py                       # digits: offline, ~1 min
    mpiexec -n 4 python -m mpi4py tutorials/lightning_mnist.py --data-dir ~/data     # MNIST (fetched once per node)
    tensorboard --logdir runs/lightning_mnist

Every rank trains one configuration at a time with a plain Lightning Trainer. EvohpoCallback reports the validation
accuracy after each epoch; the search stops (prunes) the trainings that fall behind the others of their island at
the same epoch, and breeds new candidates from the best ones.
"""

import argparse
import logging
import warnings

import lightning
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from mpi4py import MPI
from torch import nn
from torch.utils.data import DataLoader

import evohpo
from evohpo import Choice, Float, Int
from evohpo.hpo import EvohpoCallback
from evohpo.hpo.data import load_dataset
from evohpo.hpo.devices import setup_device
from evohpo.hpo.tensorboard import claim_run_dir

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


# 1. Your model: any LightningModule that logs the metric the search optimizes ("val_acc" here).
class MLP(lightning.LightningModule):
    """A multi-layer perceptron for 10 classes of small images."""

    def __init__(self, n_inputs: int, hidden: int, layers: int, activation: str, dropout: float, lr: float) -> None:
        super().__init__()
        self.lr = lr
        blocks: list[nn.Module] = [nn.Flatten()]
        width = n_inputs
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = hidden
        self.net = nn.Sequential(*blocks, nn.Linear(width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))  # averaged over the epoch
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data-dir", help="train on MNIST, read from (or downloaded to) this directory; "
                                       "without it, scikit-learn's 8x8 digits (offline)")
parser.add_argument("--epochs", type=int, default=6, help="epochs per training: the search's max_steps")
parser.add_argument("--generations", type=int, default=8, help="trainings per rank")
args = parser.parse_args()
comm = MPI.COMM_WORLD
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # one line per training is plenty
warnings.filterwarnings("ignore", ".*(does not have many workers|smaller than the logging interval|LeafSpec).*")

# 2. Where this rank trains (a GPU of its node, else a share of the CPU cores), and the data, in memory. MNIST is
#    downloaded once per node (node-local rank 0 fetches it while the node's other ranks wait).
device = setup_device(comm)
data = load_dataset("mnist" if args.data_dir else "digits", args.data_dir, comm=comm)
n_inputs = data.input_shape[0] * data.input_shape[1] * data.input_shape[2]

# 3. The search space.
space = {
    "hidden": Choice([32, 64, 128, 256]),
    "layers": Int(1, 3),
    "activation": Choice(list(ACTIVATIONS)),
    "dropout": Float(0.0, 0.5),
    "lr": Float(1e-4, 1e-1, log=True),  # a bad learning rate shows after an epoch or two: pruning's case
    "batch_size": Choice([32, 64, 128]),
}


# 4. The loss function: builds the model and the Trainer from one configuration, trains, returns the score.
def train(params: dict) -> float:
    ctx = evohpo.current()  # the evaluation in progress: its id names the TensorBoard run
    model = MLP(n_inputs, params["hidden"], params["layers"], params["activation"], params["dropout"], params["lr"])
    train_loader = DataLoader(data.train, batch_size=params["batch_size"], shuffle=True)
    val_loader = DataLoader(data.val, batch_size=512)
    run = claim_run_dir("runs/lightning_mnist", f"trial-{ctx.id}")  # a directory of its own, even when run again
    callback = EvohpoCallback(monitor="val_acc")  # reports, pruning, signals, SLURM/MPI-safe Trainer
    trainer = lightning.Trainer(
        max_epochs=args.epochs,
        accelerator=device.accelerator,
        devices=device.trainer_devices,
        callbacks=[callback],
        logger=TensorBoardLogger("runs/lightning_mnist", name="", version=run.name),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    trainer.fit(model, train_loader, val_loader)  # raises evohpo.Pruned when the search stops it: let it go
    return max(acc for _, acc in callback.history)  # the best validation accuracy of its epochs


# 5. Search: maximize the accuracy; max_steps=epochs turns on pruning (ASHA by default).
result = evohpo.optimize(train, space, comm=comm, direction="maximize", metric="val_acc", max_steps=args.epochs,
                         generations=args.generations, seed=1, checkpoint="checkpoints/lightning_mnist", resume=False)

if comm.rank == 0:
    print(f"best validation accuracy {result.best_value:.3f} (trial {result.best.id}) with {result.best.params}")
    print(f"{result.n_evaluations} trainings, {result.n_pruned} of them pruned; {result.n_steps} epochs trained")
