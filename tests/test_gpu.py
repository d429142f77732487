"""The GPU path, for real: device choice, training on cuda, and a short MPI search sharing the GPUs.

Skipped where torch sees no CUDA device (the CPU path is covered by test_devices and test_lightning).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from evohpo.hpo.data import load_dataset  # noqa: E402
from evohpo.hpo.devices import DeviceChoice, setup_device  # noqa: E402
from evohpo.hpo.model import DEFAULTS  # noqa: E402
from evohpo.hpo.objective import LightningObjective  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SMALL = {**DEFAULTS, "conv_layers": 2, "channels": 16, "lr": 3e-3, "batch_size": 64, "dropout": 0.0}


def test_setup_device_picks_the_gpu_without_mpi() -> None:
    choice = setup_device(None)
    assert choice.accelerator == "gpu" and choice.index == 0
    assert torch.cuda.current_device() == 0


def test_training_runs_on_the_gpu(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import Callback

    where: dict[str, Any] = {}

    class Probe(Callback):
        """Records where the weights and a training batch live."""

        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
            where["weights"] = next(module.parameters()).device.type
            where["batch"] = batch[0].device.type

    data = load_dataset("digits")
    objective = LightningObjective(data, device=DeviceChoice("gpu", 0, 1), epochs=3, log_dir=tmp_path,
                                   callbacks=[Probe()])
    loss = objective(SMALL)
    assert where == {"weights": "cuda", "batch": "cuda"}
    assert loss > 0.8  # three epochs on digits reach well over 80% validation accuracy


def test_run_py_under_mpi_trains_every_rank_on_a_gpu(tmp_path: Path) -> None:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("mpiexec not next to the interpreter")
    ranks = 2
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(ROOT / "run.py"),
           "--generations", "2", "--epochs", "2", "--checkpoint", str(tmp_path / "ckpt"),
           "--log-dir", str(tmp_path / "runs")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"on {ranks} ranks (gpu)" in proc.stdout
    ends = []
    for journal in (tmp_path / "ckpt").glob("*.jsonl"):
        ends += [r for r in map(json.loads, journal.read_text().splitlines()) if r.get("loss") is not None]
    assert len(ends) == 2 * ranks
    assert min(r["loss"] for r in ends) < -0.8
