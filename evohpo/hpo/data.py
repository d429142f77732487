"""Image classification datasets as in-memory tensors: digits (offline), MNIST, Fashion-MNIST, CIFAR-10."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor
    from torch.utils.data import TensorDataset

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
NUM_CLASSES = 10  # every dataset here has ten classes
DOWNLOAD_TIMEOUT = 30.0  # seconds per network operation while downloading

# name -> (torchvision class name, folder torchvision creates under the root)
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
}


@dataclass(frozen=True)
class ImageData:
    """A train/validation split held in memory: images N x C x H x W in [0, 1], integer labels."""

    name: str
    train: TensorDataset
    val: TensorDataset
    input_shape: tuple[int, int, int]
    num_classes: int


def default_data_dir() -> Path:
    """Where torchvision datasets go without --data-dir: $EVOHPO_DATA or ~/.cache/evohpo/data."""
    return Path(os.environ.get("EVOHPO_DATA", Path.home() / ".cache" / "evohpo" / "data")).expanduser()


def fetch_command(name: str, data_dir: str | os.PathLike[str]) -> str:
    """The shell command that downloads dataset ``name`` into ``data_dir`` on a machine with internet."""
    cls, _ = _TORCHVISION[name]
    return (
        f"python -c \"import torchvision; torchvision.datasets.{cls}('{Path(data_dir).resolve()}', "
        f'train=True, download=True)"'
    )


def load_dataset(
    name: str = "digits",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    comm: Any = None,
    download: bool = True,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_train: int | None = None,
) -> ImageData:
    """Load ``name`` with a fixed seeded train/validation split of its training set.

    Torchvision datasets are read from ``data_dir`` (default: :func:`default_data_dir`); when missing and
    ``download`` is true, node-local rank 0 of ``comm`` downloads them while the node's other ranks wait
    (collective over ``comm`` when given). ``max_train`` caps the training samples (quick CPU runs).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name=}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction=}")
    if max_train is not None and max_train < 1:
        raise ValueError(f"max_train must be >= 1 or None, got {max_train=}")
    if name == "digits":
        images, labels = _digits()
    else:
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        images, labels = _torchvision_once_per_node(name, root, download, comm)
    return _split(name, images, labels, val_fraction, seed, max_train)


def _digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's 8x8 digits (1,797 images, shipped with the package), scaled to [0, 1]."""
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.as_tensor(bunch.target, dtype=torch.long)


def _torchvision_once_per_node(name: str, root: Path, download: bool, comm: Any) -> tuple[Tensor, Tensor]:
    """Read a torchvision dataset; node-local rank 0 downloads it first when allowed."""
    if comm is None:
        return _torchvision(name, root, download)
    from .devices import split_node

    node = split_node(comm)
    loaded = None
    try:
        error = None
        if node.Get_rank() == 0:
            try:
                loaded = _torchvision(name, root, download)
            except Exception as exc:  # every rank of the node must learn of it, not wait forever
                error = exc
        # The broadcast doubles as the node barrier: nobody reads before rank 0 has finished.
        message = node.bcast(None if error is None else str(error), root=0)
    finally:
        node.Free()
    if error is not None:
        raise error
    if message is not None:
        raise RuntimeError(message)
    return loaded if loaded is not None else _torchvision(name, root, download=False)


def _torchvision(name: str, root: Path, download: bool) -> tuple[Tensor, Tensor]:
    """The training set of torchvision dataset ``name`` under ``root`` as float images and labels."""
    import numpy as np
    import torch
    import torchvision

    cls_name, folder = _TORCHVISION[name]
    cls = getattr(torchvision.datasets, cls_name)
    previous = socket.getdefaulttimeout()
    try:
        # Compute nodes often drop outgoing packets: fail within a minute instead of hanging.
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)
        ds = cls(str(root), train=True, download=download)
    except Exception as exc:
        how = "could not be downloaded" if download else "download is off"
        raise RuntimeError(
            f"dataset {name!r} not found under {root / folder} and {how} ({type(exc).__name__}: {exc}). "
            f"On a machine with internet (e.g. a login node) run:\n    {fetch_command(name, root)}\n"
            f"then pass --data-dir {root.resolve()}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)
    data = torch.as_tensor(np.asarray(ds.data))
    images = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)  # N x C x H x W
    images = images.contiguous().to(torch.float32).div_(255.0)
    return images, torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)


def _split(
    name: str, images: Tensor, labels: Tensor, val_fraction: float, seed: int, max_train: int | None
) -> ImageData:
    """A stratified, seeded train/validation split; identical on every rank."""
    import numpy as np
    import torch
    from torch.utils.data import TensorDataset

    rng = np.random.default_rng(seed)
    y = labels.numpy()
    train_idx, val_idx = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_val = max(1, round(len(idx) * val_fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train = rng.permutation(np.concatenate(train_idx))
    val = np.sort(np.concatenate(val_idx))
    if max_train is not None:
        train = train[:max_train]
    tr, va = torch.as_tensor(train), torch.as_tensor(val)
    return ImageData(
        name=name,
        train=TensorDataset(images[tr], labels[tr]),
        val=TensorDataset(images[va], labels[va]),
        input_shape=tuple(images.shape[1:]),  # type: ignore[arg-type]
        num_classes=NUM_CLASSES,
    )
