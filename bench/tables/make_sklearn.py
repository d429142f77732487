"""Build scikit-learn tables: ``svc_breast_cancer`` (SVC), ``tree_digits`` (decision tree),
``knn_digits`` (scaler -> PCA -> k-nearest neighbours) and ``sgd_digits`` (scaler -> linear SGD).

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

knn_digits: pipeline scaler -> PCA -> KNeighborsClassifier on the 8x8 digits, 6 parameters, 3240
configurations: scaler {none, standard, minmax} x PCA n_components {6, 8, 12, 16, 20, 24, 32, 40, 48}
x whiten {no, yes} x metric {euclidean, manhattan, cosine} x weights {uniform, distance} x
n_neighbors {1, 2, 3, 4, 6, 8, 12, 16, 24, 32}. PCA runs with svd_solver="full"; 64 components are
left out because the digits have 3-5 constant pixels per training fold, so whitening all 64 would
divide by a variance of ~1e-30 (ill-defined). Landscape: the good region is a small corner (no
whitening, scaler none/minmax, euclidean or manhattan, 24-48 components, 1-6 neighbours, distance
weights preferred): only 1% of the configurations lie within 0.002 of the best (2 tie at the best).
Interactions: whitening wants fewer components (best at 24: it amplifies the noisy trailing ones)
while unwhitened data wants 40-48; cosine is the one metric that prefers whitened data; the standard
scaler (which inflates the nearly constant border pixels) is worse everywhere, most at few components
(best 0.110 vs 0.060 at 6); uniform votes are poor at even k (k = 2 ties go to the smaller label).
Seeds: the 3 folds of a StratifiedKFold(3, shuffle=True, random_state=0). The build runs BLAS on one
thread (threadpoolctl).

sgd_digits: pipeline scaler -> SGDClassifier (linear, one-vs-rest) on the 8x8 digits, 6 parameters, 3510
configurations: scaler {none, standard, minmax} x loss {hinge, log_loss, modified_huber, squared_hinge,
perceptron} x penalty {l2, l1, elasticnet (l1_ratio 0.5)} x alpha = 10^[-7, -1] in half decades (13) x
learning_rate {optimal, constant, invscaling} (eta0 0.01, power_t 0.5) x average {no, yes}. max_iter=20,
tol=1e-3 (~0.1 s a fit; ConvergenceWarnings silenced), SGD random_state = fold index; a fit that
overflows would score 0.9 (none does). Seeds: the 3 folds of StratifiedKFold(3, shuffle=True,
random_state=0). Landscape: a broad, flat shelf near 3.5% error, thin in value: 1.7% of the configurations
lie within 0.002 of the best, the seed noise (0.010) dwarfs the gaps at the top, and random search at 100
lookups hits the best in ~5% of runs. Interactions: invscaling suits raw pixels but decays too fast for
minmax-scaled inputs; averaging helps the optimal and constant schedules but hurts invscaling; averaged
l1/elasticnet fits with alpha >= 0.003 often score worse than chance. (With the adaptive schedule instead of
invscaling the top was wider; at max_iter=10 adaptive mostly equals constant.) The build runs the fits in
``--jobs`` worker processes (default 2, BLAS on one thread each), ~9 minutes on 2 cores.

    .venv/bin/python bench/tables/make_sklearn.py                # build all four tables
    .venv/bin/python bench/tables/make_sklearn.py --table svc    # or: --table tree, --table knn, --table sgd
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _build import build, grid, key, read_partial  # noqa: E402

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


def _scaler(name: str) -> list:
    """The pipeline's scaling step: [] for "none", else a StandardScaler or a MinMaxScaler."""
    return {"none": [], "standard": [StandardScaler()], "minmax": [MinMaxScaler()]}[name]


def evaluate(params: dict, seed: int) -> float:
    tr, va = FOLDS[seed]
    model = make_pipeline(*_scaler(params["scaler"]),
                          SVC(C=params["C"], kernel=params["kernel"], gamma=params["gamma"], max_iter=MAX_ITER))
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


KNN_SPACE: dict[str, list] = {
    "scaler": ["none", "standard", "minmax"],
    "pca": [6, 8, 12, 16, 20, 24, 32, 40, 48],
    "whiten": ["no", "yes"],
    "metric": ["euclidean", "manhattan", "cosine"],
    "weights": ["uniform", "distance"],
    "n_neighbors": [1, 2, 3, 4, 6, 8, 12, 16, 24, 32],
}


def evaluate_knn(params: dict, seed: int) -> float:
    tr, va = DFOLDS[seed]
    steps = _scaler(params["scaler"])
    steps.append(PCA(params["pca"], whiten=params["whiten"] == "yes", svd_solver="full"))
    steps.append(KNeighborsClassifier(params["n_neighbors"], weights=params["weights"], metric=params["metric"],
                                      algorithm="brute"))
    model = make_pipeline(*steps)
    model.fit(XD[tr], YD[tr])
    return float(np.mean(model.predict(XD[va]) != YD[va]))


SGD_SPACE: dict[str, list] = {
    "scaler": ["none", "standard", "minmax"],
    "loss": ["hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron"],
    "penalty": ["l2", "l1", "elasticnet"],
    "alpha": _log_levels(-7, -1),
    "learning_rate": ["optimal", "constant", "invscaling"],
    "average": ["no", "yes"],
}
SGD_ETA0 = 0.01  # step of the constant schedule, initial step of invscaling (eta0 / t^0.5); optimal ignores it
SGD_MAX_ITER = 20
SGD_TOL = 1e-3
DIVERGED = 0.9  # error of a fit that overflowed (chance level on 10 balanced classes)


def fit_sgd(params: dict, seed: int) -> float:
    tr, va = DFOLDS[seed]
    steps = _scaler(params["scaler"])
    steps.append(SGDClassifier(loss=params["loss"], penalty=params["penalty"], alpha=params["alpha"], l1_ratio=0.5,
                               learning_rate=params["learning_rate"], eta0=SGD_ETA0, power_t=0.5,
                               average=params["average"] == "yes", max_iter=SGD_MAX_ITER, tol=SGD_TOL,
                               random_state=seed))
    model = make_pipeline(*steps)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            model.fit(XD[tr], YD[tr])
        except ValueError as e:  # "Floating-point under-/overflow occurred at epoch #n"
            if "overflow" not in str(e):
                raise
            return DIVERGED
        pred = model.predict(XD[va])
    return float(np.mean(pred != YD[va]))


def _sgd_config(params: dict) -> tuple[dict, list[float], float]:
    """All seeds of one configuration (runs in a worker process): (params, errors, seconds per seed)."""
    t0 = time.perf_counter()
    errs = [fit_sgd(params, s) for s in range(SEEDS)]
    return params, errs, (time.perf_counter() - t0) / SEEDS


def _one_blas_thread() -> None:
    threadpool_limits(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", choices=["svc", "tree", "knn", "sgd", "all"], default="all")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the sgd table (default 2)")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    if args.table in ("svc", "all"):
        build_svc(os.path.join(here, "svc_breast_cancer.json"))
    if args.table in ("tree", "all"):
        build_tree(os.path.join(here, "tree_digits.json"))
    if args.table in ("knn", "all"):
        build_knn(os.path.join(here, "knn_digits.json"))
    if args.table in ("sgd", "all"):
        build_sgd(os.path.join(here, "sgd_digits.json"), args.jobs)


def build_sgd(out: str, jobs: int = 2) -> None:
    """The sgd_digits table, fitted by ``jobs`` worker processes (one BLAS thread each). Workers fit the
    configurations not yet in the partial file, in grid order; ``build`` consumes them in that same order,
    so resuming and the output are as for the sequential builders."""
    desc = ("scikit-learn pipeline scaler -> SGDClassifier(loss, penalty, alpha, l1_ratio=0.5, learning_rate, "
            f"eta0={SGD_ETA0}, power_t=0.5, average, max_iter={SGD_MAX_ITER}, tol={SGD_TOL}, "
            "random_state=fold index) on the 8x8 digits (1797 samples, 64 features, 10 classes, one-vs-rest); "
            "scaler none = raw pixels 0-16. "
            f"A fit that overflows scores {DIVERGED}. The 3 'seeds' are the folds of StratifiedKFold(3, "
            "shuffle=True, random_state=0): error on fold i of the pipeline fitted on the other two.")
    names = list(SGD_SPACE)
    done = read_partial(out, names)
    todo = [p for p in grid(SGD_SPACE) if key(p, names) not in done]
    results: dict[str, tuple[list[float], float]] = {}
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_one_blas_thread) as pool:
        stream = pool.imap(_sgd_config, todo, chunksize=4)

        def evaluate(params: dict, seed: int) -> float:
            k = key(params, names)
            if k not in results:
                got, errs, secs = next(stream)
                if key(got, names) != k:
                    raise RuntimeError(f"worker order mismatch: {got} != {params}")
                results[k] = (errs, secs)
            return results[k][0][seed]

        build(name="sgd_digits", description=desc, space=SGD_SPACE, seeds=SEEDS, evaluate=evaluate, out=out,
              extra={"fixed": {"l1_ratio": 0.5, "eta0": SGD_ETA0, "power_t": 0.5, "max_iter": SGD_MAX_ITER,
                               "tol": SGD_TOL, "diverged": DIVERGED}},
              log_every=180, seconds=lambda p: results[key(p, names)][1])
    print(f"total wall {time.perf_counter() - t0:.1f}s")


def build_knn(out: str) -> None:
    desc = ("scikit-learn pipeline scaler -> PCA(n_components=pca, whiten, svd_solver='full') -> "
            "KNeighborsClassifier(n_neighbors, weights, metric, algorithm='brute') on the 8x8 digits (1797 samples, "
            "64 features, 10 classes); scaler none = no scaling. The 3 'seeds' are the folds of "
            "StratifiedKFold(3, shuffle=True, random_state=0): error on fold i of the pipeline fitted on the "
            "other two.")
    t0 = time.perf_counter()
    with threadpool_limits(1):
        build(name="knn_digits", description=desc, space=KNN_SPACE, seeds=SEEDS, evaluate=evaluate_knn,
              out=out, log_every=180)
    print(f"total wall {time.perf_counter() - t0:.1f}s")


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
