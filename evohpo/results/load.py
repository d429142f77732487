"""Results of a search read back from its checkpoint directory: tables, counts, progress curves, plots.

``load(DIR)`` works on a finished search and on one still writing to DIR: a journal's torn last line (a
record being appended right now, or cut short by a crash) is skipped and counted in ``Results.torn``.

Islands: ``Individual.island`` and ``islands()`` follow ``checkpoint.restore``: the island an individual
lives on now, after migrations (the population view). The table's ``island`` column and ``progress()``
use the island that ran the evaluation (the search view); ``lives_on`` in the table is the former.

pandas and matplotlib are imported inside the functions that need them, so ``import evohpo`` stays light.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.individual import FAILED, OK, PRUNED, Individual
from ..core.space import Choice, Space
from ..journal import checkpoint as ck

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

PARAM_PREFIX = "param."
COLUMNS = ("id", "island", "lives_on", "rank", "generation", "status", "loss", "start", "end", "duration",
           "error")
_RETRIES = 20


class NoJournals(FileNotFoundError):
    """The directory exists but holds no journal-rNNNN.jsonl: it is not (yet) a checkpoint directory."""


@dataclass(frozen=True)
class Progress:
    """Best-so-far loss of a sequence of evaluations, in the order they finished."""

    evaluations: np.ndarray  # 1, 2, ..., n
    time: np.ndarray  # seconds since the search's first record, when each evaluation finished
    loss: np.ndarray  # each evaluation's loss (inf when failed or pruned)
    best: np.ndarray  # the lowest loss up to and including each evaluation (inf before the first ok one)

    def __len__(self) -> int:
        return len(self.evaluations)


def _sizes(directory: Path) -> dict[str, int]:
    """Size of every journal in ``directory`` (to tell a concurrent append from a corrupt file)."""
    out = {}
    for p in directory.glob("journal-r*.jsonl"):
        try:
            out[p.name] = p.stat().st_size
        except FileNotFoundError:
            pass
    return out


def _number(v: Any) -> float | None:
    """``v`` as a finite float, or None."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _torn_count(caught: list[warnings.WarningMessage]) -> int:
    return sum(issubclass(w.category, ck.TornRecordWarning) for w in caught)


def _read(directory: Path) -> tuple[ck.Restored, dict[str, Any], int]:
    """restore() plus what it leaves out: each rank's last event and the time span."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ck.TornRecordWarning)
        restored = ck.restore(directory)
        torn = _torn_count(caught)
        caught.clear()
        last_ev: dict[int, str] = {}
        first, last = math.inf, -math.inf
        for rec in ck.read_records(directory):
            ev = rec.get("ev")
            if isinstance(rec.get("rank"), int):
                last_ev[rec["rank"]] = str(ev)
            t = _number(rec.get("t"))
            if t is not None:
                first, last = min(first, t), max(last, t)
            s = _number(rec.get("start")) if ev == "end" else None
            if s is not None:  # an evaluation re-run after a resume may have started before any record here
                first = min(first, s)
        torn = max(torn, _torn_count(caught))
        for w in caught:  # anything else is the caller's business
            if not issubclass(w.category, ck.TornRecordWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return restored, {"last_ev": last_ev, "first": first, "last": last}, torn


def load(directory: ck.StrPath) -> Results:
    """Read every journal in ``directory`` (finished or still being written) into a ``Results``.

    Raises FileNotFoundError naming the path when the directory is missing, ``NoJournals`` (a
    FileNotFoundError) when it holds no journal, and ValueError for a journal corrupt before its last line.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory {str(d)!r} does not exist or is not a directory")
    for attempt in range(_RETRIES):
        before = _sizes(d)
        if not before:
            raise NoJournals(f"no journals (journal-rNNNN.jsonl) in {str(d)!r}: not a checkpoint directory, or "
                             "its search has not started yet")
        try:
            restored, extra, torn = _read(d)
        except ValueError:
            # A reader that hits the end of a line being appended sees a torn line followed by its rest on the
            # next read, which looks like corruption in the middle; a journal that grew meanwhile is retried.
            if _sizes(d) == before or attempt == _RETRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
            continue
        return Results(d, ck.read_meta(d), restored, extra, torn)
    raise AssertionError("unreachable")  # pragma: no cover


class Results:
    """A search read from its checkpoint directory; build it with ``load(directory)``."""

    def __init__(self, directory: Path, meta: dict[str, Any] | None, restored: ck.Restored,
                 extra: dict[str, Any], torn: int = 0) -> None:
        self.directory = directory
        self.meta = meta
        self.space: Space | None = None
        if meta and isinstance(meta.get("space"), dict) and meta["space"]:
            self.space = Space.from_description(meta["space"])
        self.individuals: list[Individual] = list(restored.individuals)  # finished, by end time
        self.unfinished: list[dict[str, Any]] = list(restored.unfinished)  # started or interrupted, not redone
        self.torn = torn  # journals whose torn last line was skipped
        self._ran_on: dict[str, int] = restored.ran_on
        self._last_ev: dict[int, str] = extra["last_ev"]
        self._first: float = extra["first"]
        self._last: float = extra["last"]
        status = Counter(i.status for i in self.individuals)
        pending = Counter(rec.get("ev") for rec in self.unfinished)
        self.counts: dict[str, int] = {
            "evaluations": len(self.individuals),  # finished: ok + failed + pruned
            "ok": status[OK], "failed": status[FAILED], "pruned": status[PRUNED],
            "in_flight": pending["start"],  # started, no end record yet (running, or cut off by a crash)
            "interrupted": pending["end"],  # stopped by a signal; a resumed search runs them again
        }
        self._ok = sorted((i for i in self.individuals if i.ok), key=lambda i: (i.loss, i.id))

    # --- what was found ----------------------------------------------------------------------------------
    def best(self, n: int = 10) -> list[Individual]:
        """The ``n`` best ok individuals, lowest loss first (ties by id, as ``optimize``'s result)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n={n!r} must be an int >= 0")
        return self._ok[:n]

    def islands(self) -> dict[int, Individual]:
        """The best ok individual of each island that has one, by the island it lives on now."""
        out: dict[int, Individual] = {}
        for ind in self._ok:
            out.setdefault(ind.island, ind)
        return dict(sorted(out.items()))

    def ran_on(self, ind: Individual) -> int:
        """The island whose worker evaluated ``ind`` (``ind.island`` is where it lives now)."""
        return self._ran_on.get(ind.id, ind.island)

    @property
    def n_islands(self) -> int:
        """Islands in the layout (from meta.json), or the number seen in the journals."""
        if self.meta and isinstance(self.meta.get("islands"), list):
            return len(self.meta["islands"])
        seen = {i.island for i in self.individuals} | set(self._ran_on.values())
        return max(seen, default=0) + 1

    @property
    def ranks(self) -> list[int]:
        """The ranks that wrote a journal record."""
        return sorted(self._last_ev)

    @property
    def finished(self) -> bool:
        """Whether every rank's last record is "done" (False while a search runs, or after a crash)."""
        return bool(self._last_ev) and all(ev == "done" for ev in self._last_ev.values())

    @property
    def start_time(self) -> float:
        """Unix time of the search's first record (nan without records)."""
        return self._first if math.isfinite(self._first) else math.nan

    @property
    def elapsed(self) -> float:
        """Wall-clock seconds from the first to the latest record (gaps between resumed runs included)."""
        return max(self._last - self._first, 0.0) if math.isfinite(self._first) else 0.0

    def __len__(self) -> int:
        return len(self.individuals)

    def __repr__(self) -> str:
        c = self.counts
        best = f", best loss {self._ok[0].loss:.6g}" if self._ok else ""
        return (f"Results({str(self.directory)!r}: {c['evaluations']} evaluations, {c['ok']} ok, "
                f"{c['failed']} failed, {c['in_flight']} in flight{best})")

    # --- progress ----------------------------------------------------------------------------------------
    def progress(self) -> dict[int | str, Progress]:
        """Best-so-far loss against evaluation count and against time: "all" and each island that ran some."""
        t0 = self.start_time
        groups: dict[int | str, list[Individual]] = {"all": []}
        for ind in sorted(self.individuals, key=lambda i: (i.end, i.id)):
            groups["all"].append(ind)
            groups.setdefault(self.ran_on(ind), []).append(ind)
        out: dict[int | str, Progress] = {}
        for key in ["all", *sorted(k for k in groups if k != "all")]:
            inds = groups[key]
            loss = np.array([i.loss if i.ok else math.inf for i in inds], dtype=float)
            out[key] = Progress(evaluations=np.arange(1, len(inds) + 1), time=np.array([i.end - t0 for i in inds]),
                                loss=loss, best=np.minimum.accumulate(loss) if len(loss) else loss)
        return out

    # --- tables ------------------------------------------------------------------------------------------
    def param_names(self) -> list[str]:
        """The hyperparameters: the space's order, then any other name seen in the journals."""
        names = list(self.space) if self.space is not None else []
        for ind in self.individuals:
            names += [n for n in ind.params if n not in names]
        return names

    def to_dataframe(self) -> pd.DataFrame:
        """One row per finished evaluation, by end time.

        Columns: id, island (ran on), lives_on (island now, after migrations), rank, generation, status,
        loss (NaN unless ok), start and end (Unix seconds), duration (s), error (None unless failed), then
        one ``param.<name>`` column per hyperparameter (prefixed so that a parameter called e.g. "rank"
        cannot collide with a fixed column).
        """
        import pandas as pd

        names = self.param_names()
        rows = []
        for ind in self.individuals:
            row: dict[str, Any] = {
                "id": ind.id, "island": self.ran_on(ind), "lives_on": ind.island, "rank": ind.rank,
                "generation": ind.generation, "status": ind.status, "loss": ind.loss if ind.ok else math.nan,
                "start": ind.start, "end": ind.end, "duration": ind.end - ind.start, "error": ind.error}
            for n in names:
                row[PARAM_PREFIX + n] = ind.params.get(n)
            rows.append(row)
        return pd.DataFrame(rows, columns=[*COLUMNS, *(PARAM_PREFIX + n for n in names)])

    def to_csv(self, path: ck.StrPath | Any) -> None:
        """Write ``to_dataframe()`` as CSV (no index column) to a path or an open text file."""
        self.to_dataframe().to_csv(path, index=False)

    def summary(self, top: int = 10) -> str:
        """A text report: the search, the counts, the ``top`` best and the best of each island."""
        c = self.counts
        lines = [f"evohpo results: {self.directory}"]
        if self.space is not None:
            lines.append("  space: " + ", ".join(f"{n}={p!r}" for n, p in self.space.items()))
        if self.meta:
            lines.append(f"  islands: {self.meta.get('islands')}, ranks: {self.meta.get('ranks')}")
        state = "finished" if self.finished else "running, or stopped before finishing"
        lines.append(f"  status: {state}; elapsed {_duration(self.elapsed)}")
        lines.append(f"  evaluations: {c['evaluations']} finished ({c['ok']} ok, {c['failed']} failed, "
                     f"{c['pruned']} pruned), {c['in_flight']} in flight, {c['interrupted']} interrupted")
        if self.torn:
            lines.append(f"  note: skipped the torn last line of {self.torn} journal(s) (still being written, "
                         "or cut short by a crash)")
        errors = Counter(_last_line(i.error) for i in self.individuals if i.status == FAILED)
        for err, k in errors.most_common(3):
            lines.append(f"  failed x{k}: {err}")
        if len(errors) > 3:
            lines.append(f"  ... and {len(errors) - 3} other errors")
        best = self.best(top)
        lines.append("")
        if not best:
            lines.append("no ok evaluation yet")
            return "\n".join(lines)
        lines.append(f"top {len(best)} of {c['ok']} ok:")
        lines += _table(best, self.param_names(), first="rank", numbers=range(1, len(best) + 1))
        by_island = self.islands()
        if len(by_island) > 1 or self.n_islands > 1:
            lines.append("")
            lines.append("best per island:")
            lines += _table(list(by_island.values()), self.param_names(), first="island",
                            numbers=list(by_island), island=False)
        return "\n".join(lines)

    # --- plots -------------------------------------------------------------------------------------------
    def plot(self, path: ck.StrPath | None = None, dpi: int = 100) -> Figure:
        """One figure: best loss against evaluations and against time per island, loss against each parameter.

        Log-scale Float/Int parameters get a log x-axis, Choice parameters a categorical one; failed
        evaluations are marked with a red x at the top edge. Saved to ``path`` when given (no pyplot, so no
        GUI backend and no global state is touched).
        """
        from matplotlib.figure import Figure

        names = self.param_names()
        n_plots = 2 + len(names)
        cols = min(3, n_plots)
        rows = math.ceil(n_plots / cols)
        width, height = 5.0 * cols, 3.8 * rows
        fig = Figure(figsize=(width, height))
        axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={  # fixed margins: a layout engine costs more
            "left": 0.7 / width, "right": 1 - 0.2 / width, "bottom": 0.5 / height, "top": 1 - 0.35 / height,
            "wspace": 0.28, "hspace": 0.3})
        axes = axes.ravel()
        for ax in axes[n_plots:]:
            ax.set_visible(False)
        prog = self.progress()
        ok_losses = np.array([i.loss for i in self._ok])
        log_y = len(ok_losses) > 1 and ok_losses.min() > 0 and ok_losses.max() / ok_losses.min() > 100
        for ax, x_of, xlabel in ((axes[0], "evaluations", "evaluations"), (axes[1], "time", "time (s)")):
            for key, p in prog.items():
                if not len(p):
                    continue
                y = np.where(np.isfinite(p.best), p.best, np.nan)
                style = ({"color": "0.3", "lw": 4.0, "alpha": 0.35, "zorder": 1} if key == "all"
                         else {"lw": 1.4, "zorder": 2})
                if key == "all" and len(prog) == 2:
                    continue  # a single island: its curve is the whole search
                label = "all islands" if key == "all" else f"island {key}"
                ax.step(getattr(p, x_of), y, where="post", label=label, **style)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("best loss so far")
            if log_y:
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            if len(prog) > 2:
                ax.legend(fontsize="small")
        axes[0].set_title(f"{self.counts['evaluations']} evaluations, best {self._ok[0].loss:.4g}"
                          if self._ok else "no ok evaluation yet")
        axes[1].set_title(f"elapsed {_duration(self.elapsed)}")
        failed = [i for i in self.individuals if not i.ok]
        best_id = self._ok[0].id if self._ok else None
        for ax, name in zip(axes[2:], names):
            self._plot_param(ax, name, failed, best_id, log_y)
        if path is not None:
            fig.savefig(path, dpi=dpi)
        return fig

    def _plot_param(self, ax: Any, name: str, failed: list[Individual], best_id: str | None, log_y: bool) -> None:
        param = self.space[name] if self.space is not None and name in self.space else None
        ok = [i for i in self._ok if name in i.params]
        bad = [i for i in failed if name in i.params]
        rng = np.random.default_rng(0)
        if isinstance(param, Choice) or (param is None and any(isinstance(i.params[name], str) for i in ok + bad)):
            values = list(param.values) if param is not None else sorted({i.params[name] for i in ok + bad}, key=str)
            pos = {v: k for k, v in enumerate(values)}

            def xs(inds: list[Individual]) -> np.ndarray:
                return np.array([pos.get(i.params[name], -1) for i in inds], dtype=float) + rng.uniform(
                    -0.15, 0.15, len(inds))

            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_xlim(-0.5, len(values) - 0.5)
        else:
            def xs(inds: list[Individual]) -> np.ndarray:
                return np.array([float(i.params[name]) for i in inds], dtype=float)

            if param is not None and getattr(param, "log", False):
                ax.set_xscale("log")
            elif param is not None and param.kind == "Int":
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ok:
            ax.scatter(xs(ok), [i.loss for i in ok], s=14, alpha=0.6, c=[self.ran_on(i) for i in ok],
                       cmap="tab10", vmin=0, vmax=9, linewidths=0)
            top = [i for i in ok if i.id == best_id]
            if top:
                ax.scatter(xs(top), [top[0].loss], s=90, marker="*", color="gold", edgecolors="black", zorder=3,
                           label="best")
        if bad:
            ax.scatter(xs(bad), np.full(len(bad), 0.97), s=18, marker="x", color="red",
                       transform=ax.get_xaxis_transform(), label=f"failed ({len(bad)})")
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        if ok or bad:
            ax.legend(fontsize="small", loc="lower right")


def _duration(seconds: float) -> str:
    """1.2 s, 3 min 4 s, 5 h 06 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _last_line(text: str | None) -> str:
    """The last non-blank line of an error text (for a traceback: the exception)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    msg = lines[-1] if lines else "(no error text)"
    return msg if len(msg) <= 100 else msg[:97] + "..."


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    return str(v)


def _table(inds: list[Individual], names: list[str], first: str, numbers: Any, island: bool = True) -> list[str]:
    """Aligned text rows: first column, loss, id, island (where it lives now), then the parameters."""
    header = ["#" if first == "rank" else first, "loss", "id", *(["island"] if island else []), *names]
    rows = [[str(k), _cell(i.loss), i.id, *([str(i.island)] if island else []),
             *(_cell(i.params.get(n, "")) for n in names)] for k, i in zip(numbers, inds)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *rows]]
