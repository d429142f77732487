"""Tests of the journal package: the per-rank journals (writer, reader), prepare() and restore()."""

from __future__ import annotations

import json
import math
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evohpo.core.individual import Individual
from evohpo.core.space import Choice, Float, Int, Space
from evohpo.journal import directory as ckdir
from evohpo.journal import writer
from evohpo.journal.directory import CheckpointMismatch, prepare
from evohpo.journal.files import journal_path
from evohpo.journal.reader import TornRecordWarning, read_meta, read_records
from evohpo.journal.records import FORMAT
from evohpo.journal.records import end as end_record
from evohpo.journal.records import start as start_record
from evohpo.journal.restore import Restored, restore
from evohpo.journal.writer import Journal, NullJournal

SPACE = Space({"lr": Float(1e-4, 1e-1, log=True), "layers": Int(1, 4), "act": Choice(["relu", "tanh"])})


def meta(space: Space = SPACE, islands: list[int] | None = None, ranks: int = 4) -> dict[str, Any]:
    return {"format": FORMAT, "space": space.describe(), "islands": islands or [2, 2], "ranks": ranks}


def start(rank: int, gen: int, island: int = 0, t: float = 0.0) -> dict[str, Any]:
    return start_record(f"{rank}-{gen}", {"lr": 0.01, "layers": gen % 4 + 1, "act": "relu"}, island, gen, t)


def individual(rank: int, gen: int, loss: float | None = 0.5, status: str = "ok", island: int = 0,
               t: float = 0.0, began: float | None = None) -> Individual:
    return Individual(id=f"{rank}-{gen}", params={"lr": 0.01, "layers": gen % 4 + 1, "act": "relu"},
                      loss=math.inf if loss is None else loss, status=status, island=island, rank=rank,
                      generation=gen, start=t - 1.0 if began is None else began, end=t,
                      error=None if status == "ok" else "boom")


def end(rank: int, gen: int, loss: float | None = 0.5, status: str = "ok", island: int = 0,
        t: float = 0.0) -> dict[str, Any]:
    return end_record(individual(rank, gen, loss, status, island, t))


def ran(rank: int, gen: int, loss: float | None = 0.5, status: str = "ok", island: int = 0,
        t: float = 0.0) -> list[dict[str, Any]]:
    """The start and end records of one evaluation."""
    return [start(rank, gen, island, t - 1.0), end(rank, gen, loss, status, island, t)]


def legacy_end(rank: int, gen: int, loss: float | None = 0.5, island: int = 0, t: float = 0.0) -> dict[str, Any]:
    """A format /1 end record: it repeats the fields of its start record."""
    return {"ev": "end", **individual(rank, gen, loss, island=island, t=t).to_dict(), "t": t}


def migrate(ident: str, src: int, dst: int, hop: int, mode: str = "migrate", t: float = 0.0) -> dict[str, Any]:
    return {"ev": "migrate", "id": ident, "from": src, "to": dst, "hop": hop, "mode": mode, "t": t}


def write(directory: Path, rank: int, records: list[dict[str, Any]]) -> Path:
    with Journal(directory, rank, fsync_interval=math.inf) as journal:
        for rec in records:
            journal.write(rec)
    return journal.path


# --- Journal ------------------------------------------------------------------------------------------
def test_round_trip(tmp_path: Path) -> None:
    state = {"ev": "state", "rank": 0, "gen": 3, "evals": 2, "rng": np.random.default_rng(7).bit_generator.state,
             "propagator": {"sigma": 0.1}, "t": 9.0}
    recs0 = [start(0, 0, t=1), end(0, 0, 0.25, t=2), start(0, 1, t=3), end(0, 1, None, "failed", t=4),
             start(0, 2, t=5), end(0, 2, 0.75, "pruned", t=6), state,
             {"ev": "resume", "resumed": 3, "unfinished": 0, "t": 10}, {"ev": "done", "reason": "budget", "t": 11}]
    recs1 = [start(1, 0, island=1, t=1.5), end(1, 0, 0.125, island=1, t=2.5)]
    write(tmp_path, 0, recs0)
    write(tmp_path, 1, recs1)

    with_rank = [r if "rank" in r else r | {"rank": 0} for r in recs0] + [r | {"rank": 1} for r in recs1]
    assert list(read_records(tmp_path)) == with_rank
    r = restore(tmp_path)
    assert isinstance(r, Restored)
    by_id = {i.id: i for i in r.individuals}
    assert sorted(by_id) == ["0-0", "0-1", "0-2", "1-0"]
    assert by_id["0-0"] == individual(0, 0, 0.25, t=2)  # joined with its start record (start time t=1)
    assert by_id["0-0"].loss == 0.25 and by_id["0-0"].params == {"lr": 0.01, "layers": 1, "act": "relu"}
    assert by_id["0-1"].status == "failed" and by_id["0-1"].loss == math.inf and by_id["0-1"].error == "boom"
    assert by_id["0-2"].status == "pruned" and by_id["0-2"].generation == 2
    assert by_id["1-0"].island == 1 and by_id["1-0"].rank == 1
    assert [i.end for i in r.individuals] == sorted(i.end for i in r.individuals)
    assert r.unfinished == [] and r.copies == []
    assert r.evaluations == {0: 3, 1: 1} and r.n_evaluations == 4
    assert r.states == {0: state}
    rng = np.random.default_rng()
    rng.bit_generator.state = r.states[0]["rng"]
    assert rng.random() == np.random.default_rng(7).random()


def test_records_get_the_file_rank_when_absent(tmp_path: Path) -> None:
    write(tmp_path, 5, [migrate("5-0", 0, 1, 1), {"ev": "done", "reason": "x", "t": 1.0}])
    assert [r["rank"] for r in read_records(tmp_path)] == [5, 5]
    assert journal_path(tmp_path, 5).name == "journal-r0005.jsonl"


def test_format_1_end_records_need_no_start_record(tmp_path: Path) -> None:
    rec = legacy_end(2, 7, 0.25, island=1, t=5.0)
    rec["gen"] = rec.pop("generation")
    write(tmp_path, 2, [rec])
    [ind] = restore(tmp_path).individuals
    assert (ind.generation, ind.loss, ind.island, ind.start, ind.end) == (7, 0.25, 1, 4.0, 5.0)
    for rank in (0, 1, 3):  # every rank of the run had its journal (an older one may be empty)
        journal_path(tmp_path, rank).touch()
    (tmp_path / "meta.json").write_text(json.dumps(meta() | {"format": "evohpo-journal/1"}))  # an older one ...
    assert prepare(tmp_path, meta()) == "resume" and read_meta(tmp_path)["format"] == FORMAT  # ... resumes


def test_end_record_is_joined_with_the_start_record_of_its_own_journal(tmp_path: Path) -> None:
    rec = end(0, 3, 0.5, t=9.0)
    assert set(rec) == {"ev", "id", "loss", "status", "t"}  # only what the start record does not hold
    write(tmp_path, 1, [start(0, 3, island=1, t=2.0)])  # another rank's start of the same id does not count
    path = write(tmp_path, 0, [rec])
    with pytest.raises(ValueError, match=rf"{path.name}: line 1: 'end' record of id='0-3' has no earlier 'start'"):
        restore(tmp_path)
    path.unlink()
    write(tmp_path, 0, [start(0, 3, island=1, t=2.0), {"ev": "migrate", "id": "x", "to": 0, "hop": 1}, rec])
    [ind] = restore(tmp_path).individuals
    assert (ind.island, ind.rank, ind.generation, ind.start, ind.end, ind.params) == (
        1, 0, 3, 2.0, 9.0, start(0, 3)["params"])


def test_write_adds_time_and_rejects_bad_records(tmp_path: Path) -> None:
    j = Journal(tmp_path, 0)
    j.write({"ev": "done", "reason": "x"})
    with pytest.raises(ValueError, match="loss"):
        j.write({"ev": "end", "id": "0-1", "loss": math.inf})
    with pytest.raises(ValueError, match="'ev'"):
        j.write({"id": "0-1"})
    j.write({"ev": "state", "rng": {"key": np.arange(3, dtype=np.uint32), "pos": np.int64(2)}})
    j.close()
    j.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        j.write({"ev": "done"})
    recs = list(read_records(tmp_path))
    assert [r["ev"] for r in recs] == ["done", "state"]
    assert isinstance(recs[0]["t"], float)
    assert recs[1]["rng"] == {"key": [0, 1, 2], "pos": 2}


@pytest.mark.parametrize("kwargs", [{"rank": -1}, {"rank": True}, {"rank": 1.0}, {"fsync_interval": -1.0},
                                    {"fsync_interval": math.nan}])
def test_journal_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    args = {"rank": 0, "fsync_interval": 1.0, **kwargs}
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        Journal(tmp_path, **args)


def test_fsync_at_intervals_and_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(writer.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    clock = [100.0]
    monkeypatch.setattr(writer.time, "monotonic", lambda: clock[0])
    j = Journal(tmp_path, 0, fsync_interval=10.0)
    for _ in range(5):
        j.write({"ev": "done", "t": 0.0})
        clock[0] += 3.0
    assert len(synced) == 1  # at 100+12 >= 100+10; not at 103, 106, 109, 115 (< 112+10)
    j.close()
    assert len(synced) == 2
    every = Journal(tmp_path, 1, fsync_interval=0)
    every.write({"ev": "done", "t": 0.0})
    every.write({"ev": "done", "t": 0.0})
    assert len(synced) == 4
    every.close()


def test_writes_append_without_rewriting(tmp_path: Path) -> None:
    j = Journal(tmp_path, 3, fsync_interval=math.inf)
    first = {"ev": "start", "id": "3-0", "params": {"x": 1}, "island": 0, "rank": 3, "gen": 0, "t": 1.0}
    j.write(first)
    head = j.path.read_bytes()
    inode = j.path.stat().st_ino
    sizes = [len(head)]
    for k in range(1, 20_000):
        j.write({"ev": "end", "id": f"3-{k}", "params": {"x": k}, "loss": k / 7, "status": "ok", "t": float(k)})
        sizes.append(j.path.stat().st_size)
    j.close()
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    assert j.path.stat().st_ino == inode
    data = j.path.read_bytes()
    assert data.startswith(head) and data.count(b"\n") == 20_000 and len(data) == sizes[-1]
    assert sum(1 for _ in read_records(tmp_path)) == 20_000


def test_null_journal(tmp_path: Path) -> None:
    with NullJournal(tmp_path, 0) as j:
        j.write({"ev": "done"})
        j.close()
    assert list(tmp_path.iterdir()) == []
    assert j.path == Path(os.devnull)


# --- unfinished evaluations -------------------------------------------------------------------------------
def test_start_without_end_is_unfinished(tmp_path: Path) -> None:
    write(tmp_path, 0, [start(0, 0, t=1), end(0, 0, t=2), start(0, 1, island=1, t=3)])
    r = restore(tmp_path)
    assert [i.id for i in r.individuals] == ["0-0"]
    assert len(r.unfinished) == 1
    u = r.unfinished[0]
    assert {k: u[k] for k in ("id", "params", "island", "rank", "gen")} == {
        "id": "0-1", "params": start(0, 1)["params"], "island": 1, "rank": 0, "gen": 1}
    assert r.evaluations == {0: 1}


def test_interrupted_end_is_unfinished(tmp_path: Path) -> None:
    write(tmp_path, 0, [start(0, 0, t=1), end(0, 0, None, "interrupted", t=2)])
    r = restore(tmp_path)
    assert r.individuals == [] and r.n_evaluations == 0 and r.evaluations == {0: 0}
    assert [(u["id"], u["gen"], u["params"]) for u in r.unfinished] == [("0-0", 0, start(0, 0)["params"])]


def test_interrupted_then_rerun_is_finished(tmp_path: Path) -> None:
    # rank 3 was interrupted; after a restart with fewer ranks, rank 1 re-ran the same id
    write(tmp_path, 3, [start(3, 4, t=1), end(3, 4, None, "interrupted", t=2)])
    write(tmp_path, 1, [start(3, 4, t=10) | {"rank": 1}, end(3, 4, 0.5, t=11) | {"rank": 1}])
    r = restore(tmp_path)
    assert r.unfinished == []
    assert [(i.id, i.status, i.loss, i.rank) for i in r.individuals] == [("3-4", "ok", 0.5, 1)]
    assert r.evaluations == {1: 1, 3: 0}


def test_unfinished_deduplicated_by_id(tmp_path: Path) -> None:
    # started, interrupted, started again after a restart, killed before any end: listed once, latest first
    write(tmp_path, 0, [start(0, 0, t=1), end(0, 0, None, "interrupted", t=2), start(0, 0, island=1, t=5),
                        start(0, 1, t=6)])
    r = restore(tmp_path)
    assert [(u["id"], u["island"], u["ev"]) for u in r.unfinished] == [("0-0", 1, "start"), ("0-1", 0, "start")]


# --- migration and pollination ------------------------------------------------------------------------------
def test_migration_there_and_back(tmp_path: Path) -> None:
    write(tmp_path, 0, [start(0, 0), end(0, 0, island=0), migrate("0-0", 0, 1, hop=1, t=5)])
    write(tmp_path, 2, [migrate("0-0", 1, 0, hop=2, t=6)])
    r = restore(tmp_path)
    assert [(i.id, i.island) for i in r.individuals] == [("0-0", 0)]
    assert r.copies == []


def test_migration_uses_the_highest_hop_not_file_order_or_time(tmp_path: Path) -> None:
    # the last hop sits in the lower rank's file and carries an earlier clock (skew between nodes)
    write(tmp_path, 0, [start(0, 0), end(0, 0, island=0), migrate("0-0", 1, 2, hop=2, t=1.0)])
    write(tmp_path, 1, [migrate("0-0", 0, 1, hop=1, t=50.0)])
    assert [i.island for i in restore(tmp_path).individuals] == [2]


def test_single_migration(tmp_path: Path) -> None:
    write(tmp_path, 0, [*ran(0, 0, island=0), *ran(0, 1, island=0), migrate("0-1", 0, 3, hop=1)])
    r = restore(tmp_path)
    assert {i.id: i.island for i in r.individuals} == {"0-0": 0, "0-1": 3}
    assert r.ran_on == {"0-0": 0, "0-1": 0}  # where it was evaluated, not where it lives now


def test_pollination_copies(tmp_path: Path) -> None:
    write(tmp_path, 0, [*ran(0, 0, island=0, t=1), migrate("0-0", 0, 1, 1, "pollinate"),
                        migrate("0-0", 0, 2, 1, "pollinate"), migrate("0-0", 0, 1, 1, "pollinate"),
                        migrate("9-9", 0, 1, 1, "pollinate")])  # unknown id: nothing to copy
    r = restore(tmp_path)
    assert [(i.id, i.island) for i in r.individuals] == [("0-0", 0)]
    assert [(island, ind.id, ind.island) for island, ind in r.copies] == [(1, "0-0", 1), (2, "0-0", 2)]
    assert r.copies[0][1].loss == 0.5 and r.n_evaluations == 1


def test_bad_migrate_mode_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, 0, [*ran(0, 0), migrate("0-0", 0, 1, 1, "teleport")])
    with pytest.raises(ValueError, match=rf"{path.name}: line 3: mode='teleport'"):
        restore(tmp_path)


# --- torn and corrupt journals ------------------------------------------------------------------------------
def test_torn_last_line_is_skipped_with_warning(tmp_path: Path) -> None:
    path = write(tmp_path, 0, [start(0, 0), end(0, 0), start(0, 1)])
    line = json.dumps(end(0, 1)).encode()
    with open(path, "ab") as f:
        f.write(line[: len(line) // 2])  # the crash cut this write short
    with pytest.warns(TornRecordWarning, match=r"journal-r0000\.jsonl.*line 4"):
        r = restore(tmp_path)
    assert [i.id for i in r.individuals] == ["0-0"]
    assert [u["id"] for u in r.unfinished] == ["0-1"]


def test_torn_middle_line_raises(tmp_path: Path) -> None:
    path = write(tmp_path, 0, [start(0, 0)])
    with open(path, "ab") as f:
        f.write(b'{"ev": "end", "id": "0-0", "par\n')
        f.write(json.dumps(start(0, 1)).encode() + b"\n")
    with pytest.raises(ValueError, match=r"journal-r0000\.jsonl: line 2"):
        list(read_records(tmp_path))


def test_non_object_line_counts_as_undecodable(tmp_path: Path) -> None:
    path = write(tmp_path, 0, [start(0, 0)])
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00\x00")  # a power loss can leave zeros at the end
    with pytest.warns(TornRecordWarning):
        assert len(list(read_records(tmp_path))) == 1


def test_reopening_moves_a_torn_tail_aside(tmp_path: Path) -> None:
    path = write(tmp_path, 0, [start(0, 0), end(0, 0)])
    torn = json.dumps(start(0, 1)).encode()[:20]
    with open(path, "ab") as f:
        f.write(torn)
    with pytest.warns(TornRecordWarning, match="moved"):
        j = Journal(tmp_path, 0)
    j.write(start(0, 1))
    j.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = restore(tmp_path)  # no torn line left in the middle
    assert [i.id for i in r.individuals] == ["0-0"] and [u["id"] for u in r.unfinished] == ["0-1"]
    assert (tmp_path / "journal-r0000.jsonl.torn").read_bytes() == torn + b"\n"


def test_reopening_terminates_a_complete_last_line(tmp_path: Path) -> None:
    path = tmp_path / "journal-r0000.jsonl"
    path.write_bytes((json.dumps(start(0, 0)) + "\n" + json.dumps(end(0, 0))).encode())  # newline missing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Journal(tmp_path, 0) as j:
            for rec in ran(0, 1):
                j.write(rec)
    assert [i.id for i in restore(tmp_path).individuals] == ["0-0", "0-1"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["ok", "failed", "pruned", "interrupted", None]), min_size=1, max_size=12),
       st.floats(0.0, 1.0))
def test_any_cut_of_the_last_write_loses_only_that_write(tmp_path_factory: pytest.TempPathFactory,
                                                         statuses: list[str | None], cut: float) -> None:
    d = tmp_path_factory.mktemp("cut")
    records = []
    for gen, status in enumerate(statuses):
        records.append(start(0, gen, t=2 * gen))
        if status is not None:
            records.append(end(0, gen, 0.5, status, t=2 * gen + 1))
    path = write(d, 0, records[:-1])
    line = json.dumps(records[-1]).encode() + b"\n"
    keep = int(cut * len(line))
    with open(path, "ab") as f:
        f.write(line[:keep])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornRecordWarning)
        r = restore(d)
    written = records if keep >= len(line) - 1 else records[:-1]  # only the newline missing: still whole
    done = {rec["id"] for rec in written if rec["ev"] == "end" and rec["status"] != "interrupted"}
    begun = {rec["id"] for rec in written}
    assert {i.id for i in r.individuals} == done
    assert {u["id"] for u in r.unfinished} == begun - done
    assert r.n_evaluations == len(done) == r.evaluations[0]


# --- loading never runs code --------------------------------------------------------------------------------
def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = "cos\nsystem\n(S'touch pwned'\ntR."
    blob = pickle.dumps({"a": 1}).decode("latin-1")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("checkpoint loading must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    rec = end(0, 0) | {"params": {"act": payload, "blob": blob}, "error": payload}
    write(tmp_path, 0, [rec, {"ev": "state", "rank": 0, "rng": payload, "t": 1.0}])
    r = restore(tmp_path)
    assert r.individuals[0].params == {"act": payload, "blob": blob}
    assert r.individuals[0].error == payload and r.states[0]["rng"] == payload
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    import evohpo.journal.reader
    import evohpo.journal.restore

    assert not any(hasattr(m, "pickle") for m in (evohpo.journal.reader, evohpo.journal.restore))


# --- prepare ---------------------------------------------------------------------------------------------
def test_prepare_fresh_directory(tmp_path: Path) -> None:
    d = tmp_path / "a" / "b"
    assert prepare(d, meta()) == "fresh"
    assert read_meta(d) == meta() | {"journals": 4}  # the journals of this directory's ranks 0-3
    assert [p.name for p in d.iterdir()] == ["meta.json"]
    assert prepare(d, meta()) == "fresh"  # meta.json but no journal: nothing to resume
    assert read_meta(tmp_path) is None


def test_prepare_resume_with_same_meta(tmp_path: Path) -> None:
    prepare(tmp_path, meta(ranks=1))
    write(tmp_path, 0, ran(0, 0))
    assert prepare(tmp_path, meta()) == "resume"
    for rank in (1, 2, 3):  # what the 4 ranks of that run write
        write(tmp_path, rank, [{"ev": "open", "rank": rank, "t": 1.0}])
    assert prepare(tmp_path, meta(islands=[1, 1], ranks=2)) == "resume"  # fewer ranks, same islands
    assert read_meta(tmp_path)["ranks"] == 2 and read_meta(tmp_path)["journals"] == 4
    assert restore(tmp_path).n_evaluations == 1


def test_prepare_space_mismatch_names_the_parameters(tmp_path: Path) -> None:
    prepare(tmp_path, meta())
    write(tmp_path, 0, [end(0, 0)])
    other = Space({"lr": Float(1e-4, 1.0, log=True), "layers": Int(1, 4), "dropout": Float(0.0, 0.5)})
    with pytest.raises(CheckpointMismatch, match="search space") as info:
        prepare(tmp_path, meta(space=other))
    msg = str(info.value)
    assert "changed 'lr'" in msg and '"high": 0.1' in msg and '"high": 1.0' in msg
    assert "added 'dropout'" in msg and "removed 'act'" in msg and "'layers'" not in msg
    assert isinstance(info.value, ValueError)
    assert read_meta(tmp_path) == meta() | {"journals": 4}  # untouched


def test_prepare_island_mismatch(tmp_path: Path) -> None:
    prepare(tmp_path, meta(islands=[2, 2]))
    write(tmp_path, 0, [end(0, 0)])
    with pytest.raises(CheckpointMismatch, match=r"2 islands \[2, 2\].*3 islands \[2, 1, 1\]"):
        prepare(tmp_path, meta(islands=[2, 1, 1]))


def test_prepare_format_mismatch_and_missing_meta(tmp_path: Path) -> None:
    write(tmp_path, 0, [end(0, 0)])
    with pytest.raises(CheckpointMismatch, match="no meta.json"):
        prepare(tmp_path, meta())
    (tmp_path / "meta.json").write_text(json.dumps(meta() | {"format": "evohpo-journal/0"}))
    with pytest.raises(CheckpointMismatch, match="evohpo-journal/0"):
        prepare(tmp_path, meta())
    with pytest.raises(ValueError, match="format"):
        prepare(tmp_path, meta() | {"format": "other"})
    with pytest.raises(ValueError, match="resume"):
        prepare(tmp_path, meta(), resume="yes")  # type: ignore[arg-type]


def test_prepare_fresh_moves_old_files_to_backup(tmp_path: Path) -> None:
    prepare(tmp_path, meta())
    write(tmp_path, 0, [start(0, 0), end(0, 0)])
    write(tmp_path, 1, [start(1, 0)])
    (tmp_path / "journal-r0001.jsonl.torn").write_bytes(b'{"ev": "st\n')
    (tmp_path / "tensorboard").mkdir()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    other = Space({"x": Float(0.0, 1.0)})
    assert prepare(tmp_path, meta(space=other), resume=False) == "fresh"
    backups = [p for p in tmp_path.iterdir() if p.name.startswith("backup-")]
    assert len(backups) == 1
    assert {p.name: p.read_bytes() for p in backups[0].iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([backups[0].name, "meta.json", "tensorboard"])
    assert read_meta(tmp_path)["space"] == other.describe()
    assert restore(tmp_path).n_evaluations == 0


def test_two_fresh_starts_in_the_same_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ckdir, "_timestamp", lambda: "20260101-120000")
    contents = []
    for k in range(3):
        write(tmp_path, 0, [end(0, k)])
        contents.append((tmp_path / "journal-r0000.jsonl").read_bytes())
        assert prepare(tmp_path, meta(), resume=False) == "fresh"
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("backup-"))
    assert names == ["backup-20260101-120000", "backup-20260101-120000-1", "backup-20260101-120000-2"]
    assert [(tmp_path / n / "journal-r0000.jsonl").read_bytes() for n in names] == contents


def test_prepare_rejects_bad_meta_and_file_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON"):
        prepare(tmp_path, {"space": {"x": math.inf}})
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        prepare(f, meta())
    with pytest.raises(FileNotFoundError, match="directory"):
        restore(tmp_path / "missing")


# --- the line encoder ---------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8),
                       st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**63, 2**63 - 1),
                                 st.booleans(), st.text(max_size=12), st.none()), max_size=6),
       st.floats(0, 2e9))
def test_encode_line_round_trips_exactly_with_or_without_orjson(params: dict[str, Any], t: float) -> None:
    rec = start_record("3-17", params, 1, 17, t)
    fast = writer.encode_line(rec)
    assert fast.endswith(b"\n") and fast.count(b"\n") == 1  # newlines inside strings are escaped
    assert json.loads(fast) == rec
    saved, writer.orjson = writer.orjson, None
    try:
        assert json.loads(writer.encode_line(rec)) == rec
    finally:
        writer.orjson = saved


def test_encode_line_refuses_non_finite_floats_and_keeps_big_ints() -> None:
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError):
            writer.encode_line({"ev": "end", "loss": bad})
        with pytest.raises(ValueError):
            writer.encode_line(start_record("0-0", {"x": bad}, 0, 0, 1.0))
    state = {"ev": "state", "rng": np.random.default_rng(3).bit_generator.state, "x": np.float64(0.25)}
    back = json.loads(writer.encode_line(state))
    assert back["rng"] == state["rng"] and isinstance(back["rng"]["state"]["state"], int)  # 128-bit, exact
    assert back["x"] == 0.25


def test_a_short_write_is_continued(tmp_path: Path) -> None:
    class Trickle:  # a file that takes at most 7 bytes per call (a full disk or a signal can do this)
        def __init__(self, f: Any) -> None:
            self.f = f

        def write(self, data: Any) -> int:
            return self.f.write(bytes(data[:7]))

        def fileno(self) -> int:
            return self.f.fileno()

        def close(self) -> None:
            self.f.close()

    j = Journal(tmp_path, 0)
    j._file = Trickle(j._file)
    for rec in ran(0, 0, t=2.0):
        j.write(rec)
    j.close()
    assert [i.id for i in restore(tmp_path).individuals] == ["0-0"]


# --- the directory lock -------------------------------------------------------------------------------------
def test_a_locked_directory_refuses_a_second_search_and_names_the_holder(tmp_path: Path) -> None:
    first = ckdir.DirectoryLock(tmp_path).acquire()
    assert first.held
    with pytest.raises(ckdir.CheckpointInUse, match=rf"in use by another running search \(pid {os.getpid()} on"):
        ckdir.DirectoryLock(tmp_path).acquire()
    first.release()
    first.release()  # twice is a no-op
    with ckdir.DirectoryLock(tmp_path) as second:
        assert second.held
    assert not second.held


def test_a_file_system_without_locks_warns_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import fcntl

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(ckdir.UnlockedWarning, match="make sure no other job"):
        lock = ckdir.DirectoryLock(tmp_path).acquire()
    assert not lock.held
