"""The Lightning objective: a CNN built from hyperparameters, trained on this rank's device, logged to TensorBoard.

Torch and Lightning are imported lazily so that ``import evohpo.hpo.lightning`` stays cheap and torch-free.
"""

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
from ..core.space import Choice, Float, Int

if TYPE_CHECKING:
    from torch import nn

    from .data import ImageData
    from .devices import DeviceChoice

METRICS = ("val_acc", "val_loss")
ACTIVATIONS = ("relu", "leaky_relu", "gelu", "tanh")
OPTIMIZERS = ("adam", "adamw", "sgd")


def cnn_space(max_channels: int = 64) -> dict[str, Any]:
    """The CNN search space: architecture, optimiser and regularisation knobs.

    ``channels`` (the first block's width; it doubles per block) ranges over powers of two from 8 to
    ``max_channels``: 32 keeps CPU runs on small images quick, GPUs afford 128 or more.
    """
    if max_channels < 8:
        raise ValueError(f"max_channels must be >= 8, got {max_channels=}")
    widths = tuple(8 * 2**i for i in range(max_channels.bit_length()) if 8 * 2**i <= max_channels)
    return {
        "conv_layers": Int(1, 3),
        "channels": Choice(widths),
        "kernel_size": Choice((3, 5)),
        "activation": Choice(ACTIVATIONS),
        "lr": Float(1e-4, 1e-1, log=True),
        "batch_size": Choice((16, 32, 64, 128)),
        "dropout": Float(0.0, 0.5),
        "optimizer": Choice(OPTIMIZERS),
    }


DEFAULTS: dict[str, Any] = {
    "conv_layers": 2,
    "channels": 32,
    "kernel_size": 3,
    "activation": "relu",
    "lr": 3e-3,
    "batch_size": 64,
    "dropout": 0.1,
    "optimizer": "adam",
}


def _activation(name: str) -> nn.Module:
    """The activation module called ``name``."""
    from torch import nn

    layers = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
    if name not in layers:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name=}")
    return layers[name]()


def build_cnn(params: Mapping[str, Any], input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A CNN: ``conv_layers`` blocks (conv "same", batch norm, activation, 2x2 max pool while the map is
    at least 4 pixels wide), channels doubling per block, then dropout and a linear classifier."""
    from torch import nn

    p = {**DEFAULTS, **params}
    layers, kernel = int(p["conv_layers"]), int(p["kernel_size"])
    channels, dropout = int(p["channels"]), float(p["dropout"])
    if layers < 1:
        raise ValueError(f"conv_layers must be >= 1, got {layers=}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels=}")
    if kernel < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel=}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout=}")
    c, h, w = input_shape
    blocks: list[nn.Module] = []
    for i in range(layers):
        out = channels * 2 ** min(i, 3)
        blocks += [nn.Conv2d(c, out, kernel, padding="same"), nn.BatchNorm2d(out), _activation(p["activation"])]
        if min(h, w) >= 4:
            blocks.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c = out
    h, w = min(h, 4), min(w, 4)
    return nn.Sequential(
        *blocks,
        nn.AdaptiveAvgPool2d((h, w)),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(c * h * w, num_classes),
    )


def _make_module(params: Mapping[str, Any], input_shape: tuple[int, int, int], num_classes: int) -> Any:
    """A LightningModule training :func:`build_cnn` and tracking its best validation metrics."""
    import lightning
    import torch
    import torch.nn.functional as F
    from torchmetrics.classification import MulticlassAccuracy

    p = {**DEFAULTS, **params}
    if p["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got optimizer={p['optimizer']!r}")
    lr = float(p["lr"])
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr=}")

    class CNNModule(lightning.LightningModule):
        """The CNN with its optimiser; remembers its best validation accuracy and loss."""

        def __init__(self) -> None:
            super().__init__()
            self.net = build_cnn(p, input_shape, num_classes)
            self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
            self.best_val_acc = 0.0
            self.best_val_loss = math.inf
            self._val_loss_sum = torch.zeros(())
            self._val_count = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            logits = self(x)
            loss = F.cross_entropy(logits, y, reduction="sum")
            self._val_loss_sum = self._val_loss_sum.to(loss.device) + loss.detach()
            self._val_count += len(y)
            self.val_acc.update(logits, y)

        def on_validation_epoch_end(self) -> None:
            acc = float(self.val_acc.compute())
            loss = float(self._val_loss_sum) / max(self._val_count, 1)
            self.val_acc.reset()
            self._val_loss_sum, self._val_count = torch.zeros(()), 0
            if not math.isfinite(loss):
                loss = math.inf
            self.best_val_acc = max(self.best_val_acc, acc)
            self.best_val_loss = min(self.best_val_loss, loss)
            self.log_dict({"val_acc": acc, "val_loss": loss})

        def configure_optimizers(self) -> torch.optim.Optimizer:
            if p["optimizer"] == "sgd":
                return torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9, nesterov=True)
            if p["optimizer"] == "adamw":
                return torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=1e-2)
            return torch.optim.Adam(self.parameters(), lr=lr)

    return CNNModule()


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
    """``loss_fn(params) -> float`` that trains a CNN with Lightning and returns its best validation loss.

    The loss is ``-best val accuracy`` (``metric="val_acc"``) or the best validation cross-entropy
    (``metric="val_loss"``). Every call is one TensorBoard run under ``log_dir`` named after the
    evaluation in progress (:func:`evohpo.context.current`), with its hyperparameters and final metrics
    in the HParams dashboard. ``callbacks`` are extra Lightning callbacks for every training.
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

    def run_name(self) -> str:
        """The TensorBoard run of the evaluation in progress: from its context, else a local counter."""
        ctx = context.current()
        if ctx is None:
            return f"local-{os.getpid()}-{next(self._counter):04d}"
        return f"island{ctx.island}/{ctx.id}"

    def __call__(self, params: dict[str, Any]) -> float:
        """Train one configuration; return the loss to minimise."""
        import lightning
        import torch
        from lightning.pytorch.callbacks import EarlyStopping
        from lightning.pytorch.loggers import TensorBoardLogger
        from lightning.pytorch.plugins.environments import LightningEnvironment

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
            name, _, version = self.run_name().rpartition("/")
            logger = TensorBoardLogger(self.log_dir, name=name, version=version, default_hp_metric=False)
        mode = "max" if self.metric == "val_acc" else "min"
        device = self.device
        trainer = lightning.Trainer(
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
            log_every_n_steps=max(1, min(50, len(train))),
            default_root_dir=self.log_dir or ".",
        )
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
        return -best_acc if self.metric == "val_acc" else best_loss


class TensorBoardProgress:
    """A callback ``callback(individual)`` that plots each island's best loss as the search goes.

    Only the first worker of an island (``island_rank == 0``) writes; it logs ``best_loss/island_{k}``
    against the number of evaluations its island has seen (with wall-clock times, so TensorBoard's
    "Relative" axis shows time) and ``best_loss_by_time/island_{k}`` against seconds since the start.
    """

    def __init__(self, log_dir: str | os.PathLike[str], island_rank: int) -> None:
        if island_rank < 0:
            raise ValueError(f"island_rank must be >= 0, got {island_rank=}")
        self.log_dir = Path(log_dir)
        self.island_rank = island_rank
        self.start = time.time()
        self._writers: dict[int, Any] = {}
        self._seen: dict[int, int] = {}
        self._best: dict[int, float] = {}

    def __call__(self, individual: Any) -> None:
        """Record one individual added to this worker's island."""
        if self.island_rank != 0:
            return
        k = int(individual.island)
        self._seen[k] = n = self._seen.get(k, 0) + 1
        loss = float(individual.loss)
        if getattr(individual, "status", "ok") == "ok" and math.isfinite(loss):
            self._best[k] = min(self._best.get(k, math.inf), loss)
        if k not in self._best:
            return
        writer = self._writer(k)
        now = float(individual.end) if getattr(individual, "end", 0.0) else time.time()
        best = self._best[k]
        writer.add_scalar(f"best_loss/island_{k}", best, global_step=n, walltime=now)
        writer.add_scalar(f"best_loss_by_time/island_{k}", best, global_step=max(0, round(now - self.start)))
        if math.isfinite(loss):
            writer.add_scalar(f"loss/island_{k}", loss, global_step=n, walltime=now)

    def _writer(self, island: int) -> Any:
        """The event writer of ``island``, created on first use."""
        if island not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[island] = SummaryWriter(str(self.log_dir / f"island_{island}"), flush_secs=10)
        return self._writers[island]

    def flush(self) -> None:
        """Write what is buffered."""
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        """Flush and close the event files."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
