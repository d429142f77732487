"""Measure what a message of evohpo's MPI transport costs on this machine; fit ``evohpo.sim.costs.CostModel``.

    .venv/bin/python bench/mpi_costs.py [--quick] [--out-json PATH] [--out-md PATH]

does everything: an ``mpiexec -n 2 python -m mpi4py bench/mpi_costs.py --worker`` job for the point-to-point rows
and the collective at 2 ranks (three times, each row the median of the runs: on a VM shared with other work one run
can be several times slower), one ``--worker --collective-only`` job at each of 4, 8 and 16 ranks, then the fit,
a table of measured against predicted values, ``evohpo/sim/costs.json`` and ``bench/results/mpi_costs.md``.
Run by hand under ``mpiexec -n 2`` (or more, ``--collective-only`` implied) it prints the rows and writes nothing.

What is timed (``time.perf_counter_ns``; medians over many repeats, after a warm-up), as ``MPITransport`` does it:

* pingpong: a ``bytes``-long buffer ``Send``/``Recv`` from rank 0 to 1 and back; half the round trip;
* serialize: ``MPI.pickle.dumps`` of evohpo payloads: a RESULT ``(Individual, params, unstarted, None)`` of a
  5-parameter space, and MIGRANT ``(mode, [(Individual, hop), ...])`` batches of 1 to 256 individuals;
* post: one ``Isend([data, MPI.BYTE])`` and ``Test()`` until it completed (rank 1 receives meanwhile);
* receive: once an untimed ``iprobe`` saw the message, the ``iprobe`` that finds it and ``recv`` (unpickling);
* empty_poll: ``EMPTY_PROBES`` iprobes of ANY_SOURCE/ANY_TAG with nothing there;
* collective: ``Ialltoall`` of int64 counts, every rank posting right after a barrier and calling ``Test()``
  until done (back to back, and for comparison with ``os.sched_yield()`` in between); per repeat, the time from
  the last rank's post to the last rank's completion (``perf_counter`` is one clock for all ranks of one node).

The model is fitted to every row but three kinds, which the report lists apart with the model's prediction: post
rows of messages over ``SMALL`` bytes (the model's post is one constant), collectives with more ranks than cores
(ranks that wait for a CPU, not for the network) and the ``sched_yield`` collectives.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, cpu_model, kill, mpi_command, worker_env

HERE = Path(__file__).resolve()
PINGPONG_SIZES = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
MIGRANT_SIZES = [1, 4, 16, 64, 256]  # individuals per MIGRANT batch
POST_MIGRANTS = (1, 4, 16, 64)  # post rows: x16 and x64 are measured but not fitted (see SMALL)
SMALL = 1024  # post rows of messages up to this size are fitted (a RESULT, a few migrants): post is one constant
COLLECTIVE_RANKS = [2, 4, 8, 16]
PER_TURN = 4  # timed ping-pongs of one size in a row
P2P_RUNS = 3  # runs of the 2-rank job (1 with --quick); a row is the median of the runs' medians
TAG = 71  # Tag.RESULT
ns = time.perf_counter_ns


# -- payloads: what evohpo sends ---------------------------------------------------------------------------------

def payloads() -> list[tuple[str, Any]]:
    """(name, payload): a RESULT of a 5-parameter space and MIGRANT batches of ``MIGRANT_SIZES`` individuals."""
    import numpy as np

    from evohpo.core.individual import Individual
    from evohpo.core.space import Choice, Float, Int, Space

    space = Space({"lr": Float(1e-5, 1e-1, log=True), "dropout": Float(0.0, 0.5), "layers": Int(1, 8),
                   "width": Int(16, 1024, log=True), "activation": Choice(["relu", "gelu", "tanh"])})
    rng = np.random.default_rng(0)
    t0 = 1.76e9

    def ind(i: int) -> Individual:
        return Individual(id=f"island0-{i}", params=space.sample(rng), loss=float(rng.random()), island=0,
                          rank=1, generation=i, start=t0 + i, end=t0 + i + 37.5)

    out: list[tuple[str, Any]] = [("RESULT", (ind(137), space.sample(rng), 463, None))]
    for k in MIGRANT_SIZES:
        out.append((f"MIGRANT x{k}", ("migrate", [(ind(i), 1) for i in range(k)])))
    return out


# -- worker side (inside mpiexec) --------------------------------------------------------------------------------

def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def median(samples: list[float]) -> float:
    return float(statistics.median(samples))


def row(what: str, nbytes: int, ranks: int, samples: list[float], payload: str) -> dict[str, Any]:
    return {"what": what, "bytes": int(nbytes), "ranks": int(ranks), "seconds": median(samples),
            "payload": payload, "repeats": len(samples)}


def batch_for(fn: Any, target: float = 2e-5) -> int:
    """How many calls of ``fn`` take about ``target`` seconds (so that the timer's cost is small)."""
    t0 = ns()
    for _ in range(20):
        fn()
    per = max((ns() - t0) * 1e-9 / 20, 1e-9)
    return max(1, int(target / per))


def settle(comm: Any, MPI: Any, seconds: float) -> None:
    """Ping-pong for ``seconds`` before measuring: right after the start, the first sizes took 2-3x longer than the
    same sizes later in the job (the kernel had not yet spread the ranks over the cores)."""
    flag = bytearray(1)
    msg = [flag, MPI.BYTE]
    end = time.monotonic() + seconds
    while True:
        if comm.rank == 0:
            flag[0] = time.monotonic() < end
            comm.Send(msg, 1, TAG)
            comm.Recv(msg, 1, TAG)
        else:
            comm.Recv(msg, 0, TAG)
            comm.Send(msg, 0, TAG)
        if not flag[0]:
            return


def pingpong(comm: Any, MPI: Any, sizes: list[tuple[int, str]], reps: int) -> list[dict[str, Any]]:
    """One row per (bytes, payload) in ``sizes``, measured in turns (each round: ``1 + PER_TURN`` round trips of
    each size, the first untimed, as the previous size left the caches cold), so that a change of speed during
    the job (the VM's vCPUs moved, a neighbour busy) reaches all sizes alike."""
    msgs = [[bytearray(n), MPI.BYTE] for n, _ in sizes]
    samples: list[list[float]] = [[] for _ in sizes]
    rounds = max(10, reps // PER_TURN)
    warm = rounds // 10
    comm.Barrier()
    for i in range(warm + rounds):
        for msg, got in zip(msgs, samples):
            for k in range(1 + PER_TURN):
                if comm.rank == 0:
                    t0 = ns()
                    comm.Send(msg, 1, TAG)
                    comm.Recv(msg, 1, TAG)
                    if i >= warm and k:
                        got.append((ns() - t0) * 0.5e-9)
                else:
                    comm.Recv(msg, 0, TAG)
                    comm.Send(msg, 0, TAG)
    samples = comm.bcast(samples, root=0)
    return [row("pingpong", n, 2, got, payload) for (n, payload), got in zip(sizes, samples)]


def serialize(MPI: Any, name: str, obj: Any, reps: int) -> dict[str, Any]:
    dumps = MPI.pickle.dumps
    k = batch_for(lambda: dumps(obj))
    samples = []
    for i in range(reps + reps // 10):
        t0 = ns()
        for _ in range(k):
            dumps(obj)
        if i >= reps // 10:
            samples.append((ns() - t0) * 1e-9 / k)
    return row("serialize", len(dumps(obj)), 2, samples, name)


def post(comm: Any, MPI: Any, name: str, data: bytes, reps: int, batch: int = 50) -> dict[str, Any]:
    samples: list[float] = []
    buf = bytearray(len(data))
    rounds = (reps + reps // 10) // batch + 1
    for r in range(rounds):
        comm.Barrier()
        if comm.rank == 0:
            for _ in range(batch):
                t0 = ns()
                req = comm.Isend([data, MPI.BYTE], dest=1, tag=TAG)
                while not req.Test():
                    pass
                del req
                if r > 0:
                    samples.append((ns() - t0) * 1e-9)
        else:
            for _ in range(batch):
                comm.Recv([buf, MPI.BYTE], source=0, tag=TAG)
    return row("post", len(data), 2, comm.bcast(samples, root=0), name)


def receive(comm: Any, MPI: Any, name: str, data: bytes, reps: int, batch: int = 50) -> dict[str, Any]:
    samples: list[float] = []
    st = MPI.Status()
    rounds = (reps + reps // 10) // batch + 1
    for r in range(rounds):
        if comm.rank == 0:
            reqs = [comm.Isend([data, MPI.BYTE], dest=1, tag=TAG) for _ in range(batch)]
            comm.Barrier()
            MPI.Request.Waitall(reqs)
        else:
            comm.Barrier()
            for _ in range(batch):
                while not comm.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG):  # until it is there (untimed)
                    pass
                t0 = ns()
                comm.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=st)
                src, tag = st.Get_source(), st.Get_tag()
                comm.recv(source=src, tag=tag)
                if r > 0:
                    samples.append((ns() - t0) * 1e-9)
        comm.Barrier()
    return row("receive", len(data), 2, comm.bcast(samples, root=1), name)


def empty_poll(comm: Any, MPI: Any, reps: int) -> dict[str, Any]:
    from evohpo.parallel.transport import EMPTY_PROBES

    st, anys, anyt = MPI.Status(), MPI.ANY_SOURCE, MPI.ANY_TAG

    def poll() -> None:
        for _ in range(EMPTY_PROBES):
            comm.iprobe(source=anys, tag=anyt, status=st)

    samples = []
    comm.Barrier()
    if comm.rank == 0:
        k = batch_for(poll)
        for i in range(reps + reps // 10):
            t0 = ns()
            for _ in range(k):
                poll()
            if i >= reps // 10:
                samples.append((ns() - t0) * 1e-9 / k)
    comm.Barrier()
    return row("empty_poll", 0, comm.size, comm.bcast(samples, root=0), f"{EMPTY_PROBES} iprobes")


def collective(comm: Any, MPI: Any, reps: int, wait: str) -> dict[str, Any]:
    """``wait``: "spin" calls ``Test()`` back to back, "yield" calls ``os.sched_yield()`` between two ``Test()``s."""
    import numpy as np

    size, pause = comm.size, os.sched_yield if wait == "yield" else None
    out, into = np.arange(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
    warm = max(5, reps // 10)
    posted, done = np.zeros(warm + reps, dtype=np.int64), np.zeros(warm + reps, dtype=np.int64)
    for i in range(warm + reps):
        comm.Barrier()
        posted[i] = ns()
        req = comm.Ialltoall(out, into)
        if pause is None:
            while not req.Test():
                pass
        else:
            while not req.Test():
                pause()
        done[i] = ns()
    last_post, last_done = np.zeros_like(posted), np.zeros_like(done)
    comm.Reduce(posted, last_post, op=MPI.MAX, root=0)
    comm.Reduce(done, last_done, op=MPI.MAX, root=0)
    samples = [float(x) * 1e-9 for x in (last_done - last_post)[warm:]] if comm.rank == 0 else []
    label = "int64 counts, Test spin" if pause is None else "int64 counts, Test + sched_yield"
    return row("collective", 0, size, comm.bcast(samples, root=0), label)


WAKE_SLEEP = 0.05  # seconds of sleep in each evaluation (the middle of the validation's 10-100 ms)


def wake(evaluations: int) -> dict[str, Any]:
    """The extra CPU per evaluation of the whole worker loop when each evaluation sleeps, against evaluations that
    return at once: ``optimize`` on one worker (no peers; ``propagator="ga"``, 5-D sphere), the thread's CPU time
    per evaluation, the loss's own CPU left out."""
    from evohpo import optimize
    from evohpo.parallel.transport import local_transport
    from evohpo.testing import functions

    problem = functions.get("sphere", 5)

    def per_evaluation(pause: float) -> float:
        inside = [0.0]

        def loss(params: dict[str, Any]) -> float:
            t = time.thread_time()
            time.sleep(pause)
            value = problem.loss(params)
            inside[0] += time.thread_time() - t
            return value

        t = time.thread_time()
        optimize(loss, problem.space, comm=local_transport(), generations=evaluations, propagator="ga",
                 progress_interval=1e9, max_failures=None)
        return (time.thread_time() - t - inside[0]) / evaluations

    warm = median([per_evaluation(0.0) for _ in range(3)])
    cold = per_evaluation(WAKE_SLEEP)
    return {"what": "wake", "bytes": 0, "ranks": 1, "seconds": max(cold - warm, 1e-9),
            "payload": f"loop per evaluation after a {WAKE_SLEEP * 1e3:g} ms sleep ({cold * 1e6:.0f} us) less back "
                       f"to back ({warm * 1e6:.0f} us)", "repeats": evaluations}


def worker(args: argparse.Namespace) -> None:
    """Measure the rows at this job's size (point-to-point ones at 2 ranks); rank 0 writes or prints them."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD.Dup()
    reps = 200 if args.quick else 2000
    rows: list[dict[str, Any]] = []

    def log(msg: str) -> None:
        if comm.rank == 0:
            print(f"  [{comm.size} ranks] {msg}", file=sys.stderr, flush=True)

    if comm.size == 2 and not args.collective_only:
        pls = payloads()
        data = {name: MPI.pickle.dumps(obj) for name, obj in pls}
        log("pingpong")
        settle(comm, MPI, 0.2 if args.quick else 1.0)
        rows += pingpong(comm, MPI, [(n, "bytes") for n in PINGPONG_SIZES] + [(len(data["RESULT"]), "RESULT")], reps)
        log("serialize")
        for name, obj in pls:
            r = serialize(MPI, name, obj, reps) if comm.rank == 0 else None
            comm.Barrier()
            rows.append(comm.bcast(r, root=0))
        log("post")
        for name in ["RESULT", *(f"MIGRANT x{k}" for k in POST_MIGRANTS)]:
            rows.append(post(comm, MPI, name, data[name], reps))
        log("receive")
        for name, _ in pls:
            rows.append(receive(comm, MPI, name, data[name], reps))
        log("empty_poll")
        rows.append(empty_poll(comm, MPI, reps))
    log("collective")
    coll_reps = reps if comm.size <= cores() else max(20, reps // 20)  # oversubscribed: ms per repeat
    for wait in ("spin", "yield"):
        rows.append(collective(comm, MPI, coll_reps, wait))
    comm.Barrier()
    if comm.rank == 0:
        lines = [" ".join(line.split()) for line in MPI.Get_library_version().strip().splitlines()]
        device = [line.split(":", 1)[1].strip() for line in lines if line.startswith("MPICH Device:")]
        info = {"rows": rows, "library": lines[0] + (f" ({device[0]})" if device else ""),
                "mpi4py": __import__("mpi4py").__version__}
        if args.rows:
            Path(args.rows).write_text(json.dumps(info), encoding="utf-8")
        else:
            for r in rows:
                print(json.dumps(r))
    comm.Free()


# -- driver side --------------------------------------------------------------------------------------------------

def run_job(ranks: int, args: argparse.Namespace, collective_only: bool) -> dict[str, Any]:
    """One ``mpiexec -n ranks`` worker job; its rows and MPI library line."""
    with tempfile.TemporaryDirectory(prefix="mpi-costs-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = mpi_command(Path(sys.executable), ranks, HERE, "--worker", "--rows", str(out),
                          *(["--collective-only"] if collective_only else []), *(["--quick"] if args.quick else []))
        print(f"{' '.join(cmd[:3])} ... {' '.join(cmd[6:8])}", file=sys.stderr, flush=True)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(), start_new_session=True)
        try:
            rc = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
            raise SystemExit(f"mpiexec -n {ranks} ran past {args.timeout:g} s") from None
        if rc != 0 or not out.is_file():
            raise SystemExit(f"mpiexec -n {ranks} failed with exit status {rc}")
        return json.loads(out.read_text(encoding="utf-8"))


def machine(library: str, mpi4py_version: str) -> str:
    return (f"{platform.system()} {platform.release()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} CPUs; "
            f"Python {platform.python_version()}, mpi4py {mpi4py_version}, {library}")


def us(s: float) -> str:
    return f"{s * 1e6:.3f}"


def unfitted(r: dict[str, Any], ncores: int) -> str:
    """Why row ``r`` is left out of the fit ("" if it is fitted)."""
    if r["what"] == "post" and r["bytes"] > SMALL:
        return f"larger than {SMALL} B: the model's post is one constant, fitted to the messages evohpo sends most"
    if r["what"] == "collective" and "yield" in r.get("payload", ""):
        return "another way to wait (sched_yield between Tests), for comparison"
    if r["what"] == "collective" and r["ranks"] > ncores:
        return f"{r['ranks']} ranks on {ncores} cores: the ranks take turns on the CPUs"
    return ""


def table(model: Any, rows: list[dict[str, Any]], why: dict[int, str] | None = None) -> list[str]:
    head = "| what | payload | bytes | ranks | repeats | measured µs | predicted µs | predicted / measured |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|"
    lines = [head + (" why not fitted |" if why else ""), rule + ("---|" if why else "")]
    for i, r in enumerate(rows):
        p = model.predict(r)
        lines.append(f"| {r['what']} | {r.get('payload', '')} | {r['bytes']} | {r['ranks']} | {r.get('repeats', '')} "
                     f"| {us(r['seconds'])} | {us(p)} | {p / r['seconds']:.2f} |" + (f" {why[i]} |" if why else ""))
    return lines


def parameters(model: Any) -> list[str]:
    m = model
    return ["| field | value |", "|---|---:|",
            f"| latency | {us(m.latency)} µs |", f"| bandwidth | {m.bandwidth / 1e9:.3f} GB/s |",
            f"| serialize | {us(m.serialize)} µs |", f"| serialize_per_byte | {m.serialize_per_byte * 1e9:.4f} ns/B |",
            f"| post | {us(m.post)} µs |", f"| receive | {us(m.receive)} µs |",
            f"| receive_per_byte | {m.receive_per_byte * 1e9:.4f} ns/B |", f"| empty_poll | {us(m.empty_poll)} µs |",
            f"| collective | {us(m.collective)} µs per stage |", f"| wake | {us(m.wake)} µs per evaluation |"]


def merge_runs(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of several runs of one job: each the median of the runs' medians, the repeats added up."""
    out = []
    for same in zip(*runs):
        r = dict(same[0])
        r["seconds"] = median([x["seconds"] for x in same])
        r["repeats"] = sum(x["repeats"] for x in same)
        if len(same) > 1:
            r["runs"] = len(same)
        out.append(r)
    return out


def driver(args: argparse.Namespace) -> None:
    from evohpo.sim.costs import CostModel

    t0, load_before, ncores = time.perf_counter(), os.getloadavg(), cores()
    rows, info = [], {}
    for ranks in COLLECTIVE_RANKS:  # the 2-rank job P2P_RUNS times: one run can be slowed by the VM's neighbours
        jobs = [run_job(ranks, args, collective_only=ranks != 2)
                for _ in range(P2P_RUNS if ranks == 2 and not args.quick else 1)]
        info = jobs[-1]
        rows += merge_runs([job["rows"] for job in jobs])
    rows.append(wake(40 if args.quick else 200))
    elapsed, load_after = time.perf_counter() - t0, os.getloadavg()
    fitted = [r for r in rows if not unfitted(r, ncores)]
    others = [r for r in rows if unfitted(r, ncores)]
    model = CostModel.fit(fitted, machine=machine(info["library"], info["mpi4py"]))
    model.save(args.out_json)
    command = "python bench/mpi_costs.py" + (" --quick" if args.quick else "")
    md = ["# MPI message costs", "",
          f"Written by `{command}` (the rows: `mpiexec -n 2 python -m mpi4py bench/mpi_costs.py --worker`, the "
          f"collective also at {', '.join(map(str, COLLECTIVE_RANKS[1:]))} ranks with `--collective-only`) on "
          f"{time.strftime('%Y-%m-%d')}; {elapsed:.0f} s, load average {load_before[0]:.2f} before and "
          f"{load_after[0]:.2f} after.", "",
          f"Machine: {model.machine}.", "",
          f"Every row is the median of `repeats` timings (`perf_counter_ns`, after a warm-up; for the 2-rank "
          f"rows the median of {1 if args.quick else P2P_RUNS} runs' medians) of what "
          "`MPITransport` does: pingpong = half the round trip of a `Send`/`Recv` of a buffer between two ranks; "
          "serialize = `MPI.pickle.dumps` of an evohpo payload (a RESULT `(Individual, params, unstarted, None)` of "
          "a 5-parameter space, MIGRANT batches of 1 to 256 individuals), `bytes` its pickled size; post = "
          "`Isend` + `Test()` until done; receive = the `iprobe` that finds a waiting message + `recv` (unpickle); "
          "empty_poll = `EMPTY_PROBES` iprobes finding nothing; collective = `Ialltoall` of int64 counts posted "
          "right after a barrier and tested until done, from the last rank's post to the last rank's completion; "
          "wake = the extra thread CPU time per evaluation of `optimize`'s loop on one worker when every evaluation "
          "sleeps 50 ms, against evaluations that return at once (the loss's own CPU left out).",
          "",
          "`evohpo.sim.costs.CostModel.fit` fitted the model below to the rows of the first table (least squares "
          "in the relative error, coefficients >= 0); it is in `evohpo/sim/costs.json`, rows included.", "",
          "## Fitted model", "", *parameters(model), "", "## Rows fitted", "", *table(model, fitted), "",
          "## Rows measured but not fitted", "",
          "The predicted column is the fitted model's value for the row.", "",
          *table(model, others, {i: unfitted(r, ncores) for i, r in enumerate(others)}), ""]
    text = "\n".join(md)
    print(text)
    out = Path(args.out_md)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out_json} and {out}", file=sys.stderr)


def under_mpiexec() -> bool:
    """Whether this process is one rank of a job of several (MPICH's Hydra or srun set PMI_SIZE, Open MPI its own)."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        try:
            if int(os.environ.get(var, "1")) > 1:
                return True
        except ValueError:
            pass
    return False


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="200 instead of 2000 repeats (a fast check)")
    p.add_argument("--out-json", default=str(ROOT / "evohpo" / "sim" / "costs.json"), help="the fitted model")
    p.add_argument("--out-md", default=str(ROOT / "bench" / "results" / "mpi_costs.md"), help="the report")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mpiexec job")
    p.add_argument("--worker", action="store_true", help="(under mpiexec) measure and write --rows")
    p.add_argument("--collective-only", action="store_true", help="(worker) only the collective")
    p.add_argument("--rows", help="(worker) where rank 0 writes the rows; default: print them")
    args = p.parse_args(argv)
    if args.worker or under_mpiexec():
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
