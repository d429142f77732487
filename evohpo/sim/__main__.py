"""``python -m evohpo.sim``: one simulated search, and where its workers' time went."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .costs import CostModel
from .durations import Durations
from .simulate import SimReport, simulate


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evohpo.sim",
                                description="One simulated search of evohpo, and where its workers' time went.")
    p.add_argument("--workers", "-w", type=int, default=256, help="simulated workers (default 256)")
    p.add_argument("--islands", "-i", type=int, default=None,
                   help="islands (default: optimize's, one per 64 workers)")
    p.add_argument("--evaluations", "-n", type=int, default=None, help="max_evaluations (default 8 per worker)")
    p.add_argument("--durations", default="lognormal:60:0.5",
                   help="evaluation times DISTRIBUTION:MEDIAN[:SPREAD], distribution fixed, uniform or lognormal "
                        "(default lognormal:60:0.5)")
    p.add_argument("--failures", type=float, default=0.0, help="share of evaluations that fail (default 0)")
    p.add_argument("--stragglers", type=float, default=0.0, help="share that take --straggler-factor times longer")
    p.add_argument("--straggler-factor", type=float, default=10.0)
    p.add_argument("--problem", default="sphere", help="test function of evohpo.testing.functions (default sphere)")
    p.add_argument("--dim", type=int, default=5)
    p.add_argument("--propagator", default=None, help="the search strategy (default: optimize's default)")
    p.add_argument("--cpu", default="measured",
                   help="'measured' (the optimizer's CPU as the real code takes it here) or seconds per evaluation")
    p.add_argument("--cpu-scale", type=float, default=1.0, help="measured CPU times this (a faster CPU: < 1)")
    p.add_argument("--costs", default=None, help="a cost model JSON (default: the one measured with MPI, shipped)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the report (with the best-loss curve) to this file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        durations = Durations.parse(args.durations)
        durations = Durations(durations.distribution, durations.median, durations.spread, args.failures,
                              args.stragglers, args.straggler_factor)
        cpu = args.cpu if args.cpu == "measured" else _seconds(args.cpu)
        options = {} if args.propagator is None else {"propagator": args.propagator}
        report = simulate(args.workers, args.islands, max_evaluations=args.evaluations, durations=durations,
                          problem=args.problem, dim=args.dim, costs=CostModel.load(args.costs), cpu=cpu,
                          cpu_scale=args.cpu_scale, seed=args.seed, options=options)
    except (ValueError, OSError) as e:
        print(f"python -m evohpo.sim: error: {e}", file=sys.stderr)
        return 2
    print(render(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.to_dict(), f, indent=1)
    return 0


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--cpu={text!r} must be 'measured' or a number of seconds per evaluation") from None


def render(r: SimReport, points: int = 8) -> str:
    """The report as a few lines a person reads."""
    lines = [
        f"{r.workers} workers, {r.islands} islands, evaluations {r.durations}: {r.evaluations} evaluations "
        f"({r.failed} failed) in {r.wall:,.0f} virtual s; simulated in {r.real:.1f} s ({r.events:,} events)",
        f"utilization {r.utilization:.2%}; idle: {r.idle_end:.2%} at the end, {r.idle_between:.3%} between "
        f"evaluations, {r.idle_receive:.4%} receiving",
        f"per evaluation: {r.messages_per_evaluation:.1f} messages, {r.bytes_per_evaluation:,.0f} bytes, "
        f"optimizer CPU {r.cpu_per_evaluation * 1e3:.3f} ms; per worker: starting {r.start_cpu_per_worker * 1e3:.1f} "
        f"ms CPU, ending {r.end_cpu_per_worker * 1e3:.1f} ms CPU and {r.end_messages_per_worker:.0f} messages",
        f"stopped: {r.reason}; best loss {r.best:.6g}" if r.best is not None else f"stopped: {r.reason}",
    ]
    if r.curve:
        lines.append("best loss over virtual time:")
        step = max(1, len(r.curve) // points)
        for t, v in r.curve[::step] + ([r.curve[-1]] if (len(r.curve) - 1) % step else []):
            lines.append(f"  {t:12,.1f} s  {v:.6g}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
