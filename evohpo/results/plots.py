"""Results as a figure: best value against evaluations and time per island, value against each parameter (the
value: the metric as the objective returned it, so better is up when maximizing).

matplotlib is imported inside ``plot``; no pyplot (no GUI backend, no global state).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.individual import Individual
from ..core.space import Choice
from ..journal.files import StrPath
from .tables import _duration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .load import Results


def plot(results: Results, path: StrPath | None = None, dpi: int = 100) -> Figure:
    """One figure: best value against evaluations and against time per island, value against each parameter.

    Log-scale Float/Int parameters get a log x-axis, Choice parameters a categorical one; failed
    evaluations are marked with a red x at the top edge. Saved to ``path`` when given (no pyplot, so no
    GUI backend and no global state is touched).
    """
    from matplotlib.figure import Figure

    names = results.param_names()
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
    prog = results.progress()
    goal = results.goal
    ok_values = np.array([results.value(i) for i in results.ranked])
    log_y = len(ok_values) > 1 and ok_values.min() > 0 and ok_values.max() / ok_values.min() > 100
    for ax, x_of, xlabel in ((axes[0], "evaluations", "evaluations"), (axes[1], "time", "time (s)")):
        for key, p in prog.items():
            if not len(p):
                continue
            y = np.where(np.isfinite(p.best), goal.value(p.best), np.nan)
            style = ({"color": "0.3", "lw": 4.0, "alpha": 0.35, "zorder": 1} if key == "all"
                     else {"lw": 1.4, "zorder": 2})
            if key == "all" and len(prog) == 2:
                continue  # a single island: its curve is the whole search
            label = "all islands" if key == "all" else f"island {key}"
            ax.step(getattr(p, x_of), y, where="post", label=label, **style)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {goal.metric} so far" + (f" ({goal.better})" if goal.maximize else ""))
        if log_y:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if len(prog) > 2:
            ax.legend(fontsize="small")
    axes[0].set_title(f"{results.counts['evaluations']} evaluations, best {goal.metric} "
                      f"{results.value(results.ranked[0]):.4g}"
                      if results.ranked else "no ok evaluation yet")
    axes[1].set_title(f"elapsed {_duration(results.elapsed)}")
    failed = [i for i in results.individuals if not i.ok]
    best_id = results.ranked[0].id if results.ranked else None
    for ax, name in zip(axes[2:], names):
        _plot_param(results, ax, name, failed, best_id, log_y)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def _plot_param(results: Results, ax: Any, name: str, failed: list[Individual], best_id: str | None,
                log_y: bool) -> None:
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
    if ok:
        ax.scatter(xs(ok), [results.value(i) for i in ok], s=14, alpha=0.6, c=[results.ran_on(i) for i in ok],
                   cmap="tab10", vmin=0, vmax=9, linewidths=0)
        top = [i for i in ok if i.id == best_id]
        if top:
            ax.scatter(xs(top), [results.value(top[0])], s=90, marker="*", color="gold", edgecolors="black", zorder=3,
                       label="best")
    if bad:
        ax.scatter(xs(bad), np.full(len(bad), 0.97), s=18, marker="x", color="red",
                   transform=ax.get_xaxis_transform(), label=f"failed ({len(bad)})")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel(results.metric)
    ax.grid(True, alpha=0.3)
    if ok or bad:
        ax.legend(fontsize="small", loc="lower right")
