"""The CNN of the main job: its search space, the network built from a configuration, and the LightningModule
that trains it. torch and Lightning are imported inside the functions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.space import Choice, Float, Int

if TYPE_CHECKING:
    from torch import nn

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
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            logits = self(x)
            loss = F.cross_entropy(logits, y, reduction="sum")
            self._val_loss_sum = self._val_loss_sum.to(loss.device) + loss.detach()
            self._val_count += len(y)
            self.val_acc.update(logits, y)

        def on_validation_epoch_end(self) -> None:
            acc = float(self.val_acc.compute())  # (summed over the ranks of a DDP training by torchmetrics)
            loss = _mean_over_ranks(self._val_loss_sum, self._val_count, self.device)
            self.val_acc.reset()
            self._val_loss_sum, self._val_count = torch.zeros(()), 0
            if not math.isfinite(loss):
                loss = math.inf
            self.best_val_acc = max(self.best_val_acc, acc)
            self.best_val_loss = min(self.best_val_loss, loss)
            self.log_dict({"val_acc": acc, "val_loss": loss})

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return _optimizer(p["optimizer"], self.parameters(), lr)

    return CNNModule()


def _mean_over_ranks(total: Any, count: int, device: Any) -> float:
    """``total / count``, both summed over the ranks of a DDP training when torch.distributed is up (each rank
    validated its shard), else this rank's."""
    import torch

    both = torch.stack([total.detach().double().cpu(), torch.tensor(float(count), dtype=torch.float64)])
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        both = both.to(device)
        torch.distributed.all_reduce(both)
    return float(both[0]) / max(float(both[1]), 1.0)


def _optimizer(name: str, parameters: Any, lr: float) -> Any:
    """The torch optimizer called ``name`` (SGD with Nesterov momentum, AdamW with weight decay, Adam)."""
    import torch

    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-2)
    return torch.optim.Adam(parameters, lr=lr)
