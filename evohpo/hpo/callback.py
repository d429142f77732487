"""``EvohpoCallback``: the one Lightning callback a user's own ``lightning.Trainer`` needs inside ``evohpo.optimize``.

It reports the monitored validation metric after every epoch (``evohpo.report``), so that the search can prune the
training (``evohpo.Pruned`` then leaves ``trainer.fit``), and it makes the Trainer a single-process job of its own:
no cluster detection from SLURM or MPI, and no signal handler of Lightning's that would override evohpo's. Importing
this module imports Lightning.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
from lightning.fabric.plugins.environments import ClusterEnvironment
from lightning.pytorch.callbacks import Callback

from ..core import context
from ..core.reporting import report

__all__ = ["EvohpoCallback", "WorkerEnvironment"]

log = logging.getLogger("evohpo")

_HOOK_LOCK = threading.Lock()


class EvohpoCallback(Callback):
    """Reports a Lightning training to the evohpo search that runs it, lets the search prune it, and keeps the
    Trainer from mistaking the search's MPI/SLURM job for a distributed training of its own.

    Add it to the Trainer that the loss function of ``evohpo.optimize`` builds:

    ```python
    def loss_fn(params):
        model = MyModule(params)
        callback = EvohpoCallback(monitor="val_acc")
        trainer = lightning.Trainer(max_epochs=EPOCHS, callbacks=[callback])
        trainer.fit(model, train_loader, val_loader)  # raises evohpo.Pruned when the search stops it
        return max(value for _, value in callback.history)

    evohpo.optimize(loss_fn, space, direction="maximize", max_steps=EPOCHS)
    ```

    What it does inside an evaluation of a search (``evohpo.current()`` is not None):

    - **Reports**: after every training epoch that validated, ``evohpo.report(epoch, value, **metrics)`` with the
      epoch number (1, 2, ...), ``trainer.callback_metrics[monitor]`` of the epoch's last validation as the value
      (as logged: the search's ``direction`` says whether higher is better) and the epoch's other scalar metrics
      (``metrics``: its validation metrics and its training metrics logged ``on_epoch``). The report is made when
      the next epoch starts, or when training ends, so that the epoch's own training metrics are complete; no step
      of training happens in between. The sanity check and ``trainer.validate`` report nothing. A value that is not
      finite (a diverged training) is not reported.
    - **Pruning**: when the search stops the training, ``report`` raises ``evohpo.Pruned`` from the callback hook;
      Lightning then runs the ``on_exception`` hooks, finalizes every logger (status "failed": the TensorBoard run
      is flushed and closed, with every epoch logged so far), tears the Trainer down and re-raises, so ``Pruned``
      leaves ``trainer.fit``. Let it propagate out of the loss function: the worker records the training as
      ``pruned``, with its curve.
    - **Signals**: Lightning's SIGTERM handler is not installed (it would turn SIGTERM into a ``SystemExit`` at the
      next batch, ignoring evohpo's grace period), nor its SLURM auto-requeue handler for SIGUSR1: evohpo's stop
      handlers stay in place during ``fit``.
    - **Environment**: a Trainer constructed with this callback in ``callbacks`` gets a ``LightningEnvironment``
      (one process, rank 0, no SLURM, MPI, LSF or TorchElastic detection), unless ``plugins`` or the ``strategy``
      already name a cluster environment. Lightning would otherwise take ``srun``'s variables as its own world
      (``--ntasks=2 ... is not supported``, every trial failing) or the MPI ranks of the search as one DDP job.
      Lightning picks the environment in ``Trainer.__init__``, before any callback hook, so the first
      ``EvohpoCallback`` made in a process wraps ``lightning.pytorch.Trainer.__init__`` once: Trainers without an
      ``EvohpoCallback`` are left as they are. Lightning's rank-zero logging is set to rank 0 (under ``srun``
      Lightning guesses the rank from ``SLURM_PROCID`` and would drop the logs of every other rank).
    - **Several ranks per individual** (``optimize(..., ranks_per_worker=k)``): the Trainer becomes a DDP training
      over the worker's k ranks instead, one device per rank (``WorkerEnvironment``; the process group of
      ``evohpo.hpo.distributed``, set up once per worker and reused). Every rank reports; the worker's root
      decides, so all k stop at the same epoch. Only the root's loggers write (Lightning's rank zero).

    Outside an evaluation (the same script run on its own) the callback only keeps ``history`` and checks
    ``monitor``; the Trainer is left as Lightning makes it, unless ``isolate=True``.

    Attributes:
        history: ``(epoch, value)`` of the monitored metric for every epoch of the last ``fit`` that validated
            (kept inside a search or not): ``max(v for _, v in callback.history)`` is the best accuracy.
        reported: the points handed to ``evohpo.report`` in the last ``fit``.

    Args:
        monitor: the logged metric to report (``self.log("val_acc", ...)`` in ``validation_step`` or
            ``on_validation_epoch_end``). A name that was not logged is a ValueError naming the metrics that were.
        metrics: the other logged metrics kept with each point: True (every scalar one), False (none) or names.
        isolate: make the Trainer a single process and leave the signals to evohpo: None (default) inside an
            evohpo evaluation only, True always, False never (e.g. a DDP training of its own across several ranks).
    """

    def __init__(self, monitor: str = "val_acc", *, metrics: bool | Sequence[str] = True,
                 isolate: bool | None = None) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be the name of a logged metric, got {monitor=}")
        if isolate is not None and not isinstance(isolate, bool):
            raise ValueError(f"isolate must be None, True or False, got {isolate=}")
        if not isinstance(metrics, bool) and (isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics)):
            raise ValueError(f"metrics must be True, False or a sequence of metric names, got {metrics=}")
        self.monitor = monitor
        self.metrics: bool | tuple[str, ...] = metrics if isinstance(metrics, bool) else tuple(metrics)
        self.isolate = isolate
        self.history: list[tuple[int, float]] = []  # (epoch, monitored value) of every epoch that validated
        self.reported: list[tuple[int, float]] = []  # the points handed to evohpo.report in this fit
        self._validated: float | None = None  # the last validation's value in the epoch running
        self._due: tuple[int, float] | None = None  # the epoch that ended, to report
        _install_trainer_hook()

    def isolating(self) -> bool:
        """Whether this callback isolates the Trainer now: ``isolate``, or inside an evohpo evaluation."""
        return self.isolate if self.isolate is not None else context.current() is not None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Runs in every ``fit``/``validate``/... just before Lightning would install its signal handlers: when
        isolating, it keeps them out."""
        self._validated = self._due = None
        if stage == "fit":
            self.history, self.reported = [], []
        if self.isolating():
            if worker_comm() is None:
                _single_process_lightning()
            _keep_lightning_off_the_signals(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Takes the monitored value of a validation during ``fit`` (the last one of an epoch is reported)."""
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        logged = trainer.callback_metrics
        if self.monitor not in logged:
            available = ", ".join(sorted(logged)) or "none"
            raise ValueError(f"EvohpoCallback(monitor={self.monitor!r}): no metric {self.monitor!r} was logged in "
                             f"this validation; the logged metrics are: {available} (log it with self.log("
                             f"{self.monitor!r}, ...) in validation_step or on_validation_epoch_end)")
        value = _scalar(logged[self.monitor])
        if value is None:
            raise ValueError(f"EvohpoCallback(monitor={self.monitor!r}): the metric is not a number (a scalar), got "
                             f"{logged[self.monitor]!r}")
        self._validated = value

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The epoch's point: its number and its last validation's value (reported once the epoch's own metrics
        are in ``callback_metrics``: at the next epoch's start or at the end of training)."""
        if self._validated is None:
            return
        point, self._validated = (trainer.current_epoch + 1, self._validated), None
        self.history.append(point)
        self._due = point

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Reports the previous epoch before this one trains; ``evohpo.Pruned`` from here stops ``fit``."""
        self._report_due(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Reports the last epoch."""
        self._report_due(trainer)

    def _report_due(self, trainer: pl.Trainer) -> None:
        """``evohpo.report`` the epoch that ended last, inside an evaluation (may raise ``evohpo.Pruned``)."""
        if self._due is None:
            return
        (epoch, value), self._due = self._due, None
        ctx = context.current()
        if ctx is None or getattr(ctx, "reporter", None) is None:
            return
        if not math.isfinite(value):
            log.warning("EvohpoCallback: %s=%s at epoch %d is not reported (not a finite number)", self.monitor,
                        value, epoch)
            return
        self.reported.append((epoch, value))
        report(epoch, value, **self._extras(trainer.callback_metrics))

    def _extras(self, logged: Any) -> dict[str, float]:
        """The other metrics kept with the point: finite scalars, by ``metrics``."""
        if self.metrics is False:
            return {}
        names = [k for k in logged if k != self.monitor] if self.metrics is True else self.metrics
        out = {}
        for name in names:
            v = _scalar(logged[name]) if name in logged and name != self.monitor else None
            if v is not None and math.isfinite(v):
                out[name] = v
        return out

    def __repr__(self) -> str:
        return f"EvohpoCallback(monitor={self.monitor!r}, metrics={self.metrics!r}, isolate={self.isolate!r})"


def _scalar(v: Any) -> float | None:
    """``v`` as a float when it holds one number (a tensor of one element, a Python or numpy number), else None."""
    if isinstance(v, bool) or v is None or isinstance(v, (str, bytes)):
        return None
    try:
        if hasattr(v, "numel"):
            return float(v.detach().float().item()) if v.numel() == 1 else None
        return float(v)
    except (TypeError, ValueError):
        return None


def _single_process_lightning() -> None:
    """Make Lightning treat this process as rank 0 of a one-process job.

    Lightning guesses its rank from RANK/LOCAL_RANK/SLURM_PROCID/JSM_NAMESPACE_RANK at import time and then drops
    all logging (``rank_zero_only``) on ranks other than 0; every evohpo worker trains on its own.
    """
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    rank_zero_only.rank = 0


def _keep_lightning_off_the_signals(trainer: Any) -> None:
    """Keep Lightning from installing its SIGTERM (and SLURM SIGUSR1) handler in this Trainer's runs.

    ``Trainer._run`` calls ``_signal_connector.register_signal_handlers()`` after the ``setup`` hooks and before
    training; its handler raises ``SIGTERMException`` (a ``SystemExit``) at the next batch, whatever evohpo's grace
    period says. Without it, the connector's teardown restores nothing (it saved no handlers).
    """
    connector = getattr(trainer, "_signal_connector", None)
    if connector is None or not hasattr(connector, "register_signal_handlers"):
        warnings.warn("EvohpoCallback: this Lightning version has no Trainer._signal_connector; its signal handlers "
                      "may replace evohpo's during fit", RuntimeWarning, stacklevel=2)
        return
    connector.register_signal_handlers = _no_signal_handlers


def _no_signal_handlers() -> None:
    """Lightning's ``register_signal_handlers``, replaced: evohpo owns SIGTERM and SIGUSR1."""


def _install_trainer_hook() -> None:
    """Wrap ``lightning.pytorch.Trainer.__init__`` (once per process) so that a Trainer constructed with an isolating
    ``EvohpoCallback`` gets a ``LightningEnvironment`` as its cluster environment (see ``EvohpoCallback``)."""
    with _HOOK_LOCK:
        init = pl.Trainer.__init__
        if getattr(init, "_evohpo_hook", False):
            return

        @functools.wraps(init)
        def __init__(self: pl.Trainer, *args: Any, **kwargs: Any) -> None:  # noqa: N807 (it becomes Trainer.__init__)
            comm = worker_comm()
            if _isolates(kwargs.get("callbacks")) and comm is not None:
                kwargs = _ddp_over_worker(kwargs, comm)
            elif _isolates(kwargs.get("callbacks")):
                kwargs["plugins"] = _with_lightning_environment(kwargs.get("plugins"), kwargs.get("strategy"))
                _single_process_lightning()
                # Lightning's checkpoint connector probes for SLURM on every fit; under mpirun on a SLURM machine it
                # warns that `srun` is available but not used: not a mistake in an evohpo search.
                warnings.filterwarnings("ignore", ".*`srun` command is available on your system.*")
            init(self, *args, **kwargs)

        __init__._evohpo_hook = True  # type: ignore[attr-defined]
        pl.Trainer.__init__ = __init__  # type: ignore[method-assign]


def worker_comm() -> Any:
    """The communicator of the running evaluation's worker when several ranks evaluate it together, else None."""
    comm = getattr(context.current(), "comm", None)
    return comm if comm is not None and comm.Get_size() > 1 else None


class WorkerEnvironment(ClusterEnvironment):
    """Lightning's view of one worker of ``ranks_per_worker=k`` ranks: k "nodes" of one device each (rank r is node
    r, local rank 0), so that every rank trains on the one device its Trainer names; the processes exist already
    and their process group too (``evohpo.hpo.distributed``), so Lightning neither launches nor connects."""

    def __init__(self, rank: int, size: int) -> None:
        self._rank, self._size = rank, size

    @property
    def creates_processes_externally(self) -> bool:
        return True

    @property
    def main_address(self) -> str:
        return "127.0.0.1"  # (unused: the process group is up before the Trainer connects)

    @property
    def main_port(self) -> int:
        return 0

    @staticmethod
    def detect() -> bool:
        return False

    def world_size(self) -> int:
        return self._size

    def set_world_size(self, size: int) -> None:
        if size != self._size:
            raise ValueError(f"the Trainer asks for {size} processes, but the worker has {self._size} ranks: one "
                             "device per rank (devices=1 or [index]) and num_nodes left to evohpo")

    def global_rank(self) -> int:
        return self._rank

    def set_global_rank(self, rank: int) -> None:
        pass  # the worker's rank, fixed

    def local_rank(self) -> int:
        return 0

    def node_rank(self) -> int:
        return self._rank


def _ddp_over_worker(kwargs: dict[str, Any], comm: Any) -> dict[str, Any]:
    """Trainer arguments for a DDP training over the worker's ranks: its process group (set up now, collective),
    a ``WorkerEnvironment``, ``strategy="ddp"`` unless the user chose a strategy object, one device per rank."""
    from lightning.pytorch.strategies import DDPStrategy

    from .distributed import process_group

    devices = kwargs.get("devices", "auto")
    if not (devices in ("auto", 1, -1) or (isinstance(devices, (list, tuple)) and len(devices) == 1)):
        raise ValueError(f"devices={devices!r}: with ranks_per_worker each rank of the worker trains on one device "
                         "(devices=1 or [index]); the worker's ranks are the DDP processes")
    process_group()
    out = dict(kwargs)
    items = _plugin_list(out.get("plugins"))
    if not any(isinstance(p, ClusterEnvironment) for p in items):
        items = [*items, WorkerEnvironment(comm.Get_rank(), comm.Get_size())]
    out["plugins"] = items
    if isinstance(out.get("strategy", "auto"), str) and out.get("strategy", "auto") in ("auto", "ddp"):
        out["strategy"] = DDPStrategy()
    out["num_nodes"] = comm.Get_size()
    out["devices"] = 1 if devices in ("auto", -1) else devices
    return out


def _plugin_list(plugins: Any) -> list[Any]:
    """A Trainer's ``plugins`` argument (None, one plugin or a sequence) as a list."""
    return [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]


def _isolates(callbacks: Any) -> bool:
    """Whether ``callbacks`` (a list, one callback or None) hold an ``EvohpoCallback`` that isolates now."""
    if callbacks is None:
        return False
    items = callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]
    return any(isinstance(cb, EvohpoCallback) and cb.isolating() for cb in items)


def _with_lightning_environment(plugins: Any, strategy: Any = None) -> Any:
    """``plugins`` plus a ``LightningEnvironment``, unless they or the ``strategy`` object already name a cluster
    environment (the user's choice wins)."""
    from lightning.fabric.plugins.environments import LightningEnvironment

    items = _plugin_list(plugins)
    if any(isinstance(p, ClusterEnvironment) for p in items):
        return plugins
    if getattr(strategy, "cluster_environment", None) is not None:
        return plugins
    return [*items, LightningEnvironment()]
