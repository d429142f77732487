"""Results as a figure: best value against evaluations and time per island, the learning curves when the trainings
reported, value against each parameter (the value: the metric as the objective returned it, so better is up when
maximizing).

matplotlib is imported inside ``plot``; no pyplot (no GUI backend, no global state).
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.individual import FAILED, INTERRUPTED, OK, PRUNED, Individual
from ..core.space import Choice
from ..journal.files import StrPath
from .learning import RUNNING
from .tables import _duration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .load import Results


# The value axes show the best value up to the 90th percentile of the values (the 10th when maximizing) plus a
# quarter of that span again, capped at the worst value: outliers beyond are drawn at the edge, not squashing the rest.
_QUANTILE, _HEADROOM, _MARGIN = 0.9, 0.25, 0.04
_ISLAND_LEGEND = 10  # islands named one by one in the legend up to this many (as many as tab10 has colours)
# How each status's learning curves are drawn: ok ones solid in their island's colour, pruned ones faint, the rest
# dashed or dotted; alpha falls with the number of curves (down to the floor) so that thousands stay readable.
_CURVE_STYLE: dict[str, dict[str, Any]] = {
    OK: {"lw": 1.1, "alpha": (0.85, 0.35), "zorder": 3},
    PRUNED: {"lw": 0.6, "alpha": (0.3, 0.1), "zorder": 2, "color": "0.35"},
    FAILED: {"lw": 0.8, "alpha": (0.7, 0.2), "zorder": 2, "color": "red", "linestyle": "--"},
    "other": {"lw": 0.9, "alpha": (0.8, 0.3), "zorder": 2, "color": "black", "linestyle": ":"},
}
_PRUNED_COLOUR = "0.35"
_STATUS_ORDER = [OK, PRUNED, FAILED, INTERRUPTED, RUNNING]


@dataclass(frozen=True)
class ValueAxis:
    """How the value axes are drawn: log or linear, their limits (None: matplotlib's own), the worst value inside
    them (``edge``) and how many ok values lie beyond it."""

    log: bool = False
    limits: tuple[float, float] | None = None
    edge: float | None = None
    beyond: int = 0

    def outside(self, values: np.ndarray, maximize: bool) -> np.ndarray:
        """Which of ``values`` lie beyond the edge (worse than it)."""
        if self.edge is None:
            return np.zeros(len(values), dtype=bool)
        return values < self.edge if maximize else values > self.edge


def _useful(worse: np.ndarray) -> tuple[float, float]:
    """(best, edge) of values oriented so that higher is worse."""
    best, q = float(worse.min()), float(np.quantile(worse, _QUANTILE, method="lower"))  # a value, not between two
    if q <= best:  # most values are the best one: nothing to clip
        return best, float(worse.max())
    return best, min(float(worse.max()), q + _HEADROOM * (q - best))


def value_axis(values: np.ndarray, maximize: bool) -> ValueAxis:
    """The value axes for the ok ``values``: log when they are positive and the useful range spans over 100x;
    limited from the best to the useful edge (``_QUANTILE``, ``_HEADROOM``) when some values lie beyond it."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or v.min() == v.max():
        return ValueAxis()
    sign = -1.0 if maximize else 1.0  # sign * value: higher is worse
    best, edge = _useful(sign * v)
    low, high = sorted((sign * best, sign * edge))
    log = bool(v.min() > 0 and high / low > 100)
    beyond = int((sign * v > edge).sum())
    if not beyond:
        return ValueAxis(log)
    if log:
        margin = _MARGIN * math.log10(high / low)
        limits = (low / 10 ** margin, high * 10 ** margin)
    else:
        margin = _MARGIN * (high - low)
        limits = (low - margin, high + margin)
    return ValueAxis(log, limits, sign * edge, beyond)


def island_colour(island: int) -> Any:
    """The colour of an island's curve and points (tab10; it repeats after 10 islands)."""
    from matplotlib import colormaps

    return colormaps["tab10"](island % 10)


def plot(results: Results, path: StrPath | None = None, dpi: int = 100) -> Figure:
    """One figure: best value against evaluations and against time per island, the learning curves (when the
    trainings reported with ``evohpo.report``), value against each parameter.

    The learning-curve panel draws every training's value against its steps: ok ones solid in their island's
    colour, pruned ones thin and faint, failed ones dashed red, running or interrupted ones dotted, the best ok
    one thick gold. Log-scale Float/Int parameters get a log x-axis, Choice parameters a categorical one;
    failed evaluations are marked with a red x at the top edge, pruned ones drawn faint grey at their last
    value. The value axes leave out outliers (``value_axis``:
    the points beyond are drawn at the edge, as triangles, and the legend says so). One legend, above the
    axes, names the islands' colours and the markers. Saved to ``path`` when given (no pyplot, so no GUI
    backend and no global state is touched).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    names = results.param_names()
    curves = results.curves()
    first_param = 3 if curves else 2
    n_plots = first_param + len(names)
    cols = min(3, n_plots)
    rows = math.ceil(n_plots / cols)
    width, height = 5.0 * cols, 3.8 * rows + 0.4
    fig = Figure(figsize=(width, height), layout="constrained")  # room for the labels and the legend
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_plots:]:
        ax.set_visible(False)
    prog = results.progress()
    goal = results.goal
    scale = value_axis(np.array([results.value(i) for i in results.ranked]), goal.maximize)
    handles: list[Any] = []
    for ax, x_of, xlabel in ((axes[0], "evaluations", "evaluations"), (axes[1], "time", "time (s)")):
        for key, p in prog.items():
            if not len(p):
                continue
            y = np.where(np.isfinite(p.best), goal.value(p.best), np.nan)
            style = ({"color": "0.3", "lw": 4.0, "alpha": 0.35, "zorder": 1} if key == "all"
                     else {"lw": 1.4, "zorder": 2, "color": island_colour(int(key))})
            if key == "all" and len(prog) == 2:
                continue  # a single island: its curve is the whole search
            ax.step(getattr(p, x_of), y, where="post", **style)
        ax.set_xlabel(xlabel)
        ax.locator_params(axis="x", nbins=6)  # fewer ticks: long labels of small times do not run together
        ax.set_ylabel(_label(f"best {goal.metric} so far" + (f" ({goal.better})" if goal.maximize else "")))
        _scale(ax, scale)
        ax.grid(True, alpha=0.3)
    islands = [k for k in prog if k != "all"]
    if len(islands) > 1:
        handles.append(Line2D([], [], color="0.3", lw=4.0, alpha=0.35, label="all islands"))
    if len(islands) <= _ISLAND_LEGEND:
        handles += [Line2D([], [], color=island_colour(int(k)), lw=1.4, marker="o", markersize=4,
                           label=f"island {k}") for k in islands]
    axes[0].set_title(f"{results.counts['evaluations']} evaluations, best {goal.metric} "
                      f"{results.value(results.ranked[0]):.4g}"
                      if results.ranked else "no ok evaluation yet")
    axes[1].set_title(f"elapsed {_duration(results.elapsed)}")
    failed = [i for i in results.individuals if not i.ok and i.status != PRUNED]
    pruned = [i for i in results.individuals if i.status == PRUNED]
    best_id = results.ranked[0].id if results.ranked else None
    if curves:
        _plot_curves(results, axes[2], curves, best_id)
    for ax, name in zip(axes[first_param:], names):
        _plot_param(results, ax, name, failed, pruned, best_id, scale)
    handles += _marker_handles(results, curves, names, failed, pruned, best_id, scale)
    if handles:
        _legend(fig, handles, height)
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def _marker_handles(results: Results, curves: dict[str, Any], names: list[str], failed: list[Any],
                    pruned: list[Any], best_id: str | None, scale: ValueAxis) -> list[Any]:
    """The legend entries for the markers and line styles the panels use (best, pruned, running, beyond the value
    axes, failed), each only when something is drawn that way."""
    from matplotlib.lines import Line2D

    goal, handles = results.goal, []
    if (names or best_id in curves) and results.ranked:
        handles.append(Line2D([], [], marker="*", markersize=11, color="gold", markeredgecolor="black",
                              linestyle="-" if best_id in curves else "", lw=2.4, label="best"))
    n_pruned = len(pruned) or sum(c.status == PRUNED for c in curves.values())
    if n_pruned and (names or curves):
        handles.append(Line2D([], [], color=_PRUNED_COLOUR, alpha=0.6, lw=0.8, marker="o" if names else "",
                              markersize=3, linestyle="-" if curves else "", label=f"pruned ({n_pruned})"))
    running = sum(c.status not in (OK, PRUNED, FAILED) for c in curves.values())
    if running:
        handles.append(Line2D([], [], color="black", lw=0.9, linestyle=":",
                              label=f"running or interrupted ({running})"))
    if scale.beyond:  # the note that the value axes leave some out
        handles.append(Line2D([], [], marker="v" if goal.maximize else "^", color="0.4", linestyle="",
                              label=f"{scale.beyond} {'below' if goal.maximize else 'above'} {scale.edge:.3g}: "
                                    "off the value axes" + (", drawn at the edge" if names else "")))
    failed_curves = any(c.status == FAILED for c in curves.values())
    if (names or failed_curves) and failed:
        handles.append(Line2D([], [], marker="x" if names else "", color="red", linestyle="--" if failed_curves else "",
                              lw=0.8, label=f"failed ({len(failed)})"))
    return handles


def _scale(ax: Any, scale: ValueAxis) -> None:
    """The value axis of ``ax`` as ``scale`` says."""
    if scale.log:
        ax.set_yscale("log")
    if scale.limits is not None:
        ax.set_ylim(*scale.limits)


def _label(text: str) -> str:
    """An axis label wrapped so that it fits beside a short axes (a long metric name)."""
    return "\n".join(textwrap.wrap(text, 40))


def _legend(fig: Figure, handles: list[Any], height: float) -> None:
    """One legend for the figure, above every axes: it covers no point."""
    ncols = min(len(handles), 7)
    try:
        fig.legend(handles=handles, loc="outside upper center", ncols=ncols, fontsize="small", frameon=False)
    except ValueError:  # matplotlib < 3.7 knows no "outside": keep room at the top for it
        fig.get_layout_engine().set(rect=(0, 0, 1, 1 - 0.4 / height))
        fig.legend(handles=handles, loc="upper center", ncols=ncols, fontsize="small", frameon=False)


def _alpha(style: dict[str, Any], n: int) -> float:
    """The alpha of ``n`` curves drawn in ``style``: its first value for a few, falling to its floor for many."""
    high, low = style["alpha"]
    return max(low, min(high, high * 20 / max(n, 1)))


def _plot_curves(results: Results, ax: Any, curves: dict[str, Any], best_id: str | None) -> None:
    """Value against step for every training: one LineCollection per status (fast for thousands of curves)."""
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection

    goal = results.goal
    groups: dict[str, list[Any]] = {}
    for c in curves.values():
        groups.setdefault(c.status if c.status in (OK, PRUNED, FAILED) else "other", []).append(c)
    for status in (PRUNED, "other", FAILED, OK):  # the faint ones first, under the others
        group = groups.get(status)
        if not group:
            continue
        style = dict(_CURVE_STYLE[status])
        style["alpha"] = _alpha(style, len(group))
        if status == OK:
            colour = {island: island_colour(island) for island in {c.island for c in group}}
            style["colors"] = [colour[c.island] for c in group]
        else:
            style["colors"] = style.pop("color")
        lines = LineCollection([np.column_stack((c.steps, c.values)) for c in group], label=f"_{status}", **style)
        lines.set_gid(f"curves-{status}")
        ax.add_collection(lines)
    cut = groups.get(PRUNED)
    if cut:  # where each was stopped: the rungs of the pruner show as columns of dots
        ax.scatter([c.steps[-1] for c in cut], [c.values[-1] for c in cut], s=7, color=_PRUNED_COLOUR,
                   alpha=max(0.15, min(0.6, 0.6 * 30 / len(cut))), linewidths=0, zorder=3.5, gid="curves-pruned-end")
    points = [c.values for c in curves.values()]
    top = curves.get(best_id) if best_id is not None else None
    if top is not None:
        effects = [patheffects.withStroke(linewidth=3.8, foreground="black")]
        ax.plot(top.steps, top.values, color="gold", lw=2.4, zorder=5, path_effects=effects, gid="curves-best")
        ax.plot(top.steps[-1:], top.values[-1:], marker="*", markersize=11, color="gold", markeredgecolor="black",
                linestyle="", zorder=6)
    ax.autoscale_view()
    steps = np.concatenate([c.steps for c in curves.values()])
    if steps.min() >= 1 and steps.max() / steps.min() > 100:
        ax.set_xscale("log")
    _scale(ax, value_axis(np.concatenate(points), goal.maximize))
    counts = Counter(c.status for c in curves.values())
    shown = ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=_STATUS_ORDER.index))
    ax.set_title(f"learning curves ({shown})")
    ax.set_xlabel("step")
    ax.set_ylabel(_label(goal.metric + (f" ({goal.better})" if goal.maximize else "")))
    ax.grid(True, alpha=0.3)


def _plot_param(results: Results, ax: Any, name: str, failed: list[Individual], pruned: list[Individual],
                best_id: str | None, scale: ValueAxis) -> None:
    param = results.space[name] if results.space is not None and name in results.space else None
    ok = [i for i in results.ranked if name in i.params]
    bad = [i for i in failed if name in i.params]
    cut = [i for i in pruned if name in i.params and math.isfinite(i.loss)]
    rng = np.random.default_rng(0)
    if isinstance(param, Choice) or (param is None and any(isinstance(i.params[name], str) for i in ok + bad + cut)):
        values = list(param.values) if param is not None else sorted({i.params[name] for i in ok + bad + cut},
                                                                     key=str)
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
    maximize = results.goal.maximize
    if ok:
        values = np.array([results.value(i) for i in ok])
        x = xs(ok)
        colours = [island_colour(results.ran_on(i)) for i in ok]
        out = scale.outside(values, maximize)
        inside = ~out
        ax.scatter(x[inside], values[inside], s=14, alpha=0.6, c=[c for c, k in zip(colours, inside) if k],
                   linewidths=0)
        if out.any() and scale.limits is not None:
            at = scale.limits[0] if maximize else scale.limits[1]
            ax.scatter(x[out], np.full(int(out.sum()), at), s=22, marker="v" if maximize else "^", alpha=0.8,
                       c=[c for c, k in zip(colours, out) if k], linewidths=0, clip_on=False, zorder=3)
        top = [i for i in ok if i.id == best_id]
        if top:
            ax.scatter(xs(top), [results.value(top[0])], s=90, marker="*", color="gold", edgecolors="black", zorder=4)
    if bad:
        ax.scatter(xs(bad), np.full(len(bad), 0.97), s=18, marker="x", color="red",
                   transform=ax.get_xaxis_transform())
    _scale(ax, scale)
    if cut:  # at their last reported value, faint, under the others; the axes stay those of the ok values
        limits = ax.get_ylim() if ok else None
        values = np.asarray(results.goal.value(np.array([i.loss for i in cut], dtype=float)))
        ax.scatter(xs(cut), values, s=8, alpha=0.3, color=_PRUNED_COLOUR, linewidths=0, zorder=1)
        if limits is not None:
            ax.set_ylim(*limits)
    ax.set_xlabel(name)
    ax.set_ylabel(_label(results.metric))
    ax.grid(True, alpha=0.3)
