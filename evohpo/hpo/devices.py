"""Map each MPI rank to a device: node-local rank modulo the visible GPUs, else the CPU with a thread share."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeviceChoice:
    """Where one rank trains: ``accelerator`` is "gpu" or "cpu"; ``index`` is the CUDA index on a GPU."""

    accelerator: str
    index: int | None
    threads: int

    @property
    def trainer_devices(self) -> list[int] | int:
        """The ``devices`` argument for ``lightning.Trainer``."""
        return [self.index] if self.accelerator == "gpu" and self.index is not None else 1

    @property
    def torch_device(self) -> str:
        """The device as a torch device string ("cuda:1", "cpu")."""
        return f"cuda:{self.index}" if self.accelerator == "gpu" else "cpu"


def pick_device(local_rank: int, local_size: int, n_gpus: int, cores: int) -> DeviceChoice:
    """Choose the device of node-local rank ``local_rank`` out of ``local_size`` ranks on the node.

    ``n_gpus`` is the number of GPUs this rank can see (after CUDA_VISIBLE_DEVICES and any SLURM
    per-task binding: one GPU bound per task means ``n_gpus == 1`` and index 0). ``cores`` is the number
    of cores the ranks of the node share; each rank gets ``max(1, cores // local_size)`` torch threads.
    """
    if local_size < 1:
        raise ValueError(f"local_size must be >= 1, got {local_size=}")
    if not 0 <= local_rank < local_size:
        raise ValueError(f"local_rank must be in [0, {local_size}), got {local_rank=}")
    if n_gpus < 0:
        raise ValueError(f"n_gpus must be >= 0, got {n_gpus=}")
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores=}")
    threads = max(1, cores // local_size)
    if n_gpus == 0:
        return DeviceChoice("cpu", None, threads)
    return DeviceChoice("gpu", local_rank % n_gpus, threads)


def visible_gpus(env: Mapping[str, str], detected: int) -> int:
    """The GPUs a process can use: ``detected`` capped by the CUDA_VISIBLE_DEVICES list in ``env``.

    Follows CUDA's rules: unset means all; empty or "-1" means none; the list is read up to its first
    invalid entry. UUID entries ("GPU-...", "MIG-...") count as one each. SLURM's one-GPU-per-task binding
    sets a one-entry list per task, so each task sees one GPU, index 0.
    """
    if detected < 0:
        raise ValueError(f"detected must be >= 0, got {detected=}")
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return detected
    count = 0
    for entry in (e.strip() for e in value.split(",")):
        if entry.startswith(("GPU-", "MIG-")) or (entry.isdigit() and int(entry) >= 0):
            count += 1
        else:
            break
    return min(count, detected)


def split_node(comm: Any) -> Any:
    """The communicator of the ranks of ``comm`` that share this node (collective; caller frees it)."""
    from mpi4py import MPI

    return comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())


def node_local_rank(comm: Any = None) -> tuple[int, int]:
    """This rank's (node-local rank, ranks on the node) within ``comm`` (collective); (0, 1) without MPI."""
    if comm is None:
        return 0, 1
    node = split_node(comm)
    try:
        return node.Get_rank(), node.Get_size()
    finally:
        node.Free()


def _own_cores() -> set[int]:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def detect_gpus(env: Mapping[str, str] | None = None) -> int:
    """The number of CUDA GPUs this process sees (0 without CUDA); does not initialise CUDA."""
    import torch

    if not torch.cuda.is_available():
        return 0
    return visible_gpus(os.environ if env is None else env, torch.cuda.device_count())


def local_device(comm: Any = None) -> DeviceChoice:
    """Choose this rank's device (collective over ``comm`` when given).

    The cores shared by the node's ranks are the union of their CPU affinities: ranks that SLURM binds
    to separate cores each get their own share; ranks that all run on every core split them.
    """
    own = _own_cores()
    if comm is None:
        local_rank, local_size, cores = 0, 1, len(own)
    else:
        node = split_node(comm)
        try:
            local_rank, local_size = node.Get_rank(), node.Get_size()
            cores = len(set().union(*node.allgather(sorted(own))))
        finally:
            node.Free()
    choice = pick_device(local_rank, local_size, detect_gpus(), cores)
    # Never more threads than the cores this rank may run on.
    return DeviceChoice(choice.accelerator, choice.index, min(choice.threads, max(1, len(own))))


def apply_device(choice: DeviceChoice) -> None:
    """Make torch use ``choice``: thread counts and the current CUDA device."""
    import torch

    torch.set_num_threads(choice.threads)
    try:
        torch.set_num_interop_threads(max(1, min(choice.threads, 2)))
    except RuntimeError:
        pass  # interop threads can be set only once, before any parallel work
    if choice.accelerator == "gpu" and choice.index is not None:
        torch.cuda.set_device(choice.index)


def setup_device(comm: Any = None) -> DeviceChoice:
    """Choose and apply this rank's device (collective over ``comm`` when given)."""
    choice = local_device(comm)
    apply_device(choice)
    return choice
