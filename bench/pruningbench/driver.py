"""The driver: jobs of (method, table, budget, seeds), at most two at once and at most one under mpiexec, each
seed's result saved to the JSON as it comes; ``--resume`` keeps the ok results of the same evohpo sources and
unchanged tables."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import BENCH, ROOT, cpu_model, git_dirty, git_head, mpi_command, run_marked, versions, worker_env

from .methods import EVOHPO, LOCAL, MARK, PEERS, load_table, run_serial
from .steps import single_run_floor

ENTRY = BENCH / "pruning.py"
RESULTS = BENCH / "results"
RANKS = 4
PEER_PACKAGES = ("dehb", "optuna", "numpy")  # installed with bench/_peers.PEERS into one venv
METHODS = (*EVOHPO, *PEERS, *LOCAL)
SNAPSHOT_ENV = "PRUNING_EVOHPO_DIR"


@dataclass
class Job:
    """Seeds of one (method, table, budget multiple), in one subprocess (random, top-k: in the driver)."""

    method: str
    table: str
    mult: int  # the budget is mult x R
    seeds: list[int]
    reason: str | None = None  # set: every seed is recorded with this reason, unrun

    @property
    def mpi(self) -> bool:
        return self.method in EVOHPO


def table_sha(name: str) -> str:
    """A content hash of a curve table's file (a rebuilt table invalidates its results)."""
    return hashlib.sha256(Path(load_table(name).path).read_bytes()).hexdigest()[:12]


class Driver:
    """Runs jobs and keeps every seed's record (``results``: (table, mult, method, seed) -> record)."""

    def __init__(self, args: argparse.Namespace, version: str, peers_python: Path | None) -> None:
        self.args, self.version, self.peers_python = args, version, peers_python
        self.results: dict[tuple[str, int, str, int], dict[str, Any]] = {}
        self.meta: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.tables = {n: load_table(n) for n in args.table_list}
        self.shas = {n: table_sha(n) for n in args.table_list}

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def save(self) -> None:
        with self.lock:
            runs = [{"table": k[0], "mult": k[1], "method": k[2], "seed": k[3], **v}
                    for k, v in sorted(self.results.items())]
            data = {"meta": self.meta, "runs": runs}
        tmp = Path(self.args.json + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
        os.replace(tmp, self.args.json)

    def record(self, job: Job, seed: int, rec: dict[str, Any]) -> None:
        table = self.tables[job.table]
        rec = {**rec, "budget": job.mult * table.max_steps, "table_sha": self.shas[job.table]}
        if job.mpi:
            rec["evohpo_version"] = self.version
        with self.lock:
            self.results[(job.table, job.mult, job.method, seed)] = rec

    def run_job(self, job: Job) -> None:
        t0 = time.perf_counter()
        if job.reason:
            for s in job.seeds:
                self.record(job, s, {"status": "n/a", "error": job.reason})
        elif job.method in LOCAL:
            table = self.tables[job.table]
            for s in job.seeds:
                rec = run_serial(job.method, table, s, job.mult * table.max_steps)
                rec.pop("seed")
                self.record(job, s, {"status": "ok", **rec})
        else:
            self._run_subprocess(job)
        self.save()
        done = [self.results.get((job.table, job.mult, job.method, s), {}) for s in job.seeds]
        ok = [r for r in done if r.get("status") == "ok"]
        self.say(f"{job.method} {job.table} @{job.mult}R: {len(ok)}/{len(job.seeds)} ok in "
                 f"{time.perf_counter() - t0:.0f} s" + ("" if ok else f" ({done[0].get('error', '?')})"))

    def _command(self, job: Job, seeds: list[int]) -> list[str]:
        budget = job.mult * self.tables[job.table].max_steps
        args = ["--worker", "--method", job.method, "--table", job.table, "--budget", str(budget),
                "--seed-list", ",".join(map(str, seeds))]
        if job.mpi:
            args += ["--step-seconds", str(self.args.step_seconds)]
            return mpi_command(Path(sys.executable), RANKS, ENTRY, *args)
        return [str(self.peers_python), str(ENTRY), *args]

    def _run_subprocess(self, job: Job) -> None:
        left = list(job.seeds)
        while left:
            snap = os.environ.get(SNAPSHOT_ENV) if job.mpi else None
            out = run_marked(self._command(job, left), MARK, timeout=self.args.timeout, cwd=snap or ROOT,
                             env=worker_env(snap))
            done = {int(r.pop("seed")): r for r in out.records}
            for s, rec in done.items():
                self.record(job, s, {"status": "ok", **rec})
            left = [s for s in left if s not in done]
            if left:  # the first seed without a result failed; the job goes on after it
                reason = out.reason or out.failure()
                self.record(job, left[0], {"status": "failed", "error": reason})
                self.say(f"{job.method} {job.table} seed {left[0]}: {reason}")
                left = left[1:]

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
                            state["mpi"] = state["mpi"] or job.mpi
                            return pending.pop(i)
                    cond.wait()

        def lane() -> None:
            while (job := take()) is not None:
                try:
                    self.run_job(job)
                except Exception as e:  # noqa: BLE001 - a driver bug must not stop the other lane
                    self.say(f"{job.method} {job.table}: driver error {type(e).__name__}: {e}")
                    for s in job.seeds:
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


def peers_python(args: argparse.Namespace, methods: list[str], say: Any) -> tuple[Path | None, str | None]:
    """The peers' venv (``bench/_peers.PEERS``, shared with bench/quality.py), built on first use; or why it is
    unavailable."""
    if not any(m in PEERS for m in methods):
        return None, None
    try:
        from _peers import PEERS as QUALITY_PEERS
        from _peers import ensure_venv

        packages = QUALITY_PEERS  # the list bench/quality.py asks for too: one venv, never reinstalled in turns
        say(f"peers venv {args.peers_venv} ({', '.join(packages)}) ...")
        return ensure_venv(args.peers_venv, packages), None
    except Exception as e:  # noqa: BLE001 - peers become n/a cells
        return None, f"peers venv unavailable: {type(e).__name__}: {e}"[:200]


def run(args: argparse.Namespace, version: str) -> tuple[Driver, float]:
    """Run (or complete, with ``--resume``) the cells of the command line; save the JSON."""
    t_start = time.perf_counter()
    methods = [m for m in METHODS if m in args.method_list]
    pp, why = peers_python(args, methods, lambda s: print(s, file=sys.stderr, flush=True))
    drv = Driver(args, version, pp)
    if why:
        drv.say(why)
    drv.meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "host": platform.node(), "cpu": cpu_model(), "cpus": os.cpu_count(),
        "load_before": round(os.getloadavg()[0], 2), "seeds": args.seeds, "ranks": RANKS, "methods": methods,
        "tables": {n: {"max_steps": t.max_steps, "size": t.size, "best": t.best, "worst": t.worst, "seeds": t.seeds,
                       "floor": statistics.median(single_run_floor(t, range(args.seeds))),
                       "sha": drv.shas[n]} for n, t in drv.tables.items()},
        "mults": args.mult_list, "argv": sys.argv[1:], "step_seconds": args.step_seconds,
        "evohpo": ((args.evohpo_ref or (f"copy {args.evohpo_tree} of the working tree" if args.evohpo_tree
                                        else "working tree")) + f" at HEAD {git_head()}"
                   + (" with uncommitted changes" if not args.evohpo_ref and git_dirty() else "")
                   + f", sources sha256 {version} ({versions(Path(sys.executable), ['mpi4py', 'numpy'])})"),
        "evohpo_version": version,
        "peers": versions(pp, ["dehb", "optuna", "ConfigSpace", "numpy"]) if pp else (why or "not used"),
    }
    seeds = list(range(args.seeds))
    if args.resume and Path(args.json).exists():
        old = json.loads(Path(args.json).read_text())
        kept = 0
        other = {n: t for n, t in old.get("meta", {}).get("tables", {}).items() if n not in drv.shas}
        for r in old.get("runs", []):
            if r.get("status") != "ok":
                continue
            if r["table"] not in other and r.get("table_sha") != drv.shas.get(r["table"]):
                continue  # a table of this run, rebuilt since (tables not in this run are kept as they were)
            if r["method"] in EVOHPO and r.get("evohpo_version") != version:
                continue
            key = (r["table"], r["mult"], r["method"], r["seed"])
            drv.results[key] = {k: v for k, v in r.items() if k not in ("table", "mult", "method", "seed")}
            kept += 1
        drv.meta["tables"] = {**other, **drv.meta["tables"]}
        drv.meta["mults"] = sorted({*old.get("meta", {}).get("mults", []), *args.mult_list})
        if pp is None and old.get("meta", {}).get("peers"):  # this run ran no peer: their results are the old ones
            drv.meta["peers"] = old["meta"]["peers"]
        had = set(old.get("meta", {}).get("methods", []))
        drv.meta["methods"] = [m for m in METHODS if m in had or m in methods]
        drv.meta["invocations"] = [*old.get("meta", {}).get("invocations", []),
                                   {k: old["meta"].get(k) for k in ("date", "minutes", "argv")}]
        drv.say(f"resuming: {kept} ok seed results kept from {args.json}")
    jobs: list[Job] = []
    for name in args.table_list:
        for mult in args.mult_list:
            for m in methods:
                todo = [s for s in seeds if (name, mult, m, s) not in drv.results]
                if todo:
                    jobs.append(Job(m, name, mult, todo, why if m in PEERS and pp is None else None))
    jobs.sort(key=lambda j: (not j.mpi, j.mult))  # MPI jobs first: the serial ones fill the other lane
    drv.say(f"{len(args.table_list)} tables x {len(args.mult_list)} budgets x {len(methods)} methods x {args.seeds} "
            f"seeds: {len(jobs)} jobs, at most {args.jobs} at once (one under mpiexec)")
    drv.run_all(jobs)
    elapsed = time.perf_counter() - t_start
    drv.meta["minutes"] = round(elapsed / 60, 2)
    drv.save()
    return drv, elapsed
