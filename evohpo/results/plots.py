"""Results as a figure: best value against evaluations and time per island, value against each parameter (the
value: the metric as the objective returned it, so better is up when maximizing).

matplotlib is imported inside ``plot``; no pyplot (no GUI backend, no global state).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.individual import Individual
from ..core.space import Choice
from ..journal.files import StrPath
from .tables import _duration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .load import Results


# The value axes show the best value up to the 90th percentile of the values (the 10th when maximizing) plus a
# quarter of that span again, capped at the worst value: outliers beyond are drawn at the edge, not squashing the rest.
_QUANTILE, _HEADROOM, _MARGIN = 0.9, 0.25, 0.04
_ISLAND_LEGEND = 10  # islands named one by one in the legend up to this many (as many as tab10 has colours)


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
    """One figure: best value against evaluations and against time per island, value against each parameter.

    Log-scale Float/Int parameters get a log x-axis, Choice parameters a categorical one; failed
    evaluations are marked with a red x at the top edge. The value axes leave out outliers (``value_axis``:
    the points beyond are drawn at the edge, as triangles, and the legend says so). One legend, above the
    axes, names the islands' colours and the markers. Saved to ``path`` when given (no pyplot, so no GUI
    backend and no global state is touched).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    names = results.param_names()
    n_plots = 2 + len(names)
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
    failed = [i for i in results.individuals if not i.ok]
    best_id = results.ranked[0].id if results.ranked else None
    for ax, name in zip(axes[2:], names):
        _plot_param(results, ax, name, failed, best_id, scale)
    if names and results.ranked:
        handles.append(Line2D([], [], marker="*", markersize=11, color="gold", markeredgecolor="black",
                              linestyle="", label="best"))
    if scale.beyond:  # the note that the value axes leave some out
        handles.append(Line2D([], [], marker="v" if goal.maximize else "^", color="0.4", linestyle="",
                              label=f"{scale.beyond} {'below' if goal.maximize else 'above'} {scale.edge:.3g}: "
                                    "off the value axes" + (", drawn at the edge" if names else "")))
    if names and failed:
        handles.append(Line2D([], [], marker="x", color="red", linestyle="", label=f"failed ({len(failed)})"))
    if handles:
        _legend(fig, handles, height)
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


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


def _plot_param(results: Results, ax: Any, name: str, failed: list[Individual], best_id: str | None,
                scale: ValueAxis) -> None:
    param = results.space[name] if results.space is not None and name in results.space else None
    ok = [i for i in results.ranked if name in i.params]
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
    ax.set_xlabel(name)
    ax.set_ylabel(_label(results.metric))
    ax.grid(True, alpha=0.3)
