"""Build the ``svc_breast_cancer`` table: scikit-learn SVC on the breast_cancer data set.

Grid: scaler {standard, minmax} x kernel {rbf, sigmoid} x C = 10^[-2, 3] and gamma = 10^[-5, 0]
in half-decade steps (11 x 11). rbf has the classic diagonal C-gamma ridge (too large gamma
memorises, too small C underfits); sigmoid is good only in a narrow band and collapses to the
majority class (error ~0.37) elsewhere. The "seeds" are the 3 folds of a StratifiedKFold(3,
shuffle=True, random_state=0): the value for seed i is the error on fold i of a pipeline
(scaler -> SVC) fitted on the other two folds. SVC runs with max_iter=200000 (a guard against
stalling; ConvergenceWarnings are silenced) and tol/cache defaults otherwise.

    .venv/bin/python bench/tables/make_sklearn.py           # build bench/tables/svc_breast_cancer.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _build import build  # noqa: E402

SEEDS = 3
MAX_ITER = 200_000


def _log_levels(lo: int, hi: int) -> list[float]:
    return [float(f"{10 ** (e / 2):.6g}") for e in range(2 * lo, 2 * hi + 1)]


SPACE: dict[str, list] = {
    "scaler": ["standard", "minmax"],
    "kernel": ["rbf", "sigmoid"],
    "C": _log_levels(-2, 3),
    "gamma": _log_levels(-5, 0),
}

X, Y = load_breast_cancer(return_X_y=True)
FOLDS = list(StratifiedKFold(SEEDS, shuffle=True, random_state=0).split(X, Y))


def evaluate(params: dict, seed: int) -> float:
    tr, va = FOLDS[seed]
    scaler = StandardScaler() if params["scaler"] == "standard" else MinMaxScaler()
    model = make_pipeline(scaler, SVC(C=params["C"], kernel=params["kernel"], gamma=params["gamma"],
                                      max_iter=MAX_ITER))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[tr], Y[tr])
    return float(np.mean(model.predict(X[va]) != Y[va]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "svc_breast_cancer.json"))
    args = ap.parse_args()
    desc = ("scikit-learn SVC on breast_cancer (569 samples, 30 features, 37% majority class). Pipeline "
            "scaler -> SVC(C, kernel, gamma, max_iter=200000). The 3 'seeds' are the folds of "
            "StratifiedKFold(3, shuffle=True, random_state=0): error on fold i of the model fitted on the "
            "other two. C and gamma are log-spaced in half decades.")
    t0 = time.perf_counter()
    build(name="svc_breast_cancer", description=desc, space=SPACE, seeds=SEEDS, evaluate=evaluate,
          out=args.out, log_every=121)
    print(f"total wall {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
