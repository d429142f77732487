"""Soak: consecutive DDP individuals on 2 workers x 2 ranks (gloo on the CPU) with injected failures.

    python bench/ddp_soak.py             # 200 individuals; writes bench/results/ddp-soak.md and .json
    python bench/ddp_soak.py --quick     # 40 individuals, prints the table only

Each individual trains a small model wrapped in torch's ``DistributedDataParallel`` for 4 steps (a gradient
all-reduce in every backward) over the worker's process group (``evohpo.hpo.distributed.process_group``), and
returns the all-reduced loss. A failure is injected by the individual's id (the same id always gets the same one):

- ``rank 1 mid``: rank 1 raises after its first step, while its root waits in the second step's all-reduce;
- ``root mid``: the root raises after its first step, while rank 1 waits;
- ``rank 1 early``: rank 1 raises before the process group is set up, while its root sets it up;
- ``differ``: rank 1 returns another loss; ``nan``: every rank returns NaN.

The table says, per kind, how many individuals got it and how many were recorded as expected (failed with the
right rank named first, or ok); the run must end by itself (a hang is killed by the timeout and reported); the
setup of each worker's process group (the first, and the rebuilds after failures) is timed on every rank.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = "@@SOAK "
KINDS = ("ok", "rank 1 mid", "root mid", "rank 1 early", "differ", "nan")
EXPECTED = {"ok": None, "rank 1 mid": "rank 1 of the worker failed first",
            "root mid": "rank 0 of the worker failed first", "rank 1 early": "rank 1 of the worker failed first",
            "differ": "returned different losses", "nan": "returned nan"}


def kind_of(ind_id: str) -> str:
    """The failure injected into individual ``ind_id`` (about one in four gets one)."""
    return {0: "rank 1 mid", 1: "rank 1 mid", 2: "root mid", 3: "rank 1 early", 4: "differ", 5: "nan"}.get(
        zlib.crc32(ind_id.encode()) % 20, "ok")


def child(n: int, checkpoint: str) -> None:
    """One rank of the soak (under mpiexec -n 4)."""
    import torch
    import torch.distributed as dist
    from mpi4py import MPI
    from torch.nn.parallel import DistributedDataParallel

    import evohpo
    from evohpo.hpo.distributed import process_group, setups

    torch.set_num_threads(1)
    world = MPI.COMM_WORLD

    def loss(params: dict) -> float:
        ctx = evohpo.current()
        kind, rank = kind_of(ctx.id), ctx.comm.Get_rank()
        if kind == "rank 1 early" and rank == 1:
            raise RuntimeError("injected: rank 1 failed before the process group")
        process_group()
        torch.manual_seed(int(params["x"] * 1e6))
        model = DistributedDataParallel(torch.nn.Linear(16, 1))
        opt = torch.optim.SGD(model.parameters(), lr=params["x"])
        u = torch.randn(32, 16)
        for step in range(4):
            if step == 1 and kind == "rank 1 mid" and rank == 1:
                raise RuntimeError("injected: rank 1 failed in the middle of its training")
            if step == 1 and kind == "root mid" and rank == 0:
                raise RuntimeError("injected: the root failed in the middle of its training")
            opt.zero_grad()
            out = (model(u) ** 2).mean()
            out.backward()
            opt.step()
        value = out.detach().clone()
        dist.all_reduce(value)
        result = float(value) / ctx.comm.Get_size()
        if kind == "differ" and rank == 1:
            return result + 1.0
        return float("nan") if kind == "nan" else result

    t0 = time.perf_counter()
    r = evohpo.optimize(loss, {"x": (0.001, 0.1)}, comm=world, ranks_per_worker=2, max_evaluations=n, seed=1,
                        checkpoint=checkpoint, progress_interval=1e9, max_failures=None)
    wall = time.perf_counter() - t0
    seen = world.gather({"rank": world.rank, "setups": setups()})
    if world.rank == 0:
        inds = [{"id": i.id, "status": i.status, "error": i.error or ""} for i in evohpo.load(checkpoint).individuals]
        print(MARK + json.dumps({"wall": wall, "n": r.n_evaluations, "reason": r.reason, "ranks": seen,
                                 "individuals": inds}), flush=True)


def run(n: int, timeout: float) -> dict:
    """The soak under mpiexec -n 4; ``hung`` when it did not end within ``timeout`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", "4", sys.executable, "-m", "mpi4py", __file__,
               "--child", str(n), str(Path(tmp) / "ckpt")]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"hung": True, "elapsed": time.perf_counter() - t0}
        if proc.returncode != 0:
            raise SystemExit(f"the soak failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        out = json.JSONDecoder().raw_decode(proc.stdout.split(MARK, 1)[1])[0]
        out.update(hung=False, elapsed=time.perf_counter() - t0)
        return out


def summarize(out: dict) -> dict:
    """Per kind: individuals, recorded as expected; the setups; whether it hung."""
    rows = {k: [0, 0] for k in KINDS}
    for ind in out.get("individuals", []):
        kind = kind_of(ind["id"])
        want = EXPECTED[kind]
        good = ind["status"] == "ok" if want is None else ind["status"] == "failed" and (
            ind["error"].startswith(want) or want in ind["error"])
        rows[kind][0] += 1
        rows[kind][1] += good
    setups = [s for r in out.get("ranks", []) for s in r["setups"]]
    firsts = [r["setups"][0] for r in out.get("ranks", []) if r["setups"]]
    return {"rows": rows, "hung": out["hung"], "n": out.get("n", 0), "wall": out.get("wall", out["elapsed"]),
            "first_setup_max": max(firsts, default=float("nan")), "setup_max": max(setups, default=float("nan")),
            "setups": len(setups), "reason": out.get("reason", "killed by the timeout")}


def table(s: dict) -> str:
    lines = ["| injected | individuals | recorded as expected |", "|---|---:|---:|"]
    for kind, (n, good) in s["rows"].items():
        lines.append(f"| {kind} | {n} | {good} |")
    lines += ["", "| individuals | hangs | ended | wall (s) | s per individual | setups (all ranks) | "
              "first setup, slowest rank (s) | slowest setup (s) |", "|---:|---:|---|---:|---:|---:|---:|---:|",
              f"| {s['n']} | {int(s['hung'])} | {s['reason']} | {s['wall']:.1f} | {s['wall'] / max(s['n'], 1):.3f} "
              f"| {s['setups']} | {s['first_setup_max']:.3f} | {s['setup_max']:.3f} |"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="40 individuals, no files written")
    p.add_argument("--child", nargs=2, metavar=("N", "CHECKPOINT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    n = 40 if args.quick else 200
    s = summarize(run(n, timeout=120 + 3.0 * n))
    text = table(s)
    print(text)
    if not args.quick:
        import torch

        head = (f"# DDP soak: {n} individuals on 2 workers x 2 ranks (gloo)\n\n`python bench/ddp_soak.py` on "
                f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}; "
                f"{time.strftime('%Y-%m-%d')}.\n\n")
        (HERE / "results" / "ddp-soak.md").write_text(head + text + "\n")
        (HERE / "results" / "ddp-soak.json").write_text(json.dumps(s, indent=1) + "\n")


if __name__ == "__main__":
    main()
