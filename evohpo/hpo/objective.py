"""The Lightning objective: ``loss_fn(params)`` that trains the CNN on this rank's device and returns its best
validation accuracy or loss, one TensorBoard run per evaluation, reports every epoch to the search (which may prune
the training) and keeps the weights of the trainings that beat their island's best under ``CHECKPOINT/models``.
torch and Lightning are imported inside the call."""

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
from ..core.reporting import Pruned
from ..journal.directory import model_path
from .model import DEFAULTS, _make_module
from .tensorboard import claim_run_dir

if TYPE_CHECKING:
    from .data import ImageData
    from .devices import DeviceChoice

METRICS = ("val_acc", "val_loss")

log = logging.getLogger("evohpo")


def _loader(dataset: Any, batch_size: int, shuffle: bool, seed: int, shard: tuple[int, int] | None = None) -> Any:
    """A DataLoader that slices whole batches out of in-memory tensors (no per-sample collation); with ``shard`` =
    (rank, ranks) the rank's part for a DDP training: training batches from a ``DistributedSampler`` (the same
    number on every rank, reshuffled each epoch), validation batches from every ranks-th sample (each once)."""
    import torch
    from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, SequentialSampler

    if shard is not None and shuffle:
        sampler: Any = DistributedSampler(dataset, num_replicas=shard[1], rank=shard[0], shuffle=True, seed=seed)
    elif shard is not None:
        sampler = range(shard[0], len(dataset), shard[1])
    elif shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    batches = BatchSampler(sampler, batch_size, drop_last=False)
    if hasattr(sampler, "set_epoch"):  # Lightning calls the loader's sampler's set_epoch every epoch: reshuffle
        batches.set_epoch = sampler.set_epoch  # type: ignore[attr-defined]
    return DataLoader(dataset, batch_size=None, sampler=batches)


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

    Every epoch's validation score is reported to the search (:class:`evohpo.hpo.EvohpoCallback`): with
    ``optimize(..., max_steps=epochs)`` its pruner may stop a training early, which then raises ``evohpo.Pruned``
    (its TensorBoard run keeps the epochs it trained, and its HParams say ``hp/pruned`` 1). Inside a search with a
    checkpoint directory, a training whose score beats the best its island knew when it started (``island_best`` of
    the evaluation's context) keeps the weights of its best epoch in ``CHECKPOINT/models/trial-<id>.pt``
    (:func:`best_model_path`, :func:`load_model`): the best training of the search is always kept, and only a few
    others.
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

    def _trainer(self, logger: Any, steps_per_epoch: int, extra: Sequence[Any] = (), ddp: bool = False) -> Any:
        """A Trainer for one training on this rank's device, with early stopping on the metric and reports; with
        ``ddp`` one rank of a DDP training over the worker's ranks (``EvohpoCallback`` makes it one)."""
        import lightning
        from lightning.pytorch.callbacks import EarlyStopping
        from lightning.pytorch.plugins.environments import LightningEnvironment

        from .callback import EvohpoCallback

        mode = "max" if self.metric == "val_acc" else "min"
        device = self.device
        return lightning.Trainer(
            accelerator="gpu" if device is not None and device.accelerator == "gpu" else "cpu",
            devices=device.trainer_devices if device is not None else 1,
            max_epochs=self.epochs,
            logger=logger,
            callbacks=[EvohpoCallback(self.metric, isolate=True), EarlyStopping(self.metric, mode=mode,
                                                                                patience=self.patience),
                       *extra, *self.callbacks],
            # LightningEnvironment: no SLURM/MPI cluster detection, hence no SLURM auto-requeue (SIGUSR1)
            # handler and no multi-process world built from SLURM_NTASKS or the MPI communicator (EvohpoCallback
            # with isolate=True would add it; named here all the same).
            plugins=[] if ddp else [LightningEnvironment()],
            use_distributed_sampler=False,  # (DDP: the loaders are the rank's shards already)
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_autolog_hparams=False,
            num_sanity_val_steps=0,
            log_every_n_steps=max(1, min(50, steps_per_epoch)),
            default_root_dir=self.log_dir or ".",
        )

    def _signed(self, value: float) -> float:
        """What the search minimizes for a score: minus the accuracy, the loss as it is."""
        return -value if self.metric == "val_acc" else value

    def __call__(self, params: dict[str, Any]) -> float:
        """Train one configuration; return its best validation score (accuracy or loss, per ``metric``)."""
        import torch
        from lightning.pytorch.loggers import TensorBoardLogger

        from .callback import _single_process_lightning, worker_comm

        comm = worker_comm()  # several ranks train this configuration together (DDP), or None
        root = comm is None or comm.Get_rank() == 0  # (the one that logs and keeps weights)
        if comm is None:
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
        shard = None if comm is None else (comm.Get_rank(), comm.Get_size())
        train = _loader(self.data.train, batch_size, shuffle=True, seed=seed, shard=shard)
        val = _loader(self.data.val, 512, shuffle=False, seed=seed, shard=shard)

        logger: Any = False
        if self.log_dir is not None and root:  # one run per training
            run = claim_run_dir(self.log_dir, self.run_name())  # never shared: one directory per attempt
            logger = TensorBoardLogger(self.log_dir, name="", version=run.name, default_hp_metric=False)
        ctx = context.current()
        to_beat = None  # the signed score a training must beat to keep its weights (None: keep none)
        if ctx is not None and ctx.checkpoint is not None and root:
            to_beat = float(getattr(ctx, "island_best", math.inf))  # (an EvalContext without the field: inf)
        start = time.perf_counter()
        trial = _trial_callback(self, params, logger, start, to_beat)
        trainer = self._trainer(logger, steps_per_epoch=len(train), extra=[trial], ddp=comm is not None)
        sigint = signal.getsignal(signal.SIGINT)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*GPU available but not used.*")
            warnings.filterwarnings("ignore", ".*sync_dist=True.*")  # (DDP: the validation metrics are global)
            warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*", FutureWarning)
            # Lightning probes for SLURM on every fit (checkpoint resume) even with LightningEnvironment.
            warnings.filterwarnings("ignore", ".*`srun` command is available on your system.*")
            try:
                trainer.fit(module, train, val)  # evohpo.Pruned when the search stops it: the worker records that
            except SystemExit as exc:
                # Lightning turns Ctrl-C into SIGINT ignored + sys.exit(1); give the caller its interrupt back.
                if isinstance(exc.__context__, KeyboardInterrupt):
                    if sigint is not None and threading.current_thread() is threading.main_thread():
                        signal.signal(signal.SIGINT, sigint)
                    raise KeyboardInterrupt from None
                raise
        score = module.best_val_acc if self.metric == "val_acc" else module.best_val_loss
        if logger:
            self._summarize(logger, params, module, trainer, start, pruned=False)
            logger.finalize("success")
        if ctx is not None and to_beat is not None and trial.weights is not None and self._signed(score) < to_beat:
            self._keep(ctx, params, score, trial)
        return score

    def _summarize(self, logger: Any, params: Mapping[str, Any], module: Any, trainer: Any, start: float,
                   pruned: bool) -> None:
        """The run's hyperparameters and final metrics, for TensorBoard's HParams dashboard."""
        hparams = {k: _hparam_value(v) for k, v in params.items()}
        best_loss = module.best_val_loss
        metrics = {
            "hp/best_val_acc": module.best_val_acc,
            "hp/best_val_loss": best_loss if math.isfinite(best_loss) else float("nan"),
            "hp/epochs": float(trainer.current_epoch),
            "hp/train_seconds": time.perf_counter() - start,
            "hp/pruned": float(pruned),
        }
        logger.log_hyperparams(hparams, metrics=metrics, step=trainer.global_step)

    def _keep(self, ctx: Any, params: Mapping[str, Any], score: float, trial: Any) -> None:
        """Save the best epoch's weights of a training that beat its island's best (a failure only warns)."""
        info = {"id": str(ctx.id), "params": {k: _plain(v) for k, v in params.items()}, "value": float(score),
                "metric": self.metric, "direction": self.direction, "epoch": trial.epoch,
                "input_shape": tuple(self.data.input_shape), "num_classes": int(self.data.num_classes),
                "dataset": self.data.name}
        try:
            save_model(ctx.checkpoint, ctx.id, trial.weights, **info)
        except OSError as e:
            log.warning("trial %s: could not keep its weights in %s: %s", ctx.id, model_path(ctx.checkpoint, ctx.id), e)


def _trial_callback(objective: LightningObjective, params: Mapping[str, Any], logger: Any, start: float,
                    to_beat: float | None) -> Any:
    """The objective's own callback for one training: the HParams summary of a pruned training (written before
    Lightning closes the logger) and, when ``to_beat`` is given, a copy of the weights of the best epoch that beats
    it (``weights``, ``epoch``)."""
    from lightning.pytorch.callbacks import Callback

    class TrialCallback(Callback):
        def __init__(self) -> None:
            self.weights: dict[str, Any] | None = None
            self.epoch: int | None = None
            self.best = math.inf if to_beat is None else to_beat

        def on_validation_end(self, trainer: Any, module: Any) -> None:
            if to_beat is None or trainer.sanity_checking:
                return
            value = trainer.callback_metrics.get(objective.metric)
            signed = objective._signed(float(value)) if value is not None else math.inf
            if math.isfinite(signed) and signed < self.best:  # better than every epoch before and than the island
                self.best, self.epoch = signed, trainer.current_epoch + 1
                self.weights = {k: v.detach().to("cpu", copy=True) for k, v in module.net.state_dict().items()}

        def on_exception(self, trainer: Any, module: Any, exception: BaseException) -> None:
            if isinstance(exception, Pruned) and logger:
                objective._summarize(logger, params, module, trainer, start, pruned=True)

    return TrialCallback()


def best_model_path(checkpoint_dir: str | os.PathLike[str], trial_id: str) -> Path | None:
    """The kept weights of trial ``trial_id`` in a search's checkpoint directory, or None when they were not kept
    (e.g. ``python run.py`` prints ``best model: ...`` for ``result.best.id``).

    The file is a dict saved with ``torch.save``: ``state_dict`` (of the network, ``evohpo.hpo.model.build_cnn``
    for the built-in objective), ``params``, ``value``, ``metric``, ``direction``, ``id``, ``epoch``; read it with
    :func:`load_model`.
    """
    path = model_path(checkpoint_dir, trial_id)
    return path if path.is_file() else None


def save_model(checkpoint_dir: str | os.PathLike[str], trial_id: str, state_dict: Mapping[str, Any],
               **info: Any) -> Path:
    """Write ``{"state_dict": state_dict, **info}`` to :func:`model_path` atomically (a temporary file, fsync,
    ``os.replace``): a reader sees the old file or the new one, never a torn one. Returns the path."""
    import torch

    path = model_path(checkpoint_dir, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({"state_dict": dict(state_dict), **info}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A kept model file as saved (:func:`best_model_path`): tensors on the CPU, no code run (``weights_only``).

    For the built-in objective:

    ```python
    saved = load_model(path)
    net = build_cnn(saved["params"], saved["input_shape"], saved["num_classes"])
    net.load_state_dict(saved["state_dict"])
    ```
    """
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _plain(v: Any) -> Any:
    """A value ``torch.load(weights_only=True)`` reads back: a Python number, string or bool (numpy scalars as
    numbers), anything else as its text."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if hasattr(v, "item"):
        try:
            return v.item()
        except (TypeError, ValueError):
            pass
    return str(v)
