"""A checkpoint knows its objective: a resume with another fingerprint or other bounds is refused, naming both."""

from __future__ import annotations

import json

import pytest

import evohpo
from evohpo.journal.directory import CheckpointMismatch


def _loss(p: dict) -> float:
    return (p["x"] - 0.3) ** 2


def _run(tmp_path, space=None, **kw) -> evohpo.SearchResult:
    return evohpo.optimize(_loss, space or {"x": (0.0, 1.0)}, max_evaluations=4, checkpoint=str(tmp_path),
                           progress_interval=0, **kw)


def test_the_fingerprint_is_kept_in_meta_and_the_same_one_resumes(tmp_path) -> None:
    _run(tmp_path, fingerprint={"dataset": "digits", "epochs": 5})
    assert json.loads((tmp_path / "meta.json").read_text())["fingerprint"] == {"dataset": "digits", "epochs": 5}
    again = _run(tmp_path, fingerprint={"epochs": 5, "dataset": "digits"})  # key order does not matter
    assert again.n_evaluations == 0 and again.reason == "budget reached"  # all 4 restored, none re-run


def test_another_fingerprint_is_refused_naming_each_differing_key(tmp_path) -> None:
    _run(tmp_path, fingerprint={"dataset": "digits", "metric": "val_acc", "epochs": 5})
    with pytest.raises(CheckpointMismatch) as e:
        _run(tmp_path, fingerprint={"dataset": "mnist", "metric": "val_acc", "epochs": 1})
    msg = str(e.value)
    assert "dataset='digits', this run has dataset='mnist'" in msg and "epochs=5, this run has epochs=1" in msg
    assert "metric" not in msg.split("written with")[1].split("resume=False")[0]


def test_a_fingerprint_added_or_dropped_on_resume_is_refused(tmp_path) -> None:
    _run(tmp_path)
    with pytest.raises(CheckpointMismatch, match="fingerprint=None, this run has fingerprint='sphere-v2'"):
        _run(tmp_path, fingerprint="sphere-v2")


def test_other_bounds_with_the_same_names_are_refused(tmp_path) -> None:
    _run(tmp_path)
    with pytest.raises(CheckpointMismatch, match="changed 'x'"):
        _run(tmp_path, space={"x": (0.0, 2.0)})


def test_a_fingerprint_that_is_not_json_names_the_argument(tmp_path) -> None:
    with pytest.raises(ValueError, match="fingerprint="):
        _run(tmp_path, fingerprint={"f": object()})
    with pytest.raises(ValueError, match="fingerprint=.*mapping or a string"):
        _run(tmp_path, fingerprint=[1, 2])
