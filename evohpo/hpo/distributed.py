"""torch.distributed over a worker's ranks (``optimize(..., ranks_per_worker=k)``): one process group per worker,
created at its first evaluation and reused, rebuilt only after a failure broke it, destroyed at the end.

The worker's root opens a ``TCPStore`` on a port the system picks (no fixed port: two searches on one node never
collide) and sends its address and port to the worker's ranks over MPI. When the loss function leaves on one rank
in the middle (an exception, an interruption), that rank *breaks* the group and the others follow at once
(``parallel.group``): with gloo it shuts down the group's connections, so a rank waiting in a collective gets
"Connection closed by peer" instead of waiting for the collective timeout; with NCCL it aborts the communicator.
Every rank then rebuilds the group before the next evaluation.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import stat
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.context import current

log = logging.getLogger("evohpo")

TIMEOUT = 1800.0  # seconds a collective may wait for a rank (torch's default); a failure breaks it long before
_groups: dict[int, _WorkerGroup] = {}  # the process group of each worker this process belongs to (one)
_setups: list[float] = []  # seconds each setup took on this rank


@dataclass
class _WorkerGroup:
    """The torch process group of one worker, with what breaking it needs."""

    backend: str
    rank: int
    size: int
    store: Any
    sockets: list[tuple[int, int]] = field(default_factory=list)  # (fd, inode) of the group's connections
    broken: bool = False
    opening: set[int] | None = None  # while it is set up: the sockets that were open before

    def break_(self) -> None:
        """Make every collective of this group fail now, here and (through the closed connections) on its peers."""
        self.broken = True
        if self.opening is not None:  # not up yet: whatever it opened so far (the store's connection too)
            _shut([(fd, _inode(fd)) for fd in _sockets() - self.opening if not _listening(fd) and _ports(fd)])
            return
        if self.backend == "nccl":
            import torch.distributed as dist

            pg = dist.group.WORLD if dist.is_initialized() else None
            if pg is not None:
                pg.abort()
            return
        _shut(self.sockets)

    def close(self) -> None:
        """Destroy the process group (the end of the search, or before a rebuild)."""
        import torch.distributed as dist

        try:
            if dist.is_initialized():
                dist.destroy_process_group()
        except Exception as e:  # (a broken group may fail to say goodbye; a new one replaces it all the same)
            log.warning("destroying the worker's broken process group: %s", e)
        self.store = None


def process_group(backend: str | None = None, timeout: float = TIMEOUT, address: str | None = None) -> Any:
    """torch.distributed's default process group over the ranks of the running evaluation's worker, initialised at
    the worker's first call and reused by later evaluations (collective: every rank of the worker calls it).

    Args:
        backend: "gloo" or "nccl" (default: "nccl" where CUDA is available, else "gloo").
        timeout: seconds a collective waits for a slow rank before it fails.
        address: where the worker's ranks reach its root (default: 127.0.0.1 when the worker is on one node, else
            the root's first address outside 127.0.0.0/8).

    Returns the group, or None when one rank evaluates each individual (nothing to set up); a RuntimeError outside
    an evaluation.
    """
    ctx = current()
    if ctx is None:
        raise RuntimeError("evohpo.hpo.distributed.process_group() was called outside an evaluation: call it inside "
                           "the loss function that evohpo.optimize(..., ranks_per_worker=k) runs")
    worker = ctx.group
    if worker is None or worker.size == 1:
        return None
    import torch
    import torch.distributed as dist

    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    mine = _groups.get(id(worker))
    if mine is not None and not mine.broken and dist.is_initialized() and mine.backend == backend:
        return dist.group.WORLD
    if mine is None and dist.is_initialized():
        raise RuntimeError("torch.distributed is initialized already (by the loss function?): process_group() sets "
                           "up the worker's group itself, once per worker; call it instead of init_process_group")
    if mine is not None:  # broken by a failure (on all ranks alike: the root tells them), or destroyed by others
        mine.close()
    worker.on_close("torch.distributed", lambda: _close(worker))
    _create(worker, backend, timeout, address)
    return dist.group.WORLD


def setups() -> list[float]:
    """Seconds each process group setup took on this rank (one per worker, plus one per rebuild after a failure)."""
    return list(_setups)


def _create(worker: Any, backend: str, timeout: float, address: str | None) -> None:
    """Set the group up. Until it is up, breaking it shuts every connection opened since the start (the store's
    too): a rank waiting for a peer that failed before it got here gets an error, not the store's timeout."""
    import torch.distributed as dist

    wait = datetime.timedelta(seconds=timeout)
    before, store, where = _sockets(), None, None
    group = _WorkerGroup(backend, worker.rank, worker.size, None)
    group.opening = before
    _groups[id(worker)] = group  # (from now on: a failed setup is rebuilt by the next call)
    worker.on_break("torch.distributed", group.break_)
    if worker.rank == 0:
        host = address or ("127.0.0.1" if worker.same_node else _host_address())
        store = dist.TCPStore(host, 0, worker.size, is_master=True, wait_for_workers=False, timeout=wait)
        where = (host, store.port)  # a port the system chose: free, and ours
    host, port = worker.share(where)  # (breakable: a failure elsewhere in the worker is an error here)
    t0 = time.perf_counter()
    if store is None:
        store = dist.TCPStore(host, port, worker.size, is_master=False, timeout=wait)
    group.store = store
    if group.broken:  # broken before the store's connection existed: it would not have been shut
        raise RuntimeError("a rank of the worker failed before its process group was set up")
    _same_group_names()
    dist.init_process_group(backend, store=store, rank=worker.rank, world_size=worker.size, timeout=wait)
    if backend == "gloo":
        dist.barrier()  # every connection of the group is open: the ones to break on a failure
    group.sockets, group.opening = _connections(_sockets() - before, port), None
    _setups.append(time.perf_counter() - t0)
    if group.broken:
        raise RuntimeError("a rank of the worker failed while its process group was set up")


def _same_group_names() -> None:
    """Start torch's count of process groups at 0 on every rank, as ``destroy_process_group`` does: each attempt to
    initialise one counts, also one that a failure broke half-way on one rank only, and the ranks of a group must
    count alike (the count names the group's keys in the store: ranks that differ wait for each other forever)."""
    from torch.distributed import distributed_c10d

    world = getattr(distributed_c10d, "_world", None)
    if world is not None and hasattr(world, "group_count"):
        world.group_count = 0


def _host_address() -> str:
    """This host's address for ranks on other nodes: its name's first address outside 127.0.0.0/8 (a name that
    resolves to 127.0.1.1, as on many Debian hosts, would leave them waiting), else the name itself."""
    name = socket.gethostname()
    try:
        found = [a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)]
    except OSError:
        return name
    return next((a for a in found if not a.startswith("127.")), name)


def _close(worker: Any) -> None:
    mine = _groups.pop(id(worker), None)
    if mine is not None:
        mine.close()


def _sockets() -> set[int]:
    """This process's open socket descriptors."""
    out = set()
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        try:
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                out.add(int(name))
        except (OSError, ValueError):
            continue
    return out


def _shut(sockets: list[tuple[int, int]]) -> None:
    """Shut down each socket (fd, inode) that is still the one recorded: reads and writes on it fail at both ends."""
    for fd, inode in sockets:
        try:
            if _inode(fd) != inode:  # closed and reused since: not ours any more
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()


def _inode(fd: int) -> int:
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return -1


def _listening(fd: int) -> bool:
    """Whether ``fd`` is a listening socket (shutting one down would end a server thread, and the process)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return True
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return True
    finally:
        sock.close()


def _connections(fds: set[int], store_port: int) -> list[tuple[int, int]]:
    """The connected sockets among ``fds`` that are not the store's (breaking a listener or the store would take the
    process down with it): the group's connections to its peers, with their inodes."""
    return [(fd, _inode(fd)) for fd in sorted(fds)
            if not _listening(fd) and (ports := _ports(fd)) and store_port not in ports]


def _ports(fd: int) -> tuple[int, ...]:
    """The local and the peer port of a connected TCP socket; () for anything else (a Unix socket, MPI's say)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return ()
    try:
        return sock.getsockname()[1], sock.getpeername()[1]
    except (OSError, IndexError, TypeError):
        return ()
    finally:
        sock.close()
