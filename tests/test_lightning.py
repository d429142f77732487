"""The Lightning objective: models from extreme knobs, one short training, TensorBoard runs and hparams."""

from __future__ import annotations

import math
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("tensorboard")

from evohpo.core.context import EvalContext, evaluating  # noqa: E402
from evohpo.core.space import Space  # noqa: E402
from evohpo.hpo.data import load_dataset  # noqa: E402
from evohpo.hpo.model import DEFAULTS, build_cnn, cnn_space  # noqa: E402
from evohpo.hpo.objective import LightningObjective  # noqa: E402
from evohpo.hpo.tensorboard import TensorBoardProgress  # noqa: E402

SMALL = {**DEFAULTS, "conv_layers": 2, "channels": 16, "lr": 3e-3, "batch_size": 64, "dropout": 0.0}


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_dataset("digits")


def _events(directory: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(directory))
    acc.Reload()
    return acc


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 5, 5)])
@pytest.mark.parametrize(
    "knobs",
    [
        {"conv_layers": 3, "channels": 64, "kernel_size": 5, "activation": "gelu", "dropout": 0.5},
        {"conv_layers": 1, "channels": 8, "kernel_size": 3, "activation": "tanh", "dropout": 0.0},
        {"conv_layers": 3, "channels": 8, "kernel_size": 5, "activation": "leaky_relu"},
    ],
)
def test_extreme_models_run_forward(shape: tuple[int, int, int], knobs: dict[str, Any]) -> None:
    model = build_cnn({**DEFAULTS, **knobs}, shape, 10).eval()
    with torch.no_grad():
        out = model(torch.rand(3, *shape))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


def test_random_configurations_of_the_space_build() -> None:
    import numpy as np

    space, rng = Space(cnn_space()), np.random.default_rng(0)
    for _ in range(10):
        params = space.sample(rng)
        assert build_cnn(params, (1, 8, 8), 10)(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert list(Space(cnn_space(32))["channels"].values) == [8, 16, 32]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"conv_layers": 0}, "conv_layers"), ({"activation": "swish"}, "activation"), ({"dropout": 1.0}, "dropout")],
)
def test_bad_knobs_are_rejected(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        build_cnn({**DEFAULTS, **params}, (1, 8, 8), 10)


def test_objective_arguments_are_checked(digits: Any) -> None:
    with pytest.raises(ValueError, match="metric"):
        LightningObjective(digits, metric="accuracy")
    with pytest.raises(ValueError, match="epochs"):
        LightningObjective(digits, epochs=0)
    with pytest.raises(ValueError, match="max_channels"):
        cnn_space(4)


def test_one_epoch_on_digits_logs_a_run_with_hparams(digits: Any, tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    seen: dict[str, Any] = {}

    class SignalProbe(Callback):
        """Looks at the signal handlers while training runs."""

        def on_train_start(self, trainer: Any, module: Any) -> None:
            seen["sigterm"] = signal.getsignal(signal.SIGTERM)
            seen["sigusr1"] = signal.getsignal(signal.SIGUSR1)

    def ours(signum: int, frame: Any) -> None:
        """A stand-in for evohpo's stop handler."""

    usr1 = signal.getsignal(signal.SIGUSR1)
    previous = signal.signal(signal.SIGTERM, ours)
    rank_zero_only.rank = 3  # as Lightning guesses from SLURM_PROCID=3 under srun
    try:
        objective = LightningObjective(digits, epochs=1, log_dir=tmp_path, callbacks=[SignalProbe()])
        ctx = EvalContext(id="2-7", rank=2, island=1, island_rank=0, generation=7)
        with evaluating(ctx):
            loss = objective(SMALL)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert 0.3 < loss <= 1.0  # the validation accuracy, as it is (the objective's direction is "maximize")
    # Lightning installed no handler of its own: evohpo's SIGTERM stays, SIGUSR1 untouched
    assert seen["sigterm"] is ours and seen["sigusr1"] == usr1

    run = tmp_path / "trial-2-7"
    assert list(run.glob("events.out.tfevents.*")), "the run's event file is missing"
    events = _events(run)
    assert {"val_acc", "val_loss", "hp/best_val_acc"} <= set(events.Tags()["scalars"])
    assert math.isclose(events.Scalars("hp/best_val_acc")[-1].value, loss, rel_tol=1e-6)
    hparams = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hparams and "_hparams_/session_start_info" in hparams
    assert b"batch_size" in hparams["_hparams_/session_start_info"]


def test_val_loss_metric_and_runs_without_context(digits: Any, tmp_path: Path) -> None:
    objective = LightningObjective(digits, epochs=1, metric="val_loss", log_dir=tmp_path)
    loss = objective({**SMALL, "optimizer": "sgd", "lr": 0.05, "batch_size": 128})
    assert 0.0 < loss < 2.3  # better than chance (ln 10)
    assert len(list(tmp_path.glob("local-*"))) == 1


def test_progress_callback_logs_best_loss_only_on_island_rank_0(tmp_path: Path) -> None:
    def ind(i: int, loss: float, status: str = "ok") -> SimpleNamespace:
        return SimpleNamespace(
            params={},
            loss=loss,
            status=status,
            island=2,
            rank=i % 2,
            generation=i,
            id=f"{i % 2}-{i}",
            start=100.0 + i,
            end=101.0 + i,
        )

    first, other = TensorBoardProgress(tmp_path, island_rank=0), TensorBoardProgress(tmp_path / "x", island_rank=1)
    for i, loss in enumerate([-0.5, math.inf, -0.7, -0.6]):
        status = "failed" if math.isinf(loss) else "ok"
        first.on_result(ind(i, loss, status))
        other.on_result(ind(i, loss, status))
    first.close()
    other.close()
    assert not (tmp_path / "x").exists()
    events = _events(tmp_path / "island_2")
    best = events.Scalars("best_loss/island_2")
    assert [(e.step, e.value) for e in best] == [
        (1, -0.5),
        (2, -0.5),
        (3, pytest.approx(-0.7)),
        (4, pytest.approx(-0.7)),
    ]
    assert best[0].wall_time == 101.0
    assert "best_loss_by_time/island_2" in events.Tags()["scalars"]
    with pytest.raises(ValueError, match="island_rank"):
        TensorBoardProgress(tmp_path, island_rank=-1)


def test_tensorboard_progress_is_a_callback_that_learns_its_island_rank_and_closes_at_the_end(tmp_path: Path) -> None:
    import evohpo

    space = {"x": (-1.0, 1.0)}
    for rank in (0, 1):  # a single worker is island rank 0; an explicit rank 1 writes nothing
        tb = TensorBoardProgress(tmp_path / str(rank), island_rank=None if rank == 0 else 1)
        evohpo.optimize(lambda p: p["x"] ** 2, space, generations=6, comm=None, callbacks=[tb])
        assert tb.island_rank == rank and tb._writers == {}  # closed by on_end
    assert _events(tmp_path / "0" / "island_0").Scalars("best_loss/island_0")[-1].step == 6
    assert not (tmp_path / "1").exists()


def test_ctrl_c_during_training_stays_a_keyboard_interrupt(digits: Any, tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import Callback

    class Interrupt(Callback):
        def on_train_start(self, trainer: Any, module: Any) -> None:
            raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGINT)
    objective = LightningObjective(digits, epochs=1, log_dir=None, callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        objective(SMALL)
    assert signal.getsignal(signal.SIGINT) == before  # Lightning had set it to SIG_IGN
