"""EvohpoCallback in a user's own Trainer: one report per epoch, pruning out of fit, no Lightning signal handler, a
single-process environment under SLURM; and the built-in objective keeping the weights that beat its island's best."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
lightning = pytest.importorskip("lightning")
pytest.importorskip("tensorboard")

from lightning.pytorch.callbacks import Callback  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import evohpo.hpo  # noqa: E402
from evohpo.core.context import EvalContext, evaluating  # noqa: E402
from evohpo.core.reporting import Pruned  # noqa: E402
from evohpo.hpo import EvohpoCallback, best_model_path, load_model  # noqa: E402
from evohpo.hpo.data import load_dataset  # noqa: E402
from evohpo.hpo.model import DEFAULTS, build_cnn  # noqa: E402
from evohpo.hpo.objective import LightningObjective  # noqa: E402

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


class Tiny(lightning.LightningModule):
    """A linear classifier that logs val_acc, val_loss and its epoch's train_loss."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 2)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Recorder:
    """A stand-in for the worker's reporter: records the points, prunes at step ``stop``."""

    def __init__(self, stop: int | None = None) -> None:
        self.calls: list[tuple[int, float, dict[str, float]]] = []
        self.stop = stop

    def report(self, step: int, value: float, metrics: Any) -> None:
        self.calls.append((step, value, dict(metrics)))
        if self.stop is not None and step >= self.stop:
            raise Pruned(step, value, "test")


def _ctx(reporter: Any = None, checkpoint: str | None = None, island_best: float = math.inf) -> EvalContext:
    """An evaluation's context; ``island_best`` set even while EvalContext lacks the field."""
    kw: dict[str, Any] = {"id": "0-4", "rank": 0, "island": 0, "island_rank": 0, "generation": 4,
                          "checkpoint": checkpoint, "reporter": reporter}
    if "island_best" in {f.name for f in dataclasses.fields(EvalContext)}:
        return EvalContext(**kw, island_best=island_best)
    ctx = EvalContext(**kw)
    object.__setattr__(ctx, "island_best", island_best)
    return ctx


@pytest.fixture(scope="module")
def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_dataset("digits", max_train=300)


def _fit(loader: DataLoader, callbacks: list[Any], **kwargs: Any) -> Any:
    torch.manual_seed(0)
    trainer = lightning.Trainer(**{**QUIET, "max_epochs": 3, "callbacks": callbacks, **kwargs})
    trainer.fit(Tiny(), loader, loader)
    return trainer


def test_one_report_per_epoch_with_the_monitored_value_and_the_epochs_metrics(loader: DataLoader) -> None:
    rec, cb = Recorder(), EvohpoCallback(monitor="val_acc")
    with evaluating(_ctx(rec)):
        trainer = _fit(loader, [cb], num_sanity_val_steps=2)  # the sanity check reports nothing
        trainer.validate(trainer.lightning_module, loader, verbose=False)  # nor does validate outside fit
    assert [c[0] for c in rec.calls] == [1, 2, 3]
    assert [(s, v) for s, v, _ in rec.calls] == cb.history == cb.reported
    assert all(0.0 <= v <= 1.0 for _, v, _ in rec.calls)
    assert rec.calls[-1][1] == pytest.approx(float(trainer.callback_metrics["val_acc"]))  # validate: same weights
    for _, _, metrics in rec.calls:
        assert {"val_loss", "train_loss"} <= set(metrics) and "val_acc" not in metrics
    # each point carries its own epoch's training loss (not the epoch before's)
    assert len({m["train_loss"] for _, _, m in rec.calls}) == 3


def test_pruned_stops_fit_and_leaves_the_tensorboard_run_closed(loader: DataLoader, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.trainer.states import TrainerStatus
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="", version="run")
    rec, cb = Recorder(stop=2), EvohpoCallback("val_acc", metrics=["val_loss"])
    with evaluating(_ctx(rec)), pytest.raises(Pruned) as info:
        trainer = lightning.Trainer(**{**QUIET, "logger": logger, "max_epochs": 8, "callbacks": [cb]})
        trainer.fit(Tiny(), loader, loader)
    assert (info.value.step, [c[0] for c in rec.calls]) == (2, [1, 2])
    assert [set(c[2]) for c in rec.calls] == [{"val_loss"}, {"val_loss"}]
    assert trainer.current_epoch == 2 and trainer.state.status == TrainerStatus.INTERRUPTED  # 2 of 8 epochs
    assert logger.experiment.all_writers is None  # finalized: flushed and closed
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    assert [e.value for e in events.Scalars("val_acc")] == pytest.approx([v for _, v, _ in rec.calls])


def test_a_missing_monitor_names_the_metrics_that_were_logged(loader: DataLoader) -> None:
    with evaluating(_ctx(Recorder())), pytest.raises(ValueError, match=r"no metric 'val_accuracy'.*val_acc, val_loss"):
        _fit(loader, [EvohpoCallback("val_accuracy")], max_epochs=1)


def test_arguments_are_checked_and_metrics_can_be_chosen() -> None:
    with pytest.raises(ValueError, match="monitor"):
        EvohpoCallback("")
    with pytest.raises(ValueError, match="metrics"):
        EvohpoCallback("val_acc", metrics="val_loss")
    with pytest.raises(ValueError, match="isolate"):
        EvohpoCallback("val_acc", isolate=1)  # type: ignore[arg-type]
    logged = {"val_acc": torch.tensor(0.5), "val_loss": torch.tensor(0.7), "lr": 0.1, "hist": torch.ones(3),
              "bad": torch.tensor(float("nan"))}
    assert EvohpoCallback("val_acc")._extras(logged) == pytest.approx({"val_loss": 0.7, "lr": 0.1})
    assert EvohpoCallback("val_acc", metrics=["lr", "gone"])._extras(logged) == {"lr": 0.1}
    assert EvohpoCallback("val_acc", metrics=False)._extras(logged) == {}


def _slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables srun sets for one task of a two-task job (as an evohpo search under srun sees them)."""
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "job")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE", raising=False)


def test_under_slurm_a_trainer_with_the_callback_trains_as_one_process(loader: DataLoader,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    _slurm(monkeypatch)
    monkeypatch.setattr(rank_zero_only, "rank", 1)  # what Lightning guesses from SLURM_PROCID at import
    with evaluating(_ctx(Recorder())):
        with pytest.raises(RuntimeError, match="ntasks=2"):  # a user's Trainer as it is: every trial fails
            lightning.Trainer(**QUIET, max_epochs=1)
        cb = EvohpoCallback("val_acc")
        trainer = _fit(loader, [cb], max_epochs=2)
    assert isinstance(trainer._accelerator_connector.cluster_environment, LightningEnvironment)
    assert rank_zero_only.rank == 0 and len(cb.reported) == 2
    # outside an evaluation the Trainer is Lightning's own, unless asked
    with pytest.raises(RuntimeError, match="ntasks=2"):
        lightning.Trainer(**QUIET, callbacks=[EvohpoCallback("val_acc")])
    cb = EvohpoCallback("val_acc", isolate=True)
    _fit(loader, [cb], max_epochs=1)
    assert (cb.history[0][0], cb.reported) == (1, [])  # nothing to report to outside a search
    # the user's own cluster environment wins
    env = LightningEnvironment()
    trainer = lightning.Trainer(**QUIET, callbacks=EvohpoCallback("val_acc", isolate=True), plugins=env)
    assert trainer._accelerator_connector.cluster_environment is env


def test_lightning_installs_no_sigterm_handler_of_its_own(loader: DataLoader) -> None:
    seen: list[Any] = []

    class Probe(Callback):
        def on_train_start(self, trainer: Any, module: Any) -> None:
            seen.append(signal.getsignal(signal.SIGTERM))

    def ours(signum: int, frame: Any) -> None:
        """A stand-in for evohpo's stop handler."""

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        _fit(loader, [Probe()], max_epochs=1)  # without the callback Lightning wraps SIGTERM during fit
        with evaluating(_ctx(Recorder())):
            _fit(loader, [EvohpoCallback("val_acc"), Probe()], max_epochs=1)
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen[0] is not ours and seen[1] is ours and after is ours


MPIEXEC = Path(sys.executable).parent / "mpiexec"
MPI_SCRIPT = """
import json, lightning
from mpi4py import MPI
from evohpo.core.context import EvalContext, evaluating
from evohpo.hpo import EvohpoCallback
kw = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}
plain = lightning.Trainer(**kw)
with evaluating(EvalContext(id="0-0", rank=MPI.COMM_WORLD.rank, island=0, island_rank=0, generation=0)):
    ours = lightning.Trainer(**kw, callbacks=[EvohpoCallback()])
env = [t._accelerator_connector.cluster_environment for t in (plain, ours)]
print("ENV " + json.dumps([[type(e).__name__, e.world_size()] for e in env]), flush=True)
"""


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec at {MPIEXEC}")
def test_under_mpirun_a_trainer_with_the_callback_is_not_one_ddp_world_with_the_other_ranks(tmp_path: Path) -> None:
    script = tmp_path / "envs.py"
    script.write_text(MPI_SCRIPT)
    proc = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(script)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    lines = [json.loads(ln[4:]) for ln in proc.stdout.splitlines() if ln.startswith("ENV ")]
    # without the callback Lightning takes the two search ranks for one world; with it each trains on its own
    assert lines == [[["MPIEnvironment", 2], ["LightningEnvironment", 1]]] * 2, proc.stdout[-2000:]


SMALL = {**DEFAULTS, "conv_layers": 1, "channels": 8, "lr": 3e-3, "batch_size": 64, "dropout": 0.0}


def test_the_objective_keeps_the_weights_that_beat_the_island_best(digits: Any, tmp_path: Path) -> None:
    objective = LightningObjective(digits, epochs=1, log_dir=None)
    rec = Recorder()
    with evaluating(_ctx(rec, str(tmp_path), island_best=math.inf)):  # nothing known yet: kept
        acc = objective(SMALL)
    path = best_model_path(tmp_path, "0-4")
    assert path == tmp_path / "models" / "trial-0-4.pt" and [(c[0], c[1]) for c in rec.calls] == [(1, acc)]
    saved = load_model(path)
    assert (saved["value"], saved["metric"], saved["id"], saved["params"]) == (acc, "val_acc", "0-4", SMALL)
    net = build_cnn(saved["params"], saved["input_shape"], saved["num_classes"])
    net.load_state_dict(saved["state_dict"])
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]  # no temporary file left
    path.unlink()
    with evaluating(_ctx(Recorder(), str(tmp_path), island_best=-1.0)):  # the island knows an accuracy of 1.0
        objective(SMALL)
    assert best_model_path(tmp_path, "0-4") is None
    assert evohpo.hpo.best_model_path is best_model_path


def test_the_objective_reports_every_epoch_and_a_pruned_run_keeps_its_epochs(digits: Any, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    objective = LightningObjective(digits, epochs=4, log_dir=tmp_path / "runs", patience=4)
    rec = Recorder(stop=2)
    with evaluating(_ctx(rec, str(tmp_path))), pytest.raises(Pruned):
        objective(SMALL)
    assert [c[0] for c in rec.calls] == [1, 2] and "val_loss" in rec.calls[0][2]
    assert best_model_path(tmp_path, "0-4") is None  # a pruned training keeps no weights
    events = EventAccumulator(str(tmp_path / "runs" / "trial-0-4"))
    events.Reload()
    assert [e.value for e in events.Scalars("val_acc")] == pytest.approx([c[1] for c in rec.calls])
    assert events.Scalars("hp/pruned")[-1].value == 1.0 and events.Scalars("hp/epochs")[-1].value == 2.0
