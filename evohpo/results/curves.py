"""Progress curves: the best loss so far against the number of evaluations and against time."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.individual import Individual


@dataclass(frozen=True)
class Curve:
    """Best-so-far loss of a sequence of evaluations, in the order they finished."""

    evaluations: np.ndarray  # 1, 2, ..., n
    time: np.ndarray  # seconds since the search's first record, when each evaluation finished
    loss: np.ndarray  # each evaluation's loss (inf when failed or pruned)
    best: np.ndarray  # the lowest loss up to and including each evaluation (inf before the first ok one)

    def __len__(self) -> int:
        return len(self.evaluations)


def curves(individuals: Sequence[Individual], ran_on: Callable[[Individual], int],
           t0: float) -> dict[int | str, Curve]:
    """"all" and each island that ran evaluations (``ran_on``), with times since ``t0``."""
    groups: dict[int | str, list[Individual]] = {"all": []}
    for ind in sorted(individuals, key=lambda i: (i.end, i.id)):
        groups["all"].append(ind)
        groups.setdefault(ran_on(ind), []).append(ind)
    out: dict[int | str, Curve] = {}
    for key in ["all", *sorted(k for k in groups if k != "all")]:
        inds = groups[key]
        loss = np.array([i.loss if i.ok else math.inf for i in inds], dtype=float)
        out[key] = Curve(evaluations=np.arange(1, len(inds) + 1), time=np.array([i.end - t0 for i in inds]),
                         loss=loss, best=np.minimum.accumulate(loss) if len(loss) else loss)
    return out
