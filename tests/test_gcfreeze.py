"""SurvivorFreezer: full collections skip the archive once it is frozen; the process is left as found."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

import evohpo
from evohpo.parallel import gcfreeze
from evohpo.parallel.gcfreeze import SurvivorFreezer


class Entry:
    """A GC-tracked stand-in for an archived individual."""


@pytest.fixture(autouse=True)
def _nothing_frozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def _tracked_ids() -> set[int]:
    return {id(o) for o in gc.get_objects()}


def test_survivors_leave_the_collected_generations_until_close() -> None:
    archive = [Entry() for _ in range(50)]
    freezer = SurvivorFreezer(every=50)
    freezer.tick(49)
    assert gc.get_freeze_count() == 0 and freezer.freezes == 0
    freezer.tick(50)
    assert freezer.freezes == 1 and gc.get_freeze_count() >= len(archive)
    assert not {id(e) for e in archive} & _tracked_ids()  # no collection walks them now
    newer = [Entry() for _ in range(10)]
    freezer.tick(99)  # fewer than `every` since the last freeze
    assert freezer.freezes == 1 and {id(e) for e in newer} <= _tracked_ids()
    freezer.tick(100)
    assert freezer.freezes == 2 and not {id(e) for e in newer} & _tracked_ids()
    freezer.close()
    assert gc.get_freeze_count() == 0 and {id(e) for e in archive} <= _tracked_ids()
    freezer.close()  # idempotent
    assert gc.get_freeze_count() == 0


def test_garbage_cycles_are_collected_before_freezing() -> None:
    a, b = Entry(), Entry()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    del a, b
    freezer = SurvivorFreezer(every=1)
    freezer.tick(1)
    assert freezer.freezes == 1 and ref() is None  # collected, not frozen for the rest of the search
    freezer.close()


def test_off_when_the_process_froze_objects_itself_or_disabled_collection() -> None:
    mine = [Entry() for _ in range(5)]
    gc.freeze()
    theirs = gc.get_freeze_count()
    freezer = SurvivorFreezer(every=1)
    assert not freezer.active
    freezer.tick(10)
    freezer.close()
    assert gc.get_freeze_count() == theirs  # their frozen objects stay frozen
    gc.unfreeze()
    gc.disable()
    assert not SurvivorFreezer(every=1).active
    gc.enable()
    assert not SurvivorFreezer(every=1, enabled=False).active
    assert mine


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every=0"):
        SurvivorFreezer(every=0)


def test_a_search_freezes_while_it_runs_and_unfreezes_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcfreeze, "FREEZE_EVERY", 20)
    counts: list[int] = []

    def loss(p: dict) -> float:
        counts.append(gc.get_freeze_count())
        return p["x"] ** 2

    r = evohpo.optimize(loss, {"x": (-1.0, 1.0)}, generations=60, comm=None, seed=0)
    assert r.n_evaluations == 60
    assert counts[0] == 0 and max(counts) > 0  # frozen after the first 20
    assert gc.get_freeze_count() == 0


def test_unfrozen_after_a_search_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcfreeze, "FREEZE_EVERY", 5)

    def loss(p: dict) -> float:
        if gc.get_freeze_count() > 0:
            raise RuntimeError("boom")
        return p["x"]

    with pytest.raises(RuntimeError, match="boom"):
        evohpo.optimize(loss, {"x": (-1.0, 1.0)}, generations=50, comm=None, seed=0, on_error="raise")
    assert gc.get_freeze_count() == 0
