"""Build scikit-learn tables: ``svc_breast_cancer`` (SVC) and ``tree_digits`` (decision tree).

svc_breast_cancer: SVC on the breast_cancer data set.

Grid: scaler {standard, minmax} x kernel {rbf, sigmoid} x C = 10^[-2, 3] and gamma = 10^[-5, 0]
in half-decade steps (11 x 11). rbf has the classic diagonal C-gamma ridge (too large gamma
memorises, too small C underfits); sigmoid is good only in a narrow band and collapses to the
majority class (error ~0.37) elsewhere. The "seeds" are the 3 folds of a StratifiedKFold(3,
shuffle=True, random_state=0): the value for seed i is the error on fold i of a pipeline
(scaler -> SVC) fitted on the other two folds. SVC runs with max_iter=200000 (a guard against
stalling; ConvergenceWarnings are silenced) and tol/cache defaults otherwise.

tree_digits: DecisionTreeClassifier on the 8x8 digits (1797 images): max_depth 1..12 x
min_samples_leaf {1, 2, 4, 8, 16, 32} x criterion {gini, entropy} x max_features {sqrt, half, all}
(sqrt(64) = 8 features, 32 features, all 64 per split). Wide plateaus (depth dominates), shallow
slopes, seed noise comparable to the differences near the top. Seeds: the 3 folds of a
StratifiedKFold(3, shuffle=True, random_state=0); the tree's random_state is the fold index.

    .venv/bin/python bench/tables/make_sklearn.py                # build both tables
    .venv/bin/python bench/tables/make_sklearn.py --table svc    # or: --table tree
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

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


TREE_SPACE: dict[str, list] = {
    "max_depth": list(range(1, 13)),
    "min_samples_leaf": [1, 2, 4, 8, 16, 32],
    "criterion": ["gini", "entropy"],
    "max_features": ["sqrt", "half", "all"],
}
XD, YD = load_digits(return_X_y=True)
DFOLDS = list(StratifiedKFold(SEEDS, shuffle=True, random_state=0).split(XD, YD))


def evaluate_tree(params: dict, seed: int) -> float:
    tr, va = DFOLDS[seed]
    mf = {"sqrt": "sqrt", "half": 0.5, "all": None}[params["max_features"]]
    model = DecisionTreeClassifier(max_depth=params["max_depth"], min_samples_leaf=params["min_samples_leaf"],
                                   criterion=params["criterion"], max_features=mf, random_state=seed)
    model.fit(XD[tr], YD[tr])
    return float(np.mean(model.predict(XD[va]) != YD[va]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", choices=["svc", "tree", "all"], default="all")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if args.table in ("svc", "all"):
        build_svc(os.path.join(here, "svc_breast_cancer.json"))
    if args.table in ("tree", "all"):
        build_tree(os.path.join(here, "tree_digits.json"))


def build_tree(out: str) -> None:
    desc = ("scikit-learn DecisionTreeClassifier on the 8x8 digits (1797 samples, 64 features, 10 classes). "
            "max_features: sqrt = 8, half = 32, all = 64 features per split. The 3 'seeds' are the folds of "
            "StratifiedKFold(3, shuffle=True, random_state=0) (tree random_state = fold index): error on fold i "
            "of the tree fitted on the other two.")
    t0 = time.perf_counter()
    build(name="tree_digits", description=desc, space=TREE_SPACE, seeds=SEEDS, evaluate=evaluate_tree,
          out=out, log_every=108)
    print(f"total wall {time.perf_counter() - t0:.1f}s")


def build_svc(out: str) -> None:
    desc = ("scikit-learn SVC on breast_cancer (569 samples, 30 features, 37% majority class). Pipeline "
            "scaler -> SVC(C, kernel, gamma, max_iter=200000). The 3 'seeds' are the folds of "
            "StratifiedKFold(3, shuffle=True, random_state=0): error on fold i of the model fitted on the "
            "other two. C and gamma are log-spaced in half decades.")
    t0 = time.perf_counter()
    build(name="svc_breast_cancer", description=desc, space=SPACE, seeds=SEEDS, evaluate=evaluate,
          out=out, log_every=121)
    print(f"total wall {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
