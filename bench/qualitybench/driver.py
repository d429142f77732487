"""The driver: jobs of (method, task, seeds), run at most two at once (at most one under mpiexec), each seed's
result recorded and saved to the JSON as it comes; the lock that keeps a second driver off the same file; the
resumption of an earlier run.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import BENCH, ROOT, git_dirty, git_head, mpi_command, run_marked, versions, worker_env

from .methods import MARK, optuna_cmaes_kwargs, random_search
from .problems import SNAPSHOT_ENV, Problem, current_table_sha, make_problem, table_sha
from .report import fmt
from .tasks import RANKS, Task, select_tasks

ENTRY = BENCH / "quality.py"  # the command line, also the workers' script
RESULTS = BENCH / "results"


@dataclass
class Job:
    """Seeds of one (method, task), run in one subprocess (random search: in the driver)."""

    method: str  # "evohpo:ga", "propulate", "optuna", "optuna-cmaes", "cmaes-ipop", "random"
    task: Task
    seeds: list[int]
    mpi: bool
    python: Path | None = None
    reason: str | None = None  # set: every seed gets this reason without running


@dataclass
class Driver:
    """Runs jobs in lanes, records every seed's result (with its score and hashes) and saves them."""

    args: argparse.Namespace
    results: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    job_times: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: Any = sys.stderr
    problems: dict[str, Problem] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def record(self, job: Job, seed: int, rec: dict[str, Any]) -> None:
        rec = {"problem": job.task.key, "budget": job.task.budget, "method": job.method, **rec, "seed": seed}
        if job.method.startswith("evohpo:"):
            rec["evohpo_version"] = self.meta.get("evohpo_version")
        if parallel(job.method):
            rec["eval_seconds"] = self.meta["eval_seconds"]
        if (sha := table_sha(job.task.key)) is not None:
            rec["table_sha"] = sha
        if rec.get("status") == "ok":
            rec.update(self.problems[job.task.key].score(rec))
        with self.lock:
            self.results[(job.task.id, job.method, seed)] = rec

    def save(self) -> None:
        """Write every result so far to --json, whole and atomically. The lock spans the write, so that two jobs
        ending at once cannot put an older snapshot over a newer one; the temporary file is this process's own, so
        that another driver saving to the same file cannot take it away."""
        with self.lock:
            rows = sorted(self.results.values(), key=lambda r: (r["problem"], r["budget"], r["method"], r["seed"]))
            data = {"meta": self.meta, "job_seconds": dict(self.job_times), "runs": rows}
            out = Path(self.args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, out)

    def say(self, text: str) -> None:
        with self.lock:
            print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.log, flush=True)

    # -- running -------------------------------------------------------------------------------------------

    def run_job(self, job: Job) -> None:
        t0 = time.perf_counter()
        if job.reason is not None:
            for s in job.seeds:
                self.record(job, s, {"status": "skipped", "error": job.reason})
        elif job.method == "random":
            for s in job.seeds:
                try:
                    self.record(job, s, {"status": "ok", **random_search(self.problems[job.task.key],
                                                                        job.task.budget, s)})
                except Exception as e:  # noqa: BLE001 - reported in the cell
                    self.record(job, s, {"status": "failed", "error": f"{type(e).__name__}: {e}"[:200]})
        else:
            self._run_subprocess(job)
        dt = time.perf_counter() - t0
        with self.lock:
            self.job_times[job.method] = self.job_times.get(job.method, 0.0) + dt
        ok = [self.results.get((job.task.id, job.method, s), {}) for s in job.seeds]
        good = [r for r in ok if r.get("status") == "ok"]
        med = statistics.median(r["regret"] for r in good) if good else None
        self.say(f"{job.method:14s} {job.task.id:28s} seeds {seed_text(job.seeds):8s} {dt:7.1f} s  "
                 + (f"median regret {fmt(med)}" if med is not None else "no result")
                 + ("" if len(good) == len(job.seeds) else f"  ({len(job.seeds) - len(good)} not ok: "
                    f"{next((r.get('error') for r in ok if r.get('status') != 'ok'), '?')})"))
        self.save()

    def _command(self, job: Job, seeds: list[int]) -> list[str]:
        side = job.method.split(":")[0]  # evohpo, propulate, optuna, optuna-cmaes, cmaes-ipop
        args = ["--worker", side, "--problem", job.task.key, "--budget", str(job.task.budget),
                "--seed-list", ",".join(map(str, seeds))]
        if job.method.startswith("evohpo:"):
            args += ["--strategy", job.method.split(":", 1)[1]]
        if job.mpi:
            return mpi_command(job.python, RANKS, ENTRY, *args, "--eval-seconds", str(self.meta["eval_seconds"]))
        return [str(job.python), str(ENTRY), *args]

    def _run_subprocess(self, job: Job) -> None:
        left = list(job.seeds)
        failures = 0
        while left:
            if failures >= 2:
                for s in left:
                    self.record(job, s, {"status": "skipped", "error": "skipped after 2 failed seeds in a row"})
                return
            done, reason = self._launch(job, left)
            for s, rec in done.items():
                self.record(job, s, {"status": "ok", **rec})
            left = [s for s in left if s not in done]
            if reason is None and left:
                reason = "failed: no result line (exit 0)"
            if left:
                self.record(job, left[0], {"status": "timeout" if reason.startswith("timeout") else "failed",
                                           "error": reason})
                left = left[1:]
                failures = failures + 1 if not done else 1
            else:
                failures = 0

    def _launch(self, job: Job, seeds: list[int]) -> tuple[dict[int, dict[str, Any]], str | None]:
        """Run the seeds in one subprocess; a per-seed deadline. Returns the results and why it stopped early."""
        snap = os.environ.get(SNAPSHOT_ENV) if job.method.startswith("evohpo:") else None
        # the snapshot first on sys.path (and the cwd, as 'python -m' would put the cwd first)
        out = run_marked(self._command(job, seeds), MARK, timeout=self.args.timeout, cwd=snap or ROOT,
                         env=worker_env(snap))
        done = {int(rec.pop("seed")): rec for rec in out.records}
        reason = out.reason
        if reason is None and len(done) < len(seeds):
            reason = out.failure()
        return done, reason

    def run_all(self, jobs: list[Job]) -> None:
        """At most ``--jobs`` jobs at once, at most one of them under mpiexec."""
        pending = list(jobs)
        cond = threading.Condition()
        state = {"mpi": False}

        def take() -> Job | None:
            with cond:
                while True:
                    if not pending:
                        return None
                    for i, job in enumerate(pending):
                        if not job.mpi or not state["mpi"]:
                            if job.mpi:
                                state["mpi"] = True
                            return pending.pop(i)
                    cond.wait()

        def lane() -> None:
            while (job := take()) is not None:
                try:
                    self.run_job(job)
                except Exception as e:  # noqa: BLE001 - a driver bug must not stop the other lane
                    self.say(f"{job.method} {job.task.id}: driver error {type(e).__name__}: {e}")
                    for s in job.seeds:
                        if (job.task.id, job.method, s) not in self.results:
                            self.record(job, s, {"status": "failed", "error": f"driver: {e}"[:200]})
                finally:
                    with cond:
                        if job.mpi:
                            state["mpi"] = False
                        cond.notify_all()

        threads = [threading.Thread(target=lane) for _ in range(max(1, self.args.jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def seed_text(seeds: list[int]) -> str:
    """``0-4`` for a run of seeds, else ``0,3``."""
    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def parallel(method: str) -> bool:
    """Whether ``method`` runs on several MPI ranks (its evaluations sleep ``--eval-seconds``)."""
    return method.startswith("evohpo:") or method == "propulate"


SERIAL_PEERS = ("optuna", "optuna-cmaes", "cmaes-ipop")  # run in the peers' venv, no MPI
PEER_METHODS = ("propulate", *SERIAL_PEERS)


def parse_caps(items: list[str] | None, methods: list[str]) -> dict[str, tuple[int | None, list[str]]]:
    """``--cap METHOD=SEEDS[@GLOB|GLOB...]`` (repeatable): run METHOD on at most SEEDS seeds (empty: all) and, with
    globs, only on the problems whose key or label matches one. Returns ``{method: (seeds, globs)}``."""
    caps: dict[str, tuple[int | None, list[str]]] = {}
    for item in items or []:
        name, _, rest = item.partition("=")
        n, _, globs = rest.partition("@")
        hits = [m for m in methods if m == name.strip() or m.split(":")[0] == name.strip()]
        if not hits or (n.strip() and not n.strip().isdigit()):
            raise SystemExit(f"--cap {item!r}: expected METHOD=SEEDS[@GLOB|GLOB...] with METHOD one of {methods}")
        for m in hits:
            caps[m] = (int(n) if n.strip() else None, [g.strip() for g in globs.split("|") if g.strip()])
    return caps


def capped(caps: dict[str, tuple[int | None, list[str]]], method: str, task: Task, seed: int) -> bool:
    """Whether ``--cap`` leaves (method, task, seed) out."""
    if method not in caps:
        return False
    n, globs = caps[method]
    if n is not None and seed >= n:
        return True
    return bool(globs) and not any(fnmatch.fnmatch(task.key, g) or fnmatch.fnmatch(task.label, g) for g in globs)


def cap_text(caps: dict[str, tuple[int | None, list[str]]]) -> dict[str, str]:
    """``--cap`` as the report words it, per method."""
    return {m: ", ".join(x for x in ((f"seeds 0..{n - 1}" if n is not None else ""),
                                      ("only " + " / ".join(g) if g else "")) if x) for m, (n, g) in caps.items()}


def reuse(drv: Driver, paths: list[str], tasks: list[Task], methods: list[str], seeds: list[int],
          caps: dict[str, tuple[int | None, list[str]]]) -> None:
    """``--reuse FILE``: take the ok peers' results (Propulate, Optuna, cmaes, random; never evohpo's, which belong
    to their sources) of this run's cells from another results file, unless the cell already has one; a table's
    results only while the table is unchanged, Propulate's only at the same ``--eval-seconds``. Each keeps
    ``reused_from``; the report says what was reused."""
    by_id = {t.id: t for t in tasks}
    sources = dict(drv.meta.get("reused_sources", {}))
    for path in paths:
        old = json.loads(Path(path).read_text())
        src = f"{Path(path).name} ({old.get('meta', {}).get('date', '?')})"
        taken = 0
        for r in old.get("runs", []):
            m, tid, seed = r.get("method", ""), f"{r.get('problem')}@{r.get('budget')}", r.get("seed")
            if (m.startswith("evohpo:") or m not in methods or tid not in by_id or seed not in seeds
                    or r.get("status") != "ok" or (tid, m, seed) in drv.results or capped(caps, m, by_id[tid], seed)):
                continue
            if "table_sha" in r and r["table_sha"] != current_table_sha(r["problem"]):
                continue
            if parallel(m) and r.get("eval_seconds", 0.0) != drv.meta["eval_seconds"]:
                continue  # Propulate measured with evaluations of another cost
            drv.results[(tid, m, seed)] = {**r, "reused_from": r.get("reused_from", src)}
            taken += 1
        sources[src] = old.get("meta", {}).get("peers", "?")
        drv.say(f"reusing {taken} peers' seed results from {path}")
    drv.meta["reused_sources"] = sources


def take_lock(path: Path) -> Path:
    """One driver per results file: two drivers saving the same JSON would overwrite each other's results."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # left by a driver that is gone
                continue
            except PermissionError:
                pass
            raise SystemExit(f"another bench/quality.py (pid {pid}) is writing {path}; wait for it, or give "
                             f"--json and --out elsewhere") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return lock
    raise SystemExit(f"cannot take the lock {lock}")


def run(args: argparse.Namespace, version: str) -> tuple[Driver, list[Task], list[str], float]:
    """Run (or, with ``--resume``, complete) the cells of the command line with the evohpo snapshot of content
    hash ``version``; save the JSON. Returns the driver, the tasks, the methods and the seconds it took."""
    t_start = time.perf_counter()
    strategies = [s.strip() for s in args.evohpo_strategies.split(",") if s.strip()]
    methods = [f"evohpo:{s}" for s in strategies] + [*PEER_METHODS, "random"]
    if args.methods:
        keep = {m.strip() for m in args.methods.split(",")}
        methods = [m for m in methods if m in keep or m.split(":")[0] in keep]
    tasks = select_tasks(args.problems, args.quick)
    drv = Driver(args)
    for t in tasks:
        try:
            drv.problems[t.key] = make_problem(t.key)
        except Exception as e:  # noqa: BLE001
            raise SystemExit(f"problem {t.key!r}: {type(e).__name__}: {e}") from None

    evo_py = Path(sys.executable)
    peers_py, peers_reason = None, None
    if any(m in PEER_METHODS for m in methods):
        try:
            from _peers import PEERS, ensure_venv

            drv.say(f"peers venv {args.peers_venv} ({', '.join(PEERS)}) ...")
            peers_py = ensure_venv(args.peers_venv, PEERS)
        except Exception as e:  # noqa: BLE001 - peers become n/a cells
            peers_reason = f"peers venv unavailable: {type(e).__name__}: {e}"[:200]
            drv.say(peers_reason)
    drv.meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "host": platform.node(), "cpus": os.cpu_count(),
                "load_before": os.getloadavg()[0], "seeds": args.seeds, "ranks": RANKS,
                "eval_seconds": args.eval_seconds,
                "evohpo": ((args.evohpo_ref or (f"copy {args.evohpo_tree} of the working tree"
                                                if getattr(args, "evohpo_tree", None) else "working tree"))
                           + f" at HEAD {git_head()}"
                           + (" with uncommitted changes" if not args.evohpo_ref and git_dirty() else "")
                           + f", sources sha256 {version} ({versions(evo_py, ['mpi4py', 'numpy'])})"),
                "evohpo_version": version,
                "peers": versions(peers_py, ["propulate", "optuna", "cmaes", "mpi4py", "numpy"]) if peers_py else
                "peers n/a", "methods": methods, "tasks": [t.id for t in tasks], "argv": sys.argv[1:]}
    drv.meta["evohpo_sources"] = {version: drv.meta["evohpo"]}
    optuna_version = next((w.split()[1] for w in drv.meta["peers"].split(", ") if w.startswith("optuna ")), "?")
    kwargs = optuna_cmaes_kwargs(optuna_version)
    drv.meta["optuna_cmaes"] = (f"CmaEsSampler(seed=s, restart_strategy={kwargs['restart_strategy']!r})" if kwargs
                                else f"CmaEsSampler(seed=s), defaults without restarts (optuna {optuna_version} "
                                "ignores restart_strategy since 4.4)")
    caps = parse_caps(getattr(args, "cap", None), methods)
    drv.meta["caps"] = cap_text(caps)

    seeds = list(range(args.seeds))
    if args.resume and Path(args.json).exists():
        old = json.loads(Path(args.json).read_text())
        stale = rebuilt = 0
        keep_other = getattr(args, "keep_other_evohpo", False)
        for r in old.get("runs", []):
            if r.get("method", "").startswith("evohpo:") and r.get("evohpo_version") != version and not keep_other:
                stale += 1
            elif parallel(r.get("method", "")) and r.get("eval_seconds", 0.0) != args.eval_seconds:
                stale += 1  # measured with evaluations of another cost
            elif "table_sha" in r and r["table_sha"] != current_table_sha(r["problem"]):
                rebuilt += 1
            elif r.get("status") == "ok":
                drv.results[(f"{r['problem']}@{r['budget']}", r["method"], r["seed"])] = r
        drv.job_times.update({m: t for m, t in old.get("job_seconds", {}).items()
                              if not (stale and m.startswith("evohpo:"))})
        drv.meta["invocations"] = [*old.get("meta", {}).get("invocations", []),
                                   *([{k: old["meta"][k] for k in ("date", "minutes", "jobs")}]
                                     if "minutes" in old.get("meta", {}) else [])]
        drv.meta["reused_sources"] = old.get("meta", {}).get("reused_sources", {})
        om = old.get("meta", {})
        drv.meta["evohpo_sources"] = {**({om["evohpo_version"]: om["evohpo"]} if "evohpo_version" in om else {}),
                                      **om.get("evohpo_sources", {}), **drv.meta["evohpo_sources"]}
        drv.say(f"resuming: {len(drv.results)} ok seed results from {args.json}; {stale} results of other evohpo "
                f"sources or another --eval-seconds and {rebuilt} results of since rebuilt (or removed) tables "
                f"dropped (they run again)")
    if getattr(args, "reuse", None):
        reuse(drv, args.reuse, tasks, methods, seeds, caps)

    jobs: list[Job] = []
    for t in tasks:
        for m in methods:
            todo = [s for s in seeds if (t.id, m, s) not in drv.results and not capped(caps, m, t, s)]
            if not todo:
                continue
            reason = None if peers_py else peers_reason
            if m == "optuna-cmaes" and any(spec[0] == "choice" for spec in drv.problems[t.key].space.values()):
                reason = "CmaEsSampler samples categorical parameters at random"
            if m.startswith("evohpo:"):
                jobs.append(Job(m, t, todo, True, evo_py))
            elif m == "propulate":
                jobs.append(Job(m, t, todo, True, peers_py, reason))
            elif m in ("optuna", "optuna-cmaes"):  # one process per seed: both lanes can share the slowest method
                jobs += [Job(m, t, [s], False, peers_py, reason) for s in todo]
            elif m == "cmaes-ipop":
                jobs.append(Job(m, t, todo, False, peers_py, reason))
            else:
                jobs.append(Job(m, t, todo, False))
    drv.say(f"{len(tasks)} problems x {len(methods)} methods x {args.seeds} seeds: {len(jobs)} jobs, "
            f"at most {args.jobs} at once (one under mpiexec)")
    drv.meta["jobs"] = len(jobs)
    drv.run_all(jobs)
    elapsed = time.perf_counter() - t_start
    drv.meta["minutes"] = round(elapsed / 60, 2)
    drv.save()
    return drv, tasks, methods, elapsed

