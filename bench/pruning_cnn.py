"""The main job with and without pruning: run.py's real CNN search on digits, 4 ranks, the same seeds.

    python bench/pruning_cnn.py                 # writes bench/results/pruning-cnn.md (about 10 minutes on 2 cores)
    python bench/pruning_cnn.py --seeds 2 --quick

Without pruning every training runs up to ``--epochs`` (Lightning's early stopping may end one sooner) and the
search has ``--generations`` trainings per rank. With ASHA the search gets a step budget of a third of the epochs
the unpruned searches used (their median), and, as a second row, the same budget as them (``--no-same-budget``
leaves that row out). The score is the best validation accuracy the search found (a training that ran to its end);
the epochs are the steps reported.

The best observed accuracy favours the search with more complete trainings: each is one noisy draw (initialisation
and batch order), and the maximum of more draws is higher even where the configurations are no better. So each
search's best configuration is also trained again ``--retrain`` times with other seeds (1000, 1001, ...; the same
seeds for every search), and its mean accuracy there is the second score: how good the configuration the search
returns is, without the luck of its one training.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def search(ranks: int, seed: int, epochs: int, *, generations: int | None = None, step_budget: int | None = None,
           pruner: str = "none") -> dict:
    """One run.py search in a fresh checkpoint; its best accuracy, epochs trained, trainings, pruned, wall."""
    with tempfile.TemporaryDirectory() as d:
        budget = ["--generations", str(generations)] if step_budget is None else ["--step-budget", str(step_budget)]
        cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), sys.executable, "-m", "mpi4py",
               str(ROOT / "run.py"), "--seed", str(seed), "--epochs", str(epochs), "--pruner", pruner,
               "--checkpoint", f"{d}/ckpt", "--log-dir", "", *budget]
        t0 = time.time()
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=3600, cwd=d)
        wall = time.time() - t0
        import evohpo

        res = evohpo.load(f"{d}/ckpt")
        df = res.to_dataframe()
        steps = int(df["step"].fillna(0).sum())
        ok = df[df["status"] == "ok"]
        return {"seed": seed, "pruner": pruner, "best": float(ok["val_acc"].max()), "epochs": steps,
                "trainings": len(df), "pruned": int((df["status"] == "pruned").sum()), "wall": wall,
                "best_params": res.best(1)[0].params}


def retrain(runs: list[dict], epochs: int, times: int) -> None:
    """Train each run's best configuration again ``times`` times (seeds 1000, 1001, ...; one process, this
    machine's CPU or GPU) and add ``retrained``, the mean best validation accuracy of those trainings."""
    from evohpo.hpo.data import load_dataset
    from evohpo.hpo.devices import setup_device
    from evohpo.hpo.objective import LightningObjective

    device, data = setup_device(None), load_dataset("digits")
    for run in runs:
        if "retrained" in run or "best_params" not in run or times < 1:  # (done, or reused from an older JSON)
            continue
        accs = [LightningObjective(data, device=device, epochs=epochs, seed=1000 + k, log_dir=None)(run["best_params"])
                for k in range(times)]
        run["retrained"] = statistics.mean(accs)
        print(json.dumps({"seed": run["seed"], "pruner": run["pruner"], "retrained": run["retrained"]}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--ranks", type=int, default=4)
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--retrain", type=int, default=3, help="trainings of each search's best configuration with other "
                                                         "seeds, for its mean accuracy (0: none)")
    p.add_argument("--no-same-budget", action="store_true", help="leave out the ASHA searches at the unpruned "
                                                                   "searches' budget")
    p.add_argument("--quick", action="store_true", help="3 epochs, 2 trainings per rank")
    p.add_argument("--out", default=str(HERE / "results" / "pruning-cnn.md"))
    p.add_argument("--reuse", default=None, help="a JSON this script wrote: take its unpruned searches (the same "
                                                 "seeds, epochs and generations) instead of running them again")
    p.add_argument("--resume", action="store_true", help="keep every search already in the JSON beside --out (the "
                   "same epochs and generations) and run the seeds it lacks; ASHA keeps the step budgets it had")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.generations = 3, 2
    saved = Path(args.out).with_suffix(".json")
    old = json.loads(saved.read_text()) if args.resume and saved.exists() else {}
    if old.get("asha_third") and "budget" not in old:
        raise SystemExit(f"--resume: {saved} has ASHA searches but not the budget they had (written before it was "
                         "kept); run without --resume")
    full = old.get("none", json.loads(Path(args.reuse).read_text())["none"] if args.reuse else [])[:args.seeds]
    for seed in range(len(full), args.seeds):
        full.append(search(args.ranks, seed, args.epochs, generations=args.generations))
        print(json.dumps(full[-1]), flush=True)
    used = old.get("budget", int(statistics.median(r["epochs"] for r in full)))
    third, same = old.get("asha_third", [])[:args.seeds], old.get("asha_same", [])[:args.seeds]
    for seed in range(len(third), args.seeds):
        third.append(search(args.ranks, seed, args.epochs, step_budget=used // 3, pruner="asha"))
        print(json.dumps(third[-1]), flush=True)
    for seed in range(len(same), 0 if args.no_same_budget else args.seeds):
        same.append(search(args.ranks, seed, args.epochs, step_budget=used, pruner="asha"))
        print(json.dumps(same[-1]), flush=True)
    rows = [("none", f"{args.generations} trainings per rank", full), ("asha", f"step budget {used // 3}", third)]
    rows += [("asha", f"step budget {used}", same)] if same else []
    for _, _, runs in rows:
        retrain(runs, args.epochs, args.retrain)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    lines = [f"# run.py's CNN search with and without pruning ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"digits, {args.ranks} ranks on {os.cpu_count()} cores, up to {args.epochs} epochs per training, "
             f"seeds 0-{args.seeds - 1}; `python bench/pruning_cnn.py {' '.join(sys.argv[1:])}`. Medians over the "
             "seeds; per seed in the JSON lines of the run log.", "",
             f"| pruner | budget | best val_acc (median) | min-max | its configuration retrained ({args.retrain} "
             "seeds; median of means) | epochs trained (median) | trainings | pruned | wall s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def retrained(runs: list[dict]) -> str:
        return f"{med(runs, 'retrained'):.4f}" if all("retrained" in r for r in runs) else "n/a"

    for name, budget, runs in rows:
        lines.append(f"| {name} | {budget} | {med(runs, 'best'):.4f} | {min(r['best'] for r in runs):.4f}-"
                     f"{max(r['best'] for r in runs):.4f} | {retrained(runs)} | {med(runs, 'epochs'):.0f} | "
                     f"{med(runs, 'trainings'):.0f} | {med(runs, 'pruned'):.0f} | {med(runs, 'wall'):.0f} |")
    ratio = med(full, "epochs") / max(1.0, med(third, "epochs"))
    lines += ["", f"Epochs without pruning / with ASHA at a third of the budget: {ratio:.2f}x; best accuracy "
              f"{med(full, 'best'):.4f} without, {med(third, 'best'):.4f} with (medians); the best configuration "
              f"retrained: {retrained(full)} without, {retrained(third)} with."]
    text = "\n".join(lines) + "\n"
    write_report(text, args.out)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"budget": used, "none": full, "asha_third": third,
                                                               "asha_same": same}, indent=1))


if __name__ == "__main__":
    main()
