"""A checkpoint written by evohpo 0.1.0 (the flat layout, before the subpackages) restores and resumes today.

The fixture (tests/fixtures/checkpoint-0.1.0, see its README) holds 147 finished evaluations of 4 ranks on
2 islands, with migrations, failures and one evaluation interrupted by a stop signal; ``restored.json`` is
what version 0.1.0's ``checkpoint.restore`` made of it.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
from pathlib import Path

import evohpo
from evohpo import Choice, Float, Int
from evohpo.journal.finished import inspect
from evohpo.journal.reader import read_records
from evohpo.journal.restore import restore
from evohpo.parallel.transport import ThreadHub

FIXTURE = Path(__file__).parent / "fixtures" / "checkpoint-0.1.0"
SPACE = {"x": Float(-5.0, 5.0), "lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 8),
         "act": Choice(["relu", "tanh", "gelu"])}


def loss(p: dict) -> float:
    return p["x"] ** 2 + math.log10(p["lr"]) ** 2 / 10 + p["n"] / 10 + (p["act"] != "gelu")


def test_restore_reads_a_0_1_0_checkpoint_as_0_1_0_did() -> None:
    expected = json.loads((FIXTURE / "restored.json").read_text())
    r = restore(FIXTURE)
    got = {
        "lives_on": {i.id: i.island for i in r.individuals},
        "ran_on": r.ran_on,
        "status": {i.id: i.status for i in r.individuals},
        "loss": {i.id: (i.loss if i.ok else None) for i in r.individuals},
        "copies": sorted([isl, i.id] for isl, i in r.copies),
        "unfinished": [u["id"] for u in r.unfinished],
        "hops": r.hops,
        "evaluations": {str(k): v for k, v in r.evaluations.items()},
        "state_gen": {str(k): v["gen"] for k, v in r.states.items()},
    }
    assert got == expected
    assert sum(i.island != r.ran_on[i.id] for i in r.individuals) > 0  # some had migrated


def test_a_0_1_0_checkpoint_resumes_to_its_budget_on_another_number_of_ranks(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, directory)
    state = inspect(directory)
    assert not state.finished and state.evaluations == 147  # stopped by SIGUSR1: resumable
    results: dict[int, evohpo.SearchResult] = {}

    def work(transport) -> None:  # 2 workers, one per island (the journals came from 4 ranks)
        results[transport.rank] = evohpo.optimize(loss, SPACE, comm=transport, islands=2, max_evaluations=200,
                                                  seed=11, checkpoint=directory, progress_interval=1e9)

    threads = [threading.Thread(target=work, args=(t,)) for t in ThreadHub(2).transports()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "the resumed search hung"
    assert set(results) == {0, 1}
    for r in results.values():
        assert r.resumed == 147 and r.n_evaluations == 53 and r.reason == "budget reached"
    after = restore(directory)
    assert after.n_evaluations == 200 and not after.unfinished
    ends = [rec for rec in read_records(directory) if rec.get("id") == "3-5" and rec["ev"] == "end"]
    rerun = [rec for rec in ends if rec["status"] != "interrupted"]  # the interrupted one ran again, same id,
    assert len(ends) == 2 and len(rerun) == 1 and rerun[0]["rank"] == 1  # on its island's worker (rank 3 is gone)
    assert len({i.id for i in after.individuals}) == 200  # no id reused by the new run
    assert inspect(directory).finished and evohpo.load(directory).finished
