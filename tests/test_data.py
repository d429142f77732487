"""Datasets: digits shapes and split, MNIST from IDX files on disk with download off, the offline error."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from evohpo.hpo import data as data_mod  # noqa: E402
from evohpo.hpo.data import load_dataset  # noqa: E402


def test_digits_split_shapes_and_scale() -> None:
    d = load_dataset("digits")
    x_train, y_train = d.train.tensors
    x_val, y_val = d.val.tensors
    assert d.name == "digits" and d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert len(d.train) + len(d.val) == 1797
    assert 0.19 < len(d.val) / 1797 < 0.21
    assert x_train.shape[1:] == x_val.shape[1:] == (1, 8, 8)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.long
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) <= 1.0 and float(x_train.max()) == 1.0
    # stratified: every class is in both parts, in about the same proportion
    counts = torch.bincount(y_val, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38


def test_digits_split_is_fixed_by_seed() -> None:
    a, b, c = load_dataset("digits"), load_dataset("digits"), load_dataset("digits", seed=1)
    assert torch.equal(a.val.tensors[0], b.val.tensors[0]) and torch.equal(a.train.tensors[1], b.train.tensors[1])
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])


def test_digits_max_train_and_val_fraction() -> None:
    d = load_dataset("digits", val_fraction=0.5, max_train=100)
    assert len(d.train) == 100 and 890 < len(d.val) < 910


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "imagenet"}, "dataset"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"max_train": 0}, "max_train"),
    ],
)
def test_load_dataset_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        load_dataset(**kwargs)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file (uint8), the format of the MNIST distribution."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, folder: str, n_train: int = 40, n_test: int = 10) -> np.ndarray:
    """Tiny MNIST-layout IDX files under ``root/folder/raw``; returns the training images."""
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    train = rng.integers(0, 256, size=(n_train, 28, 28))
    _write_idx(raw / "train-images-idx3-ubyte", train)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, size=(n_test, 28, 28)))
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)
    return train


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_layout_read_from_data_dir_without_download(tmp_path: Path, name: str, folder: str) -> None:
    pytest.importorskip("torchvision")
    train = _fake_mnist(tmp_path, folder)
    d = load_dataset(name, tmp_path, download=False, val_fraction=0.25)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert len(d.train) == 30 and len(d.val) == 10
    assert torch.bincount(d.val.tensors[1], minlength=10).tolist() == [1] * 10
    x = torch.cat([d.train.tensors[0], d.val.tensors[0]])
    assert x.dtype == torch.float32 and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # the same pixels, scaled to [0, 1]
    assert np.isclose(float(x.sum()) * 255.0, float(train.sum()), rtol=1e-5)


@pytest.mark.parametrize(("name", "cls"), [("mnist", "MNIST"), ("cifar10", "CIFAR10")])
def test_offline_without_data_says_how_to_fetch_it(tmp_path: Path, name: str, cls: str) -> None:
    pytest.importorskip("torchvision")
    with pytest.raises(RuntimeError) as info:
        load_dataset(name, tmp_path / "nothing", download=False)
    message = str(info.value)
    assert "login node" in message and "--data-dir" in message
    assert f"torchvision.datasets.{cls}('{(tmp_path / 'nothing').resolve()}', train=True, download=True)" in message


class _FakeNode:
    """A node communicator seen from one rank: ``bcast`` returns what rank 0 would have sent."""

    def __init__(self, rank: int, sent: Any = None) -> None:
        self.rank, self.sent, self.calls = rank, sent, []

    def Get_rank(self) -> int:  # noqa: N802 (mpi4py's names)
        return self.rank

    def bcast(self, value: Any, root: int = 0) -> Any:
        self.calls.append("bcast")
        return value if self.rank == root else self.sent

    def Free(self) -> None:  # noqa: N802
        self.calls.append("Free")


def test_node_rank_0_fetches_and_the_others_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bool]] = []

    def fake_torchvision(name: str, root: Path, download: bool) -> tuple[Any, Any]:
        calls.append((name, download))
        return torch.zeros(10, 1, 28, 28), torch.arange(10)

    monkeypatch.setattr(data_mod, "_torchvision", fake_torchvision)
    import evohpo.hpo.devices

    for rank in (0, 1):
        node = _FakeNode(rank)
        monkeypatch.setattr(evohpo.hpo.devices, "split_node", lambda comm, node=node: node)
        calls.clear()
        load_dataset("mnist", tmp_path, comm=object(), val_fraction=0.5)
        # rank 0 may download (and keeps what it read); the others read after the node-wide broadcast
        assert calls == ([("mnist", True)] if rank == 0 else [("mnist", False)])
        assert node.calls == ["bcast", "Free"]


def test_a_failed_node_download_reaches_every_rank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evohpo.hpo.devices

    monkeypatch.setattr(evohpo.hpo.devices, "split_node", lambda comm: _FakeNode(1, sent="no route to host"))
    with pytest.raises(RuntimeError, match="no route to host"):
        load_dataset("mnist", tmp_path, comm=object())
