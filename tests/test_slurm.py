"""The SLURM scripts (slurm/): finished.py and submit-chain.sh in-process, then real jobs on a one-node SLURM.

The ``slurm``-marked tests start the local SLURM of /work/shared/tools/slurm-local.sh (it installs itself
with apt-get on first use), submit ``slurm/cpu.sbatch`` running ``slurm/example_search.py`` with a
one-minute time limit, and check that the search is signalled before the limit, exits 0, requeues itself
(or continues in a dependency chain), resumes from its journals and completes its budget. Both jobs run at
the same time; together they take about 1.5-3 minutes, set by SLURM's 30 s limit checks.

    pytest -m slurm tests/test_slurm.py -s      # -s shows the progress lines
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLURM_DIR = ROOT / "slurm"
SLURM_LOCAL = Path(os.environ.get("EVOHPO_SLURM_LOCAL", "/work/shared/tools/slurm-local.sh"))

# The search: 4 ranks x 2 evaluations/s; 440 evaluations take ~55 s of work, more than one 1-minute
# allocation can hold (the signal comes at most 50 s after the start, see below), and a few allocations do.
BUDGET, SLEEP, GRACE = 440, 0.5, 5.0
# --time=1 with --signal=B:USR1@10: SLURM checks limits every 30 s, so the signal arrives 10-40 s before the
# limit, i.e. 20-50 s after the start (time for the ranks to start first) and >= 10 s before the kill.
SBATCH_LIMITS = ["--time=1", "--signal=B:USR1@10"]
CHAIN_LENGTH = 5  # each job does >= ~14 s of work, so 4 always finish 55 s of it; the 5th is margin
DEADLINE = 360.0  # seconds for all jobs together; the test fails (and cancels them) after that
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}


def load_finished():
    spec = importlib.util.spec_from_file_location("evohpo_slurm_finished", SLURM_DIR / "finished.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


finished = load_finished()


# --- finished.py on hand-written journals -------------------------------------------------------------
def write_journals(directory: Path, runs: dict[int, list[dict]], ranks: int | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for rank, recs in runs.items():
        with open(directory / f"journal-r{rank:04d}.jsonl", "w") as f:
            for rec in recs:
                f.write(json.dumps(rec) + "\n")
    if ranks is not None:
        (directory / "meta.json").write_text(json.dumps({"format": "evohpo-journal/1", "ranks": ranks}))
    return directory


def run_of(rank: int, n: int, reason: str | None, first: int = 0) -> list[dict]:
    """Records of one run of one rank: n evaluations, then a done record (None: cut off without one)."""
    recs = []
    for k in range(first, first + n):
        ident = f"{rank}-{k}"
        recs += [{"ev": "start", "id": ident, "params": {"x": k}, "rank": rank, "gen": k},
                 {"ev": "end", "id": ident, "params": {"x": k}, "loss": float(k), "status": "ok", "rank": rank}]
    if reason is not None:
        recs.append({"ev": "done", "reason": reason, "evals": first + n})
    return recs


def check(directory: Path, *extra: str) -> tuple[int, str]:
    rc, text, _ = finished.inspect(directory, finished.FINISHED + extra)
    return rc, text


def test_finished_when_every_rank_reached_its_budget(tmp_path):
    d = write_journals(tmp_path / "c", {r: run_of(r, 3, "budget reached") for r in range(4)}, ranks=4)
    rc, text = check(d)
    assert rc == 0 and "budget reached [ranks 0, 1, 2, 3]" in text and "12 evaluations" in text
    assert finished.main([str(d), "--quiet"]) == 0


def test_an_exhausted_space_is_finished_too(tmp_path):
    d = write_journals(tmp_path / "c", {0: run_of(0, 2, "space exhausted: all 2 grid points evaluated"),
                                        1: run_of(1, 1, "budget reached")}, ranks=2)
    assert check(d)[0] == 0


def test_a_signalled_rank_means_not_finished(tmp_path):
    runs = {r: run_of(r, 2, "received SIGUSR1 (on rank 1)") for r in range(3)}
    runs[1] = run_of(1, 2, "received SIGUSR1")
    runs[3] = run_of(3, 2, "budget reached")
    rc, text = check(write_journals(tmp_path / "c", runs, ranks=4))
    assert rc == 1
    assert "received SIGUSR1 (on rank 1) [ranks 0, 2]" in text and "received SIGUSR1 [rank 1]" in text


def test_only_the_latest_run_of_each_rank_counts(tmp_path):
    first = {r: run_of(r, 2, "received SIGTERM") for r in range(2)}
    resumed = {r: first[r] + [{"ev": "resume", "resumed": 4}] + run_of(r, 2, "budget reached", first=2)
               for r in range(2)}
    assert check(write_journals(tmp_path / "a", resumed, ranks=2))[0] == 0
    # a rank whose latest run started but wrote no done record (killed, crashed) is not finished
    cut = {0: resumed[0], 1: resumed[1] + [{"ev": "resume", "resumed": 8}] + run_of(1, 1, None, first=4)}
    rc, text = check(write_journals(tmp_path / "b", cut, ranks=2))
    assert rc == 1 and "rank 1" in text and "no 'done' record" in text


def test_journals_of_ranks_beyond_the_latest_run_are_ignored(tmp_path):
    runs = {r: run_of(r, 1, "budget reached") for r in range(2)}
    runs[2] = run_of(2, 1, "received SIGUSR1")  # an earlier run had 3 ranks, the latest has 2
    assert check(write_journals(tmp_path / "c", runs, ranks=2))[0] == 0
    assert check(write_journals(tmp_path / "d", runs))[0] == 1  # without meta.json every journal counts


def test_a_missing_journal_means_not_finished(tmp_path):
    rc, text = check(write_journals(tmp_path / "c", {0: run_of(0, 1, "budget reached")}, ranks=2))
    assert rc == 1 and "no journal [rank 1]" in text


def test_time_limit_is_unfinished_unless_accepted(tmp_path):
    d = write_journals(tmp_path / "c", {0: run_of(0, 1, "time limit of 30 s reached")}, ranks=1)
    assert check(d)[0] == 1
    assert finished.main([str(d), "--accept", "time limit", "-q"]) == 0


def test_cannot_tell_without_a_directory_or_journals(tmp_path):
    assert check(tmp_path / "nowhere")[0] == 2
    (tmp_path / "empty").mkdir()
    assert check(tmp_path / "empty")[0] == 2


def test_count_skips_interrupted_and_duplicate_ends_and_a_torn_line(tmp_path, capsys):
    recs = run_of(0, 3, None) + [
        {"ev": "end", "id": "0-9", "params": {}, "loss": None, "status": "interrupted"},
        {"ev": "end", "id": "0-1", "params": {"x": 1}, "loss": 1.0, "status": "ok"},  # the same id again
        {"ev": "done", "reason": "received SIGUSR1"}]
    d = write_journals(tmp_path / "c", {0: recs}, ranks=1)
    with open(d / "journal-r0000.jsonl", "a") as f:
        f.write('{"ev": "start", "id": "0-1')  # a write cut short
    assert finished.main([str(d), "--count"]) == 1
    assert capsys.readouterr().out.strip() == "3"


def test_finished_reads_what_evohpo_writes(tmp_path):
    """The real journal format: a search stopped by SIGUSR1 is unfinished; resumed to its budget, finished."""
    import evohpo
    from evohpo.parallel.transport import local_transport

    calls = {"n": 0}

    def loss(params):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        return params["x"] ** 2

    d = tmp_path / "ckpt"
    space = {"x": evohpo.Float(-1.0, 1.0)}
    first = evohpo.optimize(loss, space, comm=local_transport(), max_evaluations=6, checkpoint=str(d),
                            grace_period=5.0, progress_interval=60.0)
    assert "SIGUSR1" in first.reason
    rc, text = check(d)
    assert rc == 1 and "received SIGUSR1" in text
    evohpo.optimize(loss, space, comm=local_transport(), max_evaluations=6, checkpoint=str(d),
                    grace_period=5.0, progress_interval=60.0)
    rc, text = check(d)
    assert rc == 0 and "6 evaluations" in text, text


# --- submit-chain.sh with a stand-in sbatch -------------------------------------------------------------
def test_submit_chain_links_jobs_and_passes_options(tmp_path):
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "sbatch"
    fake.write_text("#!/usr/bin/env python3\nimport json, os, sys\n"
                    f"log = {str(log)!r}\n"
                    "n = sum(1 for _ in open(log)) if os.path.exists(log) else 0\n"
                    "open(log, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                    "print(f'{100 + n};cluster')\n")
    fake.chmod(0o755)
    env = {**os.environ, "SBATCH": str(fake)}
    env.pop("EVOHPO_REQUEUE", None)
    out = subprocess.run(["bash", str(SLURM_DIR / "submit-chain.sh"), "3", "-J", "exp", "--time=5",
                          str(SLURM_DIR / "cpu.sbatch"), "run.py", "--epochs", "2"],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["100", "101", "102"]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 3
    for i, argv in enumerate(calls):
        script = argv.index(str(SLURM_DIR / "cpu.sbatch"))
        assert argv[script + 1:] == ["run.py", "--epochs", "2"]
        assert "-J" in argv[:script] and "--time=5" in argv[:script]
        exports = [a for a in argv[:script] if a.startswith("--export=")]
        assert exports and "EVOHPO_REQUEUE=0" in exports[0]
        deps = [a for a in argv[:script] if a.startswith("--dependency=")]
        if i == 0:
            assert not deps and "EVOHPO_SKIP_IF_FINISHED" not in exports[0]
        else:
            assert deps == [f"--dependency=afterany:{99 + i}"]
            assert "EVOHPO_SKIP_IF_FINISHED=1" in exports[0] and "EVOHPO_FRESH=0" in exports[0]
    bad = subprocess.run(["bash", str(SLURM_DIR / "submit-chain.sh"), "0", str(SLURM_DIR / "cpu.sbatch")],
                         capture_output=True, text=True, env=env, timeout=30)
    assert bad.returncode == 2 and "positive integer" in bad.stderr


# --- real jobs on the local SLURM ----------------------------------------------------------------------
def note(msg: str) -> None:
    print(f"[test_slurm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def skip(reason: str):
    note(f"SKIP: {reason}")
    pytest.skip(reason)


def start_slurm() -> dict[str, str]:
    """Start the local SLURM (or skip, saying why); the environment for its clients."""
    if not SLURM_LOCAL.exists():
        skip(f"no local SLURM script at {SLURM_LOCAL} (set EVOHPO_SLURM_LOCAL)")
    if shutil.which("bash") is None:
        skip("bash not found")
    try:
        import mpi4py  # noqa: F401
    except ImportError as e:
        skip(f"mpi4py is not importable by {sys.executable}: {e}")
    note(f"{SLURM_LOCAL} start (installs SLURM with apt-get on first use: 20-40 s)")
    try:
        out = subprocess.run(["bash", str(SLURM_LOCAL), "start"], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        skip(f"{SLURM_LOCAL} start did not finish within 300 s")
    if out.returncode != 0:
        skip(f"{SLURM_LOCAL} start failed (exit {out.returncode}): {(out.stdout + out.stderr)[-1500:]}")
    env = dict(os.environ)
    conf = subprocess.run(["bash", str(SLURM_LOCAL), "env"], capture_output=True, text=True, timeout=30)
    m = re.search(r"SLURM_CONF=(\S+)", conf.stdout)
    if m:
        env["SLURM_CONF"] = m.group(1)
    for tool in ("sbatch", "scontrol", "scancel", "srun"):
        if shutil.which(tool, path=env.get("PATH")) is None:
            skip(f"SLURM started but {tool} is not on PATH")
    return env


def job_info(job: str, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, env=env,
                         timeout=30)
    if out.returncode != 0:
        return {"JobState": "UNKNOWN", "error": out.stderr.strip()}
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))


def journal_records(directory: Path) -> list[dict]:
    recs = []
    for path in sorted(directory.glob("journal-r*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
    return recs


def sbatch(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, f"sbatch {args} failed: {out.stderr}"
    return out.stdout.strip().split(";")[0]


@pytest.fixture(scope="module")
def slurm_runs(tmp_path_factory):
    """Submit a self-requeueing job and a chain of jobs (both run at once) and wait until all have ended."""
    env = start_slurm()
    base = tmp_path_factory.mktemp("slurm")
    tag = uuid.uuid4().hex[:6]
    search = [str(SLURM_DIR / "example_search.py"), "--evaluations", str(BUDGET), "--sleep", str(SLEEP),
              "--grace", str(GRACE)]
    common = {**env, "PYTHON": sys.executable, "EVOHPO_ROOT": str(ROOT)}
    for key in ("EVOHPO_FRESH", "EVOHPO_REQUEUE", "EVOHPO_LAUNCHER", "EVOHPO_SKIP_IF_FINISHED", "EVOHPO_ACCEPT",
                "EVOHPO_MAX_RESTARTS", "SBATCH_TIMELIMIT", "SBATCH_SIGNAL"):
        common.pop(key, None)
    requeue = {"dir": base / "requeue", "ckpt": base / "requeue" / "ckpt"}
    chain = {"dir": base / "chain", "ckpt": base / "chain" / "ckpt"}
    for run in (requeue, chain):
        run["dir"].mkdir()
    jobs: list[str] = []
    t0 = time.time()
    try:
        requeue["jobs"] = [sbatch([*SBATCH_LIMITS, "-J", f"evohpo-test-requeue-{tag}", f"--chdir={requeue['dir']}",
                                   f"--output={requeue['dir']}/slurm-%j.out", str(SLURM_DIR / "cpu.sbatch"),
                                   *search], {**common, "EVOHPO_CHECKPOINT": str(requeue["ckpt"])})]
        jobs += requeue["jobs"]
        out = subprocess.run(["bash", str(SLURM_DIR / "submit-chain.sh"), str(CHAIN_LENGTH), *SBATCH_LIMITS, "-J",
                              f"evohpo-test-chain-{tag}", f"--chdir={chain['dir']}",
                              f"--output={chain['dir']}/slurm-%j.out", str(SLURM_DIR / "cpu.sbatch"), *search],
                             capture_output=True, text=True, cwd=ROOT, timeout=120,
                             env={**common, "EVOHPO_CHECKPOINT": str(chain["ckpt"])})
        chain["jobs"] = out.stdout.split()
        jobs += chain["jobs"]
        assert out.returncode == 0 and len(chain["jobs"]) == CHAIN_LENGTH, out.stdout + out.stderr
        note(f"submitted requeue job {requeue['jobs']} and chain {chain['jobs']}; waiting (about 1.5-3 minutes)")
        seen: dict[str, str] = {}
        while True:
            infos = {j: job_info(j, env) for j in jobs}
            for j, info in infos.items():
                state = f"{info.get('JobState')} restarts={info.get('Restarts', '?')}"
                if seen.get(j) != state:
                    seen[j] = state
                    note(f"job {j}: {state} (t={time.time() - t0:.0f} s)")
            if all(info.get("JobState") in FINAL_STATES for info in infos.values()):
                break
            if time.time() - t0 > DEADLINE:
                raise AssertionError(f"jobs not done after {DEADLINE:.0f} s: {seen}\n"
                                     + logs_tail(requeue) + logs_tail(chain))
            time.sleep(2)
        elapsed = time.time() - t0
        note(f"all jobs ended after {elapsed:.0f} s")
        for run in (requeue, chain):
            run["info"] = [job_info(j, env) for j in run["jobs"]]
            run["logs"] = {j: read(run["dir"] / f"slurm-{j}.out") for j in run["jobs"]}
        yield {"requeue": requeue, "chain": chain, "elapsed": elapsed, "env": env}
    finally:
        left = [j for j in jobs if job_info(j, env).get("JobState") not in FINAL_STATES]
        if left:
            note(f"cancelling {left}")
            subprocess.run(["scancel", *left], env=env, timeout=30)


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def logs_tail(run: dict) -> str:
    return "".join(f"\n--- {p} ---\n{read(p)[-3000:]}" for p in sorted(run["dir"].glob("slurm-*.out")))


def results(log: str) -> list[dict]:
    return [json.loads(line.split(" ", 1)[1]) for line in log.splitlines() if line.startswith("EXAMPLE_RESULT ")]


def assert_completed_budget(ckpt: Path) -> None:
    from evohpo.journal.restore import restore

    restored = restore(ckpt)
    assert restored.n_evaluations == BUDGET
    assert not restored.unfinished
    check = subprocess.run([sys.executable, str(SLURM_DIR / "finished.py"), str(ckpt)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    recs = journal_records(ckpt)
    reasons = [r.get("reason", "") for r in recs if r.get("ev") == "done"]
    assert any("SIGUSR1" in why for why in reasons), reasons  # stopped by the time-limit signal...
    assert any(r.get("ev") == "resume" for r in recs)  # ...and resumed from the journals


@pytest.mark.slurm
@pytest.mark.timeout(480)  # SLURM start-up, submitting, waiting: 8 minutes at most
def test_job_is_signalled_requeued_resumed_and_completes(slurm_runs):
    run = slurm_runs["requeue"]
    (job,), (info,) = run["jobs"], run["info"]
    log = run["logs"][job]
    context = f"\nscontrol: {info}\n--- slurm-{job}.out (end) ---\n{log[-6000:]}"
    assert info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0", context
    restarts = int(info.get("Restarts", "0"))
    assert restarts >= 1, context  # requeued at least once: same job id, SLURM_RESTART_COUNT >= 1
    assert "SLURM_RESTART_COUNT=1 " in log and f"SLURM_RESTART_COUNT={restarts} " in log, context
    assert log.count("batch shell got SIGUSR1") >= restarts, context
    assert log.count("program exited with code 0") == restarts + 1, context  # the program exited 0 every run
    assert log.count(f"requeueing job {job}") == restarts, context
    ours = [ln for ln in log.splitlines() if ln.startswith("[evohpo-slurm ")]  # not slurmstepd's late notes
    assert ours[-1].endswith("search finished"), context
    assert re.search(r"resumed \d+ evaluations", log), context
    runs = results(log)
    assert len(runs) == restarts + 1, context
    assert all("SIGUSR1" in r["reason"] for r in runs[:-1]) and runs[-1]["reason"] == "budget reached", context
    assert [r["restart"] for r in runs] == list(range(restarts + 1)), context
    assert_completed_budget(run["ckpt"])
    note(f"requeue job {job}: {restarts + 1} allocations; all jobs took {slurm_runs['elapsed']:.0f} s")


@pytest.mark.slurm
@pytest.mark.timeout(480)  # SLURM start-up, submitting, waiting: 8 minutes at most
def test_dependency_chain_resumes_until_done_and_skips_the_rest(slurm_runs):
    run = slurm_runs["chain"]
    logs = [run["logs"][j] for j in run["jobs"]]
    context = "".join(f"\nscontrol: {i}" for i in run["info"]) + logs_tail(run)
    for info in run["info"]:
        assert info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0", context
        assert info.get("Restarts") == "0", context  # chained jobs do not requeue themselves
    ran = [results(log) for log in logs]
    assert all(len(r) <= 1 for r in ran), context
    worked = [r[0] for r in ran if r]
    assert len(worked) >= 2, context
    assert all("SIGUSR1" in r["reason"] for r in worked[:-1]), context
    assert worked[-1]["reason"] == "budget reached", context
    assert "search not finished; EVOHPO_REQUEUE=0: not requeued" in logs[0], context
    last = max(i for i, r in enumerate(ran) if r)
    for log in logs[last + 1:]:  # the jobs after the one that finished start no program
        assert "nothing to do: finished" in log and "launching" not in log, context
    assert re.search(r"resumed \d+ evaluations", logs[1]), context
    assert_completed_budget(run["ckpt"])
    note(f"chain: {len(worked)} of {len(logs)} jobs ran the search; all jobs took {slurm_runs['elapsed']:.0f} s")

