"""Helpers shared by the benchmark drivers (bench/overhead.py, bench/quality.py).

Standard library only at module level: the workers import this module in evohpo's venv and in the clean peers'
venv alike. Where evohpo is not installed (the peers' venv), its numpy-only test functions are imported from a
source tree put first on ``sys.path`` (:func:`evohpo_functions`).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


# -- evohpo sources ----------------------------------------------------------------------------------------------

def git_head(ref: str = "HEAD") -> str:
    """The short commit hash of ``ref``, or ``?``."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "?"
    except Exception:  # noqa: BLE001
        return "?"


def git_dirty(path: str = "evohpo") -> bool:
    """Whether ``path`` has uncommitted changes."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", path], cwd=ROOT, capture_output=True,
                             text=True, timeout=30).stdout
        return bool(out.strip())
    except Exception:  # noqa: BLE001
        return False


def snapshot_evohpo(dest: Path, ref: str | None, tree: str | os.PathLike[str] | None = None) -> str:
    """Copy the whole ``evohpo/`` tree, subpackages included (the working tree, ``tree/evohpo`` of another source
    tree, or ``ref`` via read-only ``git archive``), to ``dest/evohpo``; return a content hash of its Python files.
    With ``dest`` first on ``PYTHONPATH``, every run uses that code while others edit the tree."""
    if tree is not None:
        shutil.copytree(Path(tree) / "evohpo", dest / "evohpo", ignore=shutil.ignore_patterns("__pycache__"))
    elif ref:
        tar = subprocess.run(["git", "archive", "--format=tar", ref, "evohpo"], cwd=ROOT, capture_output=True,
                             check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(dest, filter="data")
    else:
        shutil.copytree(ROOT / "evohpo", dest / "evohpo", ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for f in sorted((dest / "evohpo").rglob("*.py")):
        digest.update(str(f.relative_to(dest)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def evohpo_functions(tree: str | os.PathLike[str] | None = None) -> ModuleType:
    """evohpo's test functions, from the source tree ``tree`` put first on ``sys.path`` (None: the evohpo
    already importable). Trees from before their move to ``evohpo.testing.functions`` have them in
    ``evohpo.benchmarks``."""
    if tree is not None and str(tree) not in sys.path:
        sys.path.insert(0, str(tree))
    package = Path(importlib.import_module("evohpo").__file__).parent
    # decided by the tree's own files: an editable install of evohpo elsewhere would answer for missing submodules
    moved = (package / "testing" / "functions.py").is_file()
    return importlib.import_module("evohpo.testing.functions" if moved else "evohpo.benchmarks")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions(python: Path | None, packages: Sequence[str]) -> str:
    """``name version`` of each package in the venv of ``python``, comma-separated (``?`` if unknown)."""
    if python is None:
        return "n/a"
    code = (f"import importlib.metadata as m\nfor p in {list(packages)!r}:\n    try: print(p, m.version(p))\n"
            "    except Exception: print(p, '?')")
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return ", ".join(" ".join(line.split()) for line in out.splitlines())


def write_report(md: str, path: str | os.PathLike[str]) -> Path:
    """Print the Markdown report ``md`` and write it to ``path`` (its folder made as needed)."""
    print(md)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    return out


# -- worker subprocesses -----------------------------------------------------------------------------------------

def worker_env(pythonpath: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The environment of a worker: one thread per math library, unbuffered output, ``PYTHONPATH`` only
    ``pythonpath`` (an evohpo snapshot) or none."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def mpi_command(python: Path, ranks: int, script: Path, *args: str) -> list[str]:
    """``mpiexec -n RANKS python -m mpi4py SCRIPT ARGS``, with the mpiexec next to ``python``."""
    return [str(python.parent / "mpiexec"), "-n", str(ranks), str(python), "-m", "mpi4py", str(script), *args]


def kill(proc: subprocess.Popen) -> None:
    """End the process group started for ``proc`` (mpiexec and its ranks): SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class WorkerOutput:
    """What a worker subprocess printed: its marked records, exit status, stderr and why it stopped early."""

    records: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    reason: str | None = None  # "timeout after N s", else None
    stderr: str = ""

    def failure(self) -> str:
        """``failed (exit N): ...`` with the last line of stderr that names an error (else its last line)."""
        tail = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        tail = [ln for ln in tail if "Traceback" not in ln] or tail
        errs = [ln for ln in tail if "Error" in ln or "error" in ln]
        return f"failed (exit {self.returncode}): {(errs or tail or ['no output'])[-1][:160]}"


def run_marked(cmd: list[str], mark: str, *, timeout: float, cwd: str | os.PathLike[str],
               env: dict[str, str]) -> WorkerOutput:
    """Run ``cmd`` in its own process group and collect the JSON after ``mark`` on each line of its stdout that
    starts with it. ``timeout`` seconds at most until the first record and between records: then the group is
    killed and ``reason`` says so."""
    out = WorkerOutput()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                out.reason = f"timeout after {timeout:.0f} s"
                kill(proc)
                break
            if line is None:
                break
            if line.startswith(mark):
                out.records.append(json.loads(line[len(mark):]))
                deadline = time.monotonic() + timeout
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill(proc)
        out.returncode = proc.returncode
        err.seek(0)
        out.stderr = err.read()
    return out


# -- peers -------------------------------------------------------------------------------------------------------

def quiet_propulator(write_checkpoints: bool = False) -> type:
    """Propulate's ``Propulator`` with its checkpoint pickles off unless ``write_checkpoints``: the dump token
    still travels, so its communication is unchanged (Propulate 1.2.2 has no switch for the writes)."""
    import propulate
    from propulate._globals import DUMP_TAG

    class Propulator(propulate.Propulator):
        def _dump_checkpoint(self) -> None:
            if write_checkpoints:
                return super()._dump_checkpoint()
            dest = (self.island_comm.rank + 1) % self.island_comm.size
            self.island_comm.send(True, dest=dest, tag=DUMP_TAG)

        def _dump_final_checkpoint(self) -> None:
            if write_checkpoints:
                super()._dump_final_checkpoint()

    return Propulator
