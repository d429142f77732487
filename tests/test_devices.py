"""Rank -> device mapping with fake GPU counts, CUDA_VISIBLE_DEVICES and SLURM binding; no MPI needed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from evohpo.hpo import devices
from evohpo.hpo.devices import DeviceChoice, pick_device, visible_gpus


@pytest.mark.parametrize(
    ("local_size", "cores", "threads"),
    [(1, 2, 2), (2, 2, 1), (4, 2, 1), (4, 16, 4), (3, 16, 5), (8, 7, 1)],
)
def test_cpu_threads_split_the_cores(local_size: int, cores: int, threads: int) -> None:
    for local_rank in range(local_size):
        assert pick_device(local_rank, local_size, 0, cores) == DeviceChoice("cpu", None, threads)


@pytest.mark.parametrize(
    ("local_size", "n_gpus", "expected"),
    [
        (4, 4, [0, 1, 2, 3]),
        (8, 4, [0, 1, 2, 3, 0, 1, 2, 3]),  # two trainings per GPU
        (3, 4, [0, 1, 2]),  # a GPU left idle
        (4, 1, [0, 0, 0, 0]),
    ],
)
def test_gpu_index_is_local_rank_modulo_gpus(local_size: int, n_gpus: int, expected: list[int]) -> None:
    choices = [pick_device(r, local_size, n_gpus, 64) for r in range(local_size)]
    assert [c.index for c in choices] == expected
    assert {c.accelerator for c in choices} == {"gpu"}
    assert choices[0].trainer_devices == [0] and choices[0].torch_device == "cuda:0"


def test_cpu_choice_for_the_trainer() -> None:
    choice = pick_device(0, 1, 0, 4)
    assert choice.trainer_devices == 1 and choice.torch_device == "cpu"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((0, 0, 0, 1), "local_size"),
        ((2, 2, 0, 1), "local_rank"),
        ((-1, 2, 0, 1), "local_rank"),
        ((0, 1, -1, 1), "n_gpus"),
        ((0, 1, 0, 0), "cores"),
    ],
)
def test_pick_device_rejects_bad_input(args: tuple[int, int, int, int], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        pick_device(*args)


@pytest.mark.parametrize(
    ("value", "detected", "expected"),
    [
        (None, 4, 4),  # unset: all
        ("", 4, 0),  # empty: none
        ("-1", 4, 0),
        ("2,3", 2, 2),  # torch renumbers the visible ones 0..1
        ("0,1,2,3", 4, 4),
        ("1,-1,2", 1, 1),  # CUDA stops at the first invalid entry
        ("0,x,1", 1, 1),
        ("GPU-5e1b6c3a,GPU-77aa", 2, 2),
        ("MIG-1a2b", 1, 1),
        ("0,1,2,3", 2, 2),  # never more than the driver reports
    ],
)
def test_visible_gpus_follows_cuda_visible_devices(value: str | None, detected: int, expected: int) -> None:
    env = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert visible_gpus(env, detected) == expected


def test_visible_gpus_rejects_negative_count() -> None:
    with pytest.raises(ValueError, match="detected"):
        visible_gpus({}, -1)


def test_slurm_one_gpu_per_task_binding_maps_every_task_to_index_0() -> None:
    # srun --ntasks-per-node=4 --gpus-per-task=1: SLURM sets CUDA_VISIBLE_DEVICES to one GPU per task,
    # so each task sees exactly one device, cuda:0, whatever its node-local rank.
    for local_rank, physical in enumerate(["0", "1", "2", "3"]):
        n = visible_gpus({"CUDA_VISIBLE_DEVICES": physical, "SLURM_LOCALID": str(local_rank)}, 1)
        choice = pick_device(local_rank, 4, n, 32)
        assert (choice.accelerator, choice.index, choice.threads) == ("gpu", 0, 8)


def test_slurm_without_binding_shares_all_gpus_by_local_rank() -> None:
    # srun --gpus-per-node=4 without per-task binding: every task sees the four GPUs.
    n = visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, 4)
    assert [pick_device(r, 4, n, 32).index for r in range(4)] == [0, 1, 2, 3]


class _FakeCuda:
    def __init__(self, count: int) -> None:
        self.count = count

    def is_available(self) -> bool:
        return self.count > 0

    def device_count(self) -> int:
        return self.count


def test_detect_gpus_caps_torch_count_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch, "cuda", _FakeCuda(4))
    assert devices.detect_gpus({}) == 4
    assert devices.detect_gpus({"CUDA_VISIBLE_DEVICES": ""}) == 0
    monkeypatch.setattr(torch, "cuda", _FakeCuda(0))
    assert devices.detect_gpus({"CUDA_VISIBLE_DEVICES": "0"}) == 0


class _FakeNodeComm:
    """What ``local_device`` uses of a node communicator, for ranks that all share ``cores``."""

    def __init__(self, rank: int, affinities: list[list[int]]) -> None:
        self.rank, self.affinities, self.freed = rank, affinities, False

    def Get_rank(self) -> int:  # noqa: N802 (mpi4py's names)
        return self.rank

    def Get_size(self) -> int:  # noqa: N802
        return len(self.affinities)

    def allgather(self, value: Any) -> list[Any]:
        return self.affinities

    def Free(self) -> None:  # noqa: N802
        self.freed = True


@pytest.mark.parametrize(
    ("affinities", "threads"),
    [
        ([[0, 1]] * 4, 1),  # mpiexec -n 4 on 2 cores: every rank may run anywhere
        ([[0, 1, 2, 3], [4, 5, 6, 7]], 4),  # SLURM --cpus-per-task=4: each rank its own four cores
        ([[0, 1, 2, 3, 4, 5], [6, 7]], 2),  # never more threads than the rank's own cores
    ],
)
def test_local_device_splits_the_node_cores(
    monkeypatch: pytest.MonkeyPatch, affinities: list[list[int]], threads: int
) -> None:
    node = _FakeNodeComm(1, affinities)
    monkeypatch.setattr(devices, "split_node", lambda comm: node)
    monkeypatch.setattr(devices, "detect_gpus", lambda env=None: 0)
    monkeypatch.setattr(devices, "_own_cores", lambda: set(affinities[1]))
    choice = devices.local_device(comm=object())
    assert choice == DeviceChoice("cpu", None, threads)
    assert node.freed


def test_local_device_without_mpi_uses_own_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "detect_gpus", lambda env=None: 2)
    monkeypatch.setattr(devices, "_own_cores", lambda: {0, 1, 2})
    assert devices.local_device() == DeviceChoice("gpu", 0, 3)
    assert devices.node_local_rank(None) == (0, 1)


def test_apply_device_sets_torch_threads() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        devices.apply_device(DeviceChoice("cpu", None, 1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_importing_devices_does_not_import_torch() -> None:
    modules = "evohpo.hpo.devices, evohpo.hpo.data, evohpo.hpo.model, evohpo.hpo.objective, evohpo.hpo.tensorboard"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
