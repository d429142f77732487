"""Workers of several ranks under ``mpiexec -n N python -m mpi4py tests/mpi_group.py SCENARIO K CHECKPOINT BUDGET``.

Scenarios (each rank of a worker calls the loss; ``test_group_mpi.py`` asserts on what they saw):

- ``mpi``: the loss all-reduces over ``evohpo.current().comm``; a non-root rank raises for x in [0.8, 0.9) and
  returns a different loss for x in [0.7, 0.75); every rank reports 3 steps.
- ``torch``: a gloo process group per worker (``evohpo.hpo.distributed``); 6 steps of all-reduce; a non-root rank
  raises before the first all-reduce for x in [0.8, 0.9), while its root waits in that all-reduce; ASHA prunes.
- ``stop``: as ``torch`` with 40 steps of 50 ms, no pruning; world rank 0 sends itself SIGTERM during its third
  evaluation (not when resuming); the grace period is 0.3 s, so the running trainings are interrupted on every rank
  of every worker.
- ``stop-mpi``: as ``stop`` without collectives: the followers learn of the grace period from their root.
- ``lightning``: a user's own LightningModule and Trainer with ``EvohpoCallback`` (DDP over the worker, gloo):
  4 epochs of a linear model, ASHA at epochs 1 and 3; a non-root rank raises in its second training step for
  x in [0.55, 0.95) while its root waits in DDP's gradient all-reduce.

World rank 0 prints one JSON line (prefixed ``RESULT``): each rank's calls (id, worker, rank in the worker, size,
what happened), its process group setups, and the result's counts and failures.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from mpi4py import MPI

import evohpo
from evohpo.core.reporting import Pruned


def main(scenario: str, k: str, checkpoint: str, budget: str) -> None:
    world = MPI.COMM_WORLD
    calls: list[dict] = []
    fresh = world.bcast(not os.path.exists(checkpoint))  # (a resumed search gets no signal)

    def mpi_loss(params: dict) -> float:
        ctx = evohpo.current()
        comm, x = ctx.comm, params["x"]
        call = {"id": ctx.id, "worker": ctx.rank, "rank": comm.rank, "size": comm.size, "what": "ok"}
        calls.append(call)
        value = comm.allreduce(x) / comm.size
        for step in range(1, 4):
            evohpo.report(step, value + 1.0 / step)
        if 0.8 <= x < 0.9 and comm.rank == comm.size - 1:
            call["what"] = "raised"
            raise ValueError(f"injected failure on rank {comm.rank} of the worker")
        if 0.7 <= x < 0.75 and comm.rank == comm.size - 1:
            call["what"] = "differs"
            return value + 1.0
        return value

    def torch_loss(params: dict) -> float:
        import torch
        import torch.distributed as dist

        from evohpo.hpo.distributed import process_group

        ctx = evohpo.current()
        comm, x = ctx.comm, params["x"]
        call = {"id": ctx.id, "worker": ctx.rank, "rank": comm.rank, "size": comm.size, "what": "ok"}
        calls.append(call)
        collective = scenario != "stop-mpi"
        if collective:
            process_group()
        steps, pause = (40, 0.05) if scenario.startswith("stop") else (6, 0.0)
        if scenario.startswith("stop") and fresh and world.rank == 0 and len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        value = 0.0
        try:
            for step in range(1, steps + 1):
                if step == 1 and 0.8 <= x < 0.9 and comm.rank == comm.size - 1:
                    call["what"] = "raised"
                    raise ValueError(f"injected failure on rank {comm.rank} of the worker")
                time.sleep(pause)
                t = torch.tensor([x + step]) * (1 if collective else comm.size)
                if collective:
                    dist.all_reduce(t)
                value = float(t) / comm.size - step
                if collective:  # (without: nothing but the root's ARM tells a follower of the grace period)
                    evohpo.report(step, (value - 0.3) ** 2 + 1.0 / step)
        except Pruned:
            call["what"] = "pruned"
            raise
        except ValueError:
            raise
        except BaseException as e:
            call["what"] = type(e).__name__
            raise
        return (value - 0.3) ** 2 + 1.0 / steps

    def lightning_loss(params: dict) -> float:
        import lightning
        import torch

        from evohpo.hpo import EvohpoCallback

        ctx = evohpo.current()
        comm, x = ctx.comm, params["x"]
        call = {"id": ctx.id, "worker": ctx.rank, "rank": comm.rank, "size": comm.size, "what": "ok"}
        calls.append(call)

        class Linear(lightning.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.w = torch.nn.Linear(1, 1)

            def training_step(self, batch: Any, i: int) -> Any:
                if self.current_epoch == 0 and i == 1 and 0.55 <= x < 0.95 and comm.rank == comm.size - 1:
                    call["what"] = "raised"
                    raise ValueError(f"injected failure on rank {comm.rank} of the worker")
                u, v = batch
                return ((self.w(u) - v) ** 2).mean()

            def validation_step(self, batch: Any, i: int) -> None:
                u, v = batch
                self.log("score", ((self.w(u) - v) ** 2).mean() + (x - 0.3) ** 2, sync_dist=True)

            def configure_optimizers(self) -> Any:
                return torch.optim.SGD(self.parameters(), lr=0.1)

        g = torch.Generator().manual_seed(0)
        u = torch.rand(64, 1, generator=g)
        data = torch.utils.data.TensorDataset(u, 2 * u)
        loader = torch.utils.data.DataLoader(data, batch_size=8)
        cb = EvohpoCallback("score", metrics=False)
        trainer = lightning.Trainer(max_epochs=4, callbacks=[cb], logger=False, enable_checkpointing=False,
                                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
        try:
            trainer.fit(Linear(), loader, loader)
        except Pruned:
            call["what"] = "pruned"
            raise
        call["world_size"] = trainer.world_size
        return min(v for _, v in cb.history)

    loss = {"mpi": mpi_loss, "lightning": lightning_loss}.get(scenario, torch_loss)
    kw = {"max_steps": 3, "pruner": "none"} if scenario == "mpi" else \
        {"max_steps": 4, "pruner": "asha"} if scenario == "lightning" else \
        {"max_steps": 40, "pruner": "none"} if scenario.startswith("stop") else {"max_steps": 6, "pruner": "asha"}
    # the GA's exploration reaches the failure-injecting ranges of x; CMA-ES (the default for a float space)
    # converges to x = 0.3 and may never sample them in a short search
    r = evohpo.optimize(loss, {"x": (0.0, 1.0)}, comm=world, ranks_per_worker=int(k), max_evaluations=int(budget),
                        seed=5, checkpoint=checkpoint, progress_interval=1e9, grace_period=0.3, max_failures=None,
                        propagator="ga+cmaes", **kw)
    setups = []
    if scenario in ("torch", "stop", "lightning"):
        from evohpo.hpo.distributed import setups as setup_times

        setups = setup_times()
    failed = [{"id": i.id, "x": i.params["x"], "error": i.error, "status": i.status}
              for i in evohpo.load(checkpoint).individuals if i.status != "ok"] if world.rank == 0 else []
    seen = world.gather({"world": world.rank, "calls": calls, "setups": setups, "reason": r.reason,
                         "n_evaluations": r.n_evaluations, "n_failed": r.n_failed, "n_pruned": r.n_pruned,
                         "best": r.best_value})
    if world.rank == 0:
        print("RESULT " + json.dumps({"ranks": seen, "failed": failed}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
