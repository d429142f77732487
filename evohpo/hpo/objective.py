"""The Lightning objective: ``loss_fn(params)`` that trains the CNN on this rank's device and returns its best
validation accuracy or loss, one TensorBoard run per evaluation. torch and Lightning are imported inside the
call."""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import signal
import threading
import time
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import context
from .model import DEFAULTS, _make_module
from .tensorboard import claim_run_dir

if TYPE_CHECKING:
    from .data import ImageData
    from .devices import DeviceChoice

METRICS = ("val_acc", "val_loss")


def _loader(dataset: Any, batch_size: int, shuffle: bool, seed: int) -> Any:
    """A DataLoader that slices whole batches out of in-memory tensors (no per-sample collation)."""
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

    if shuffle:
        sampler: Any = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last=False))


def _single_process_lightning() -> None:
    """Make Lightning treat this process as rank 0 of a one-process job.

    Lightning guesses its rank from RANK/LOCAL_RANK/SLURM_PROCID at import time and then drops all
    logging (``rank_zero_only``) on ranks other than 0; every evohpo worker trains on its own.
    """
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    rank_zero_only.rank = 0


def _disable_lightning_signal_handlers(trainer: Any) -> None:
    """Keep Lightning from installing its SIGTERM handler during ``fit`` (evohpo owns the signals).

    Lightning's ``_SignalConnector.register_signal_handlers`` always wraps SIGTERM (and raises
    ``SIGTERMException``, a ``SystemExit``, at the next batch); its SIGUSR1 auto-requeue handler is
    installed only with a ``SLURMEnvironment``, which ``LightningEnvironment`` already rules out.
    """
    connector = getattr(trainer, "_signal_connector", None)
    if connector is not None and hasattr(connector, "register_signal_handlers"):
        connector.register_signal_handlers = lambda: None


def _params_seed(params: Mapping[str, Any], seed: int) -> int:
    """A seed that depends only on the configuration and the base seed."""
    text = json.dumps({k: params[k] for k in sorted(params)}, default=str)
    return (zlib.crc32(text.encode()) + seed) % 2**31


def _hparam_value(v: Any) -> Any:
    """A value TensorBoard's HParams plugin can show (number, string or bool)."""
    if isinstance(v, (bool, int, float, str)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


class LightningObjective:
    """``loss_fn(params) -> float`` that trains a CNN with Lightning and returns its best validation score.

    The score is the best validation accuracy (``metric="val_acc"``, ``direction`` "maximize") or the best
    validation cross-entropy (``metric="val_loss"``, "minimize"), as it is; ``optimize`` reads ``direction``
    and ``metric`` from the objective, so it maximizes the accuracy without being told. Every call is one
    TensorBoard run of its own under ``log_dir``, ``trial-<id>`` after the evaluation in progress
    (:func:`evohpo.context.current`; ``trial-<id>.attempt-2`` when that trial is run again), with its
    hyperparameters and final metrics in the HParams dashboard. ``callbacks`` are extra Lightning callbacks
    for every training.
    """

    def __init__(
        self,
        data: ImageData,
        *,
        device: DeviceChoice | None = None,
        epochs: int = 10,
        metric: str = "val_acc",
        log_dir: str | os.PathLike[str] | None = "runs/trials",
        patience: int = 3,
        seed: int = 0,
        callbacks: Sequence[Any] = (),
        quiet: bool = True,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs=}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric=}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience=}")
        self.data = data
        self.device = device
        self.epochs = epochs
        self.metric = metric
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.patience = patience
        self.seed = seed
        self.callbacks = list(callbacks)
        self.quiet = quiet
        self._counter = itertools.count()

    @property
    def direction(self) -> str:
        """How ``optimize`` should treat the returned score: "maximize" the accuracy, "minimize" the loss."""
        return "maximize" if self.metric == "val_acc" else "minimize"

    def run_name(self) -> str:
        """The TensorBoard run of the evaluation in progress, ``trial-<id>`` (from its context), else
        ``local-<pid>-<n>``; a second attempt at the same trial gets ``.attempt-2`` (``claim_run_dir``)."""
        ctx = context.current()
        if ctx is None:
            return f"local-{os.getpid()}-{next(self._counter):04d}"
        return f"trial-{ctx.id}".replace("/", "_").replace(os.sep, "_")

    def _trainer(self, logger: Any, steps_per_epoch: int) -> Any:
        """A Trainer for one training on this rank's device, with early stopping on the metric."""
        import lightning
        from lightning.pytorch.callbacks import EarlyStopping
        from lightning.pytorch.plugins.environments import LightningEnvironment

        mode = "max" if self.metric == "val_acc" else "min"
        device = self.device
        return lightning.Trainer(
            accelerator="gpu" if device is not None and device.accelerator == "gpu" else "cpu",
            devices=device.trainer_devices if device is not None else 1,
            max_epochs=self.epochs,
            logger=logger,
            callbacks=[EarlyStopping(self.metric, mode=mode, patience=self.patience), *self.callbacks],
            # LightningEnvironment: no SLURM/MPI cluster detection, hence no SLURM auto-requeue (SIGUSR1)
            # handler and no multi-process world built from SLURM_NTASKS or the MPI communicator.
            plugins=[LightningEnvironment()],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_autolog_hparams=False,
            num_sanity_val_steps=0,
            log_every_n_steps=max(1, min(50, steps_per_epoch)),
            default_root_dir=self.log_dir or ".",
        )

    def __call__(self, params: dict[str, Any]) -> float:
        """Train one configuration; return its best validation score (accuracy or loss, per ``metric``)."""
        import torch
        from lightning.pytorch.loggers import TensorBoardLogger

        _single_process_lightning()
        if self.quiet:
            for name in ("lightning.pytorch", "lightning.fabric"):
                logging.getLogger(name).setLevel(logging.WARNING)
        batch_size = int(params.get("batch_size", DEFAULTS["batch_size"]))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
        seed = _params_seed(params, self.seed)
        torch.manual_seed(seed)
        module = _make_module(params, self.data.input_shape, self.data.num_classes)
        train = _loader(self.data.train, batch_size, shuffle=True, seed=seed)
        val = _loader(self.data.val, 512, shuffle=False, seed=seed)

        logger: Any = False
        if self.log_dir is not None:
            run = claim_run_dir(self.log_dir, self.run_name())  # never shared: one directory per attempt
            logger = TensorBoardLogger(self.log_dir, name="", version=run.name, default_hp_metric=False)
        trainer = self._trainer(logger, steps_per_epoch=len(train))
        _disable_lightning_signal_handlers(trainer)
        start = time.perf_counter()
        sigint = signal.getsignal(signal.SIGINT)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*GPU available but not used.*")
            warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*", FutureWarning)
            # Lightning probes for SLURM on every fit (checkpoint resume) even with LightningEnvironment.
            warnings.filterwarnings("ignore", ".*`srun` command is available on your system.*")
            try:
                trainer.fit(module, train, val)
            except SystemExit as exc:
                # Lightning turns Ctrl-C into SIGINT ignored + sys.exit(1); give the caller its interrupt back.
                if isinstance(exc.__context__, KeyboardInterrupt):
                    if sigint is not None and threading.current_thread() is threading.main_thread():
                        signal.signal(signal.SIGINT, sigint)
                    raise KeyboardInterrupt from None
                raise
        best_acc, best_loss = module.best_val_acc, module.best_val_loss
        if logger:
            hparams = {k: _hparam_value(v) for k, v in params.items()}
            metrics = {
                "hp/best_val_acc": best_acc,
                "hp/best_val_loss": best_loss if math.isfinite(best_loss) else float("nan"),
                "hp/epochs": float(trainer.current_epoch),
                "hp/train_seconds": time.perf_counter() - start,
            }
            logger.log_hyperparams(hparams, metrics=metrics, step=trainer.global_step)
            logger.finalize("success")
        return best_acc if self.metric == "val_acc" else best_loss
