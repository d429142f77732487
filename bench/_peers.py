"""A clean virtual environment holding peer optimizers (e.g. Propulate) for side-by-side benchmarks.

``ensure_venv(path, packages)`` creates the venv once and reuses it afterwards: a marker file in the venv
records the requirement list it was built with, so a second call with the same list does nothing, and a call
with a different list only runs ``pip install`` for it. The venv is created with the interpreter running
this module (its base Python, without this project's site-packages), so peers never see evohpo's packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_VENV", "PEERS", "PROPULATE", "ensure_venv", "venv_python"]

DEFAULT_VENV = Path(__file__).resolve().parent / ".peers-venv"
PROPULATE = ("propulate==1.2.2", "mpi4py", "mpich")
# bench/quality.py: Propulate, Optuna (TPE, CmaEsSampler), cmaes (IPOP-CMA-ES); bench/pruning.py: DEHB, Optuna's pruners
PEERS = (*PROPULATE, "optuna", "cmaes", "dehb")
_MARKER = "evohpo-peers.json"


def venv_python(path: str | os.PathLike[str]) -> Path:
    """The interpreter inside the venv at ``path`` (it may not exist yet)."""
    path = Path(path)
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _read_marker(path: Path) -> list[str] | None:
    try:
        data = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data.get("packages") if isinstance(data, dict) else None


def ensure_venv(path: str | os.PathLike[str] = DEFAULT_VENV, packages: Sequence[str] = PROPULATE, *,
                quiet: bool = True) -> Path:
    """Create (or reuse) a clean venv at ``path`` with ``packages`` pip-installed; return its python.

    Raises ``subprocess.CalledProcessError`` when pip fails (e.g. no access to PyPI); a later call retries.
    """
    path = Path(path).resolve()
    packages = [str(p) for p in packages]
    python = venv_python(path)
    if python.exists() and _read_marker(path) == packages:
        return python
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=False, system_site_packages=False).create(path)
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        cmd.append("--quiet")
    subprocess.run(cmd + packages, check=True, stdout=sys.stderr if not quiet else subprocess.DEVNULL)
    (path / _MARKER).write_text(json.dumps({"packages": packages}) + "\n")
    return python


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="build the peers' venv")
    parser.add_argument("--path", default=str(DEFAULT_VENV))
    parser.add_argument("packages", nargs="*", default=list(PROPULATE))
    args = parser.parse_args()
    print(ensure_venv(args.path, args.packages, quiet=False))
