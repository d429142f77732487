"""Foreign and damaged journals: a resume refuses them naming file and line, ``load`` leaves the damage out
with a warning, and ``evohpo repair`` sets the damaged records aside keeping every good one."""

from __future__ import annotations

import json
import shutil
import threading
import warnings
from pathlib import Path

import pytest

import evohpo
from evohpo import Choice
from evohpo.journal.damage import DamagedCheckpoint, DamagedCheckpointWarning, examine
from evohpo.journal.directory import CheckpointInUse, CheckpointMismatch, DirectoryLock
from evohpo.journal.files import journal_path
from evohpo.journal.reader import read_meta, read_records
from evohpo.journal.repair import repair
from evohpo.parallel.transport import ThreadHub

SPACE = {"x": (0.0, 1.0), "n": (1, 8)}


def loss(p):
    return (p["x"] - 0.3) ** 2 + p.get("n", 0) / 100


def search(d: Path, space=SPACE, budget: int = 12, workers: int = 1, **kw) -> list:
    """``optimize`` on ``workers`` in-process workers (threads on a ThreadHub), each one's result."""
    if workers == 1:
        return [evohpo.optimize(loss, space, max_evaluations=budget, checkpoint=str(d), progress_interval=1e9,
                                **kw)]
    out, errors = {}, []

    def work(t):
        try:
            out[t.rank] = evohpo.optimize(loss, space, comm=t, max_evaluations=budget, checkpoint=str(d),
                                          progress_interval=1e9, **kw)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            t.hub.barrier.abort()

    threads = [threading.Thread(target=work, args=(t,)) for t in ThreadHub(workers).transports()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return [out[r] for r in range(workers)]


def ends(d: Path) -> int:
    return sum(1 for r in read_records(d) if r["ev"] == "end")


def test_a_journal_of_another_space_is_refused_naming_file_and_line(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    search(a, {"x": (0.0, 1.0)})
    search(b, {"x": (0.0, 1.0), "x2": (0.0, 1.0)})
    shutil.copy(journal_path(a, 0), journal_path(b, 1))  # a journal of another search, copied in by mistake
    with pytest.raises(DamagedCheckpoint, match=r"journal-r0001.jsonl: line \d+: a configuration of another "
                                                r"search .*missing \['x2'\]") as info:
        search(b, {"x": (0.0, 1.0), "x2": (0.0, 1.0)}, budget=20)
    assert "evohpo repair" in str(info.value) and len(info.value.problems) >= 12
    with pytest.warns(DamagedCheckpointWarning, match="journal-r0001.jsonl"):
        r = evohpo.load(b)
    assert len(r) == 12  # b's own evaluations only


def test_same_names_with_other_bounds_are_not_counted(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    search(a, {"x": (5.0, 6.0), "n": (1, 8)})
    search(b)
    shutil.copy(journal_path(a, 0), journal_path(b, 1))
    with pytest.raises(DamagedCheckpoint, match=r"parameter 'x': value 5\.\d+ is not in Float\(0\.0, 1\.0\)"):
        search(b, budget=24)
    _, problems = examine(b, read_meta(b))
    assert {p.path.name for p in problems} == {"journal-r0001.jsonl"}


def test_an_emptied_or_deleted_journal_is_refused_and_repair_lets_it_run_again(tmp_path):
    search(tmp_path, budget=16, workers=2)
    assert read_meta(tmp_path)["journals"] == 2
    lost = sum(1 for r in read_records(tmp_path) if r["ev"] == "end" and r["rank"] == 1)
    assert lost > 0
    journal_path(tmp_path, 1).write_bytes(b"")
    with pytest.raises(DamagedCheckpoint, match=r"journal-r0001.jsonl: empty"):
        search(tmp_path, budget=16, workers=2)
    journal_path(tmp_path, 1).unlink()
    with pytest.raises(DamagedCheckpoint, match=r"journal-r0001.jsonl: missing, but meta.json says 2 ranks"):
        search(tmp_path, budget=16)
    with pytest.warns(DamagedCheckpointWarning, match="missing"):
        assert len(evohpo.load(tmp_path)) == 16 - lost
    report = repair(tmp_path)
    assert [p.path.name for p in report.recreated] == ["journal-r0001.jsonl"]
    assert [r["ev"] for r in read_records(tmp_path) if r["rank"] == 1] == ["repair"]
    [r] = search(tmp_path, budget=16)  # one worker now: it re-runs what rank 1 had done
    assert r.resumed + r.n_evaluations == 16 and ends(tmp_path) == 16


def test_a_garbage_line_is_set_aside_and_every_good_record_kept(tmp_path):
    search(tmp_path, budget=12)
    path = journal_path(tmp_path, 0)
    lines = path.read_bytes().splitlines(keepends=True)
    good = len(lines)
    path.write_bytes(b"".join([*lines[:4], b"\x00\x00garbage\n", *lines[4:]]))
    with pytest.raises(DamagedCheckpoint, match=r"journal-r0000.jsonl: line 5: not a JSON record"):
        search(tmp_path, budget=20)
    before = path.read_bytes()
    dry = repair(tmp_path, dry_run=True)
    assert [(p.line, p.path.name) for p in dry.removed] == [(5, "journal-r0000.jsonl")] and dry.dry_run
    assert path.read_bytes() == before and dry.backup is None and "dry run" in str(dry)
    report = repair(tmp_path)
    assert [p.line for p in report.removed] == [5]
    assert path.read_bytes().splitlines(keepends=True) == lines  # exactly the good lines, in order
    assert (report.backup / path.name).read_bytes() == before  # the original, whole
    assert len(lines) == good and "set aside" in str(report)
    assert repair(tmp_path).changed is False
    [r] = search(tmp_path, budget=20)
    assert r.resumed + r.n_evaluations == 20


def test_a_damaged_start_takes_its_orphaned_end_with_it(tmp_path):
    search(tmp_path, budget=6)
    path = journal_path(tmp_path, 0)
    lines = path.read_bytes().splitlines(keepends=True)
    k = next(i for i, ln in enumerate(lines) if b'"ev":"start"' in ln)
    lines[k] = b'{"ev":"start","id":"0-0"\n'  # cut short in the middle of the file
    path.write_bytes(b"".join(lines))
    report = repair(tmp_path)
    assert len(report.removed) == 2  # the start, then its end (no start left for it)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(evohpo.load(tmp_path)) == 5
    assert examine(tmp_path, read_meta(tmp_path))[1] == []


def test_repair_refuses_a_directory_in_use(tmp_path):
    search(tmp_path, budget=3)
    with DirectoryLock(tmp_path), pytest.raises(CheckpointInUse):
        repair(tmp_path)


def test_choices_of_ints_and_of_bools_are_different_spaces(tmp_path):
    search(tmp_path, {"b": Choice([0, 1])}, budget=2)
    with pytest.raises(CheckpointMismatch, match="changed 'b'"):
        search(tmp_path, {"b": Choice([False, True])}, budget=4)


def test_a_journal_record_of_a_foreign_format_is_named(tmp_path):
    search(tmp_path, budget=3)
    with open(journal_path(tmp_path, 0), "ab") as f:
        f.write(json.dumps({"ev": "end", "id": 7}).encode() + b"\n")
        f.write(json.dumps({"ev": "done", "reason": "budget reached", "evals": 3, "t": 1.0}).encode() + b"\n")
    with pytest.raises(DamagedCheckpoint, match=r"line \d+: 'end' record needs a str 'id', got id=7"):
        search(tmp_path, budget=5)


def test_the_command_line_repairs_and_warns(tmp_path, capsys):
    from evohpo.results import cli

    search(tmp_path, budget=6)
    path = journal_path(tmp_path, 0)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:3], b"oops\n", *lines[3:]]))
    assert cli.main(["summary", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert err.count("warning:") == 1 and "journal-r0000.jsonl: line 4" in err and "6 finished" in out
    assert "damaged: 1 record(s)" in out
    assert cli.main(["repair", str(tmp_path), "--dry-run"]) == 0
    assert "would set aside" in capsys.readouterr().out and b"oops" in path.read_bytes()
    assert cli.main(["repair", str(tmp_path)]) == 0
    assert "set aside" in capsys.readouterr().out and b"oops" not in path.read_bytes()
    assert cli.main(["summary", str(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert cli.main(["repair", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_summary_of_a_meta_json_with_an_unknown_type_exits_2_naming_it(tmp_path, capsys):
    from evohpo.results import cli

    search(tmp_path, budget=3)
    meta = read_meta(tmp_path)
    meta["space"]["x"]["type"] = "Real"
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert cli.main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "parameter 'x'" in err and "'Real'" in err and "Traceback" not in err


def test_a_checkpoint_path_that_is_a_file_is_named(tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("mine")
    for where in (f, f / "sub"):
        with pytest.raises(ValueError, match=rf"checkpoint directory='{where}' exists and is not a directory"):
            search(where, budget=2)
    with pytest.raises(ValueError, match="checkpoint=3 must be a directory path"):
        evohpo.optimize(loss, SPACE, max_evaluations=2, checkpoint=3)
    assert f.read_text() == "mine"


def test_a_full_disk_names_the_journal(tmp_path, monkeypatch):
    import errno
    import os as os_

    from evohpo.journal.writer import Journal

    j = Journal(tmp_path, 3, fsync_interval=0)
    j.write({"ev": "open", "rank": 3})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os_, "fsync", full)
    with pytest.raises(OSError, match=r"cannot write the journal .*journal-r0003.jsonl: No space left") as info:
        j.write({"ev": "done", "reason": "x", "evals": 0})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(journal_path(tmp_path, 3))
    monkeypatch.undo()
    j.close()
