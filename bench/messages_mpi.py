"""Messages per evaluation on real MPI, before and after the changes the simulation led to, next to what the
simulator predicts for the same search.

    python bench/messages_mpi.py                       # against b3bda92 (before), 8 and 16 ranks
    python bench/messages_mpi.py --baseline REF --ranks 8

Each side runs ``optimize`` under ``mpiexec`` from a snapshot of its ``evohpo/`` (``--baseline``: via ``git archive``)
on a continuous space (5-D sphere) and a finite one (two choices of 16 values), islands of 2 workers; every rank
reports its ``SearchResult.messages["sent"]``, and the table shows their sum per evaluation. Message counts do not
depend on the machine's load, so one run per setting is enough. The report is ``bench/results/messages_mpi.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import BENCH, ROOT, git_head, mpi_command, snapshot_evohpo, worker_env

SPACES = {"continuous": "sphere", "finite": "finite"}
PER_RANK = 24
RANK_CODE = """
import json, sys, time
from mpi4py import MPI
import evohpo
from evohpo.testing import functions
space_name, per_rank = sys.argv[1], int(sys.argv[2])
comm = MPI.COMM_WORLD
if space_name == "sphere":
    problem = functions.get("sphere", 5)
    space, loss = problem.space, problem.loss
else:
    space = {"a": list(range(16)), "b": list(range(16))}
    loss = lambda p: float((p["a"] - 5) ** 2 + (p["b"] - 9) ** 2)
def timed(params):
    time.sleep(0.005)
    return loss(params)
r = evohpo.optimize(timed, space, max_evaluations=per_rank * comm.size, islands=comm.size // 2, seed=1,
                    propagator="ga", progress_interval=1.0)
sent = comm.gather(r.messages["sent"], root=0)
if comm.rank == 0:
    print("RESULT " + json.dumps({"sent": sum(sent), "evaluations": r.n_evaluations}), flush=True)
"""


def run_side(tree: Path, ranks: int, space: str) -> dict[str, Any]:
    script = tree / "_messages_rank.py"
    script.write_text(RANK_CODE)
    cmd = mpi_command(Path(sys.executable), ranks, script, space, str(PER_RANK))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=worker_env(tree), cwd=tree)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT "):])


def predicted(ranks: int, space: str) -> float:
    from evohpo.sim import Durations, simulate

    if space == "sphere":
        r = simulate(ranks, ranks // 2, max_evaluations=PER_RANK * ranks, durations=Durations("fixed", 0.005),
                     seed=1, options={"propagator": "ga", "progress_interval": 1.0})
    else:
        r = simulate(ranks, ranks // 2, max_evaluations=PER_RANK * ranks, durations=Durations("fixed", 0.005),
                     seed=1, space={"a": list(range(16)), "b": list(range(16))},
                     loss=lambda p: float((p["a"] - 5) ** 2 + (p["b"] - 9) ** 2),
                     options={"propagator": "ga", "progress_interval": 1.0})
    return sum(r.messages_by_tag.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="b3bda92", help="the commit before (default b3bda92)")
    ap.add_argument("--ranks", default="8,16", help="rank counts (default 8,16)")
    args = ap.parse_args()
    ranks_list = [int(x) for x in args.ranks.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        before, after = Path(tmp) / "before", Path(tmp) / "after"
        snapshot_evohpo(before, args.baseline)
        snapshot_evohpo(after, None)
        for ranks in ranks_list:
            for label, space in SPACES.items():
                b, a = run_side(before, ranks, space), run_side(after, ranks, space)
                row = {"ranks": ranks, "islands": ranks // 2, "space": label,
                       "before": b["sent"] / b["evaluations"], "after": a["sent"] / a["evaluations"],
                       "simulated": predicted(ranks, space)}
                rows.append(row)
                print(f"{ranks} ranks, {label}: {row['before']:.2f} -> {row['after']:.2f} messages per evaluation "
                      f"(simulated {row['simulated']:.2f})", flush=True)
    md = ["# Messages per evaluation on real MPI, before and after", "",
          f"Written by `python bench/messages_mpi.py --baseline {args.baseline} --ranks {args.ranks}` (before: "
          f"{args.baseline}, after: {git_head()}); {PER_RANK} evaluations of 5 ms per rank, islands of 2 workers, "
          "`propagator=\"ga\"`; messages are every rank's `SearchResult.messages[\"sent\"]`, summed; simulated: "
          "`evohpo.sim` on the same search (the after code).", "",
          "| ranks | islands | space | before | after | simulated |", "|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['ranks']} | {r['islands']} | {r['space']} | {r['before']:.2f} | {r['after']:.2f} | "
                  f"{r['simulated']:.2f} |")
    out = BENCH / "results" / "messages_mpi.md"
    out.write_text("\n".join(md) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
