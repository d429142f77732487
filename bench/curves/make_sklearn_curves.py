"""Build the scikit-learn learning-curve tables on the 8x8 digits (1797 samples, 64 features, 10 classes):

- ``mlp_digits_curves``: ``MLPClassifier`` (one hidden layer) trained with ``partial_fit``, one epoch per step,
  R = 40 epochs. Grid: hidden {16, 64, 256} x learning_rate_init {1e-4, 1e-3, 1e-2, 1e-1} x alpha {1e-5, 1e-2, 1}
  x batch_size {32, 128} x solver {sgd, adam} x activation {relu, tanh} (288). Pixels / 16. sgd = scikit-learn's
  SGD with constant rate, momentum 0.9, Nesterov; adam with its defaults.
- ``sgd_digits_curves``: pipeline scaler -> ``SGDClassifier`` (linear, one-vs-rest) trained with ``partial_fit``,
  one pass over the training fold per step, R = 40. Grid: scaler {none, standard, minmax} x loss {hinge, log_loss,
  modified_huber} x alpha {1e-6, 1e-4, 1e-2} x learning_rate {optimal, constant, invscaling} x eta0 {0.001,
  0.01, 0.1} x average {no, yes} (486); penalty l2, power_t 0.5. eta0 is ignored by the optimal schedule (a flat
  dimension there). The scaler is fitted once on the training fold.
- ``hgb_digits_curves``: ``HistGradientBoostingClassifier`` (no early stopping), one step = 3 boosting
  iterations (10 trees each, one per class), R = 30 steps (90 iterations), read from one fit with
  ``staged_decision_function``. Grid: learning_rate {0.01, 0.03, 0.1, 0.3, 1} x max_leaf_nodes {4, 8, 16} x
  max_features {0.2, 0.5, 1} x min_samples_leaf {4, 32} (90). (32 leaves cost ~4x 16 leaves per iteration.)

Seeds: the 3 folds of StratifiedKFold(3, shuffle=True, random_state=0), as bench/tables/make_sklearn.py: the curve
of seed i is the error on fold i (599 samples, steps of 1/599) of the model trained on the other two folds. The
learner's randomness is seeded by the fold index too: for mlp and sgd ``random_state`` is a
``numpy.random.RandomState(i)`` *instance*, so that each ``partial_fit`` epoch draws a fresh shuffle (an int would
re-seed, and repeat the same sample order, on every call); for hgb ``random_state=i`` (feature subsampling).
A training that raises an overflow or whose outputs are not finite scores 0.9 from that step on.
BLAS/OpenMP run on one thread (threadpoolctl), one process per build.

    .venv/bin/python bench/curves/make_sklearn_curves.py --table mlp    # or: --table sgd, --table hgb, --table all
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bench/
from curves._curvebuild import DIVERGED, build_curves  # noqa: E402

SEEDS = 3
X, Y = load_digits(return_X_y=True)
FOLDS = list(StratifiedKFold(SEEDS, shuffle=True, random_state=0).split(X, Y))
CLASSES = np.arange(10)

MLP_EPOCHS = 40
MLP_SPACE: dict[str, list] = {
    "hidden": [16, 64, 256],
    "learning_rate_init": [1e-4, 1e-3, 1e-2, 1e-1],
    "alpha": [1e-5, 1e-2, 1.0],
    "batch_size": [32, 128],
    "solver": ["sgd", "adam"],
    "activation": ["relu", "tanh"],
}

SGD_EPOCHS = 40
SGD_SPACE: dict[str, list] = {
    "scaler": ["none", "standard", "minmax"],
    "loss": ["hinge", "log_loss", "modified_huber"],
    "alpha": [1e-6, 1e-4, 1e-2],
    "learning_rate": ["optimal", "constant", "invscaling"],
    "eta0": [0.001, 0.01, 0.1],
    "average": ["no", "yes"],
}

HGB_STEPS = 30
HGB_K = 3  # boosting iterations per step
HGB_SPACE: dict[str, list] = {
    "learning_rate": [0.01, 0.03, 0.1, 0.3, 1.0],
    "max_leaf_nodes": [4, 8, 16],
    "max_features": [0.2, 0.5, 1.0],
    "min_samples_leaf": [4, 32],
}


def _error(model, x: np.ndarray, y: np.ndarray) -> float:
    """Validation error of a fitted classifier; nan when its scores are not finite."""
    with np.errstate(all="ignore"):
        s = model.predict_proba(x) if isinstance(model, MLPClassifier) else model.decision_function(x)
    if not np.all(np.isfinite(s)):
        return float("nan")
    return float(np.mean(model.classes_[np.argmax(s, axis=1)] != y))


def _epochs(model, xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray, epochs: int) -> list[float]:
    """partial_fit one epoch per step; the validation error after each. A failed or non-finite step ends the curve
    with nan (scored DIVERGED from there on)."""
    curve: list[float] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(epochs):
            try:
                model.partial_fit(xtr, ytr, classes=CLASSES)
            except (ValueError, FloatingPointError, OverflowError):  # e.g. SGD's "Floating-point ... overflow"
                break
            e = _error(model, xva, yva)
            curve.append(e)
            if e != e:
                break
    return curve + [float("nan")] * (epochs - len(curve))


def curve_mlp(params: dict, seed: int) -> tuple[list[float], float]:
    tr, va = FOLDS[seed]
    x = X / 16.0
    t0 = time.perf_counter()
    model = MLPClassifier((params["hidden"],), activation=params["activation"], solver=params["solver"],
                          alpha=params["alpha"], batch_size=params["batch_size"],
                          learning_rate_init=params["learning_rate_init"], random_state=np.random.RandomState(seed))
    curve = _epochs(model, x[tr], Y[tr], x[va], Y[va], MLP_EPOCHS)
    return curve, time.perf_counter() - t0


def curve_sgd(params: dict, seed: int) -> tuple[list[float], float]:
    tr, va = FOLDS[seed]
    t0 = time.perf_counter()
    xtr, xva = X[tr].astype(float), X[va].astype(float)
    scaler = {"none": None, "standard": StandardScaler(), "minmax": MinMaxScaler()}[params["scaler"]]
    if scaler is not None:
        xtr = scaler.fit_transform(xtr)
        xva = scaler.transform(xva)
    model = SGDClassifier(loss=params["loss"], penalty="l2", alpha=params["alpha"],
                          learning_rate=params["learning_rate"], eta0=params["eta0"], power_t=0.5,
                          average=params["average"] == "yes", random_state=np.random.RandomState(seed))
    curve = _epochs(model, xtr, Y[tr], xva, Y[va], SGD_EPOCHS)
    return curve, time.perf_counter() - t0


def curve_hgb(params: dict, seed: int) -> tuple[list[float], float]:
    tr, va = FOLDS[seed]
    t0 = time.perf_counter()
    model = HistGradientBoostingClassifier(
        learning_rate=params["learning_rate"], max_iter=HGB_STEPS * HGB_K, max_leaf_nodes=params["max_leaf_nodes"],
        max_features=params["max_features"], min_samples_leaf=params["min_samples_leaf"], early_stopping=False,
        random_state=seed)
    curve: list[float] = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(X[tr], Y[tr])
        for i, s in enumerate(model.staged_decision_function(X[va])):
            if (i + 1) % HGB_K == 0:
                ok = np.all(np.isfinite(s))
                curve.append(float(np.mean(model.classes_[np.argmax(s, axis=1)] != Y[va])) if ok else float("nan"))
    return curve, time.perf_counter() - t0


FOLD_NOTE = ("The 3 'seeds' are the folds of StratifiedKFold(3, shuffle=True, random_state=0): the curve of seed i is "
             "the error on fold i (599 samples) of the model trained on the other two; the learner's random_state "
             "is seeded by i. ")
TABLES = {
    "mlp": dict(
        name="mlp_digits_curves", space=MLP_SPACE, max_steps=MLP_EPOCHS, evaluate=curve_mlp, log_every=24,
        extra={"step": "epoch", "fixed": {"hidden_layers": 1, "pixels": "x / 16", "diverged": DIVERGED}},
        description=("scikit-learn MLPClassifier (one hidden layer of `hidden` units) on the 8x8 digits (1797 samples, "
                     "pixels / 16), trained with partial_fit, one epoch per step; curve: validation error after each "
                     f"epoch 1..{MLP_EPOCHS}. sgd = constant rate, momentum 0.9, Nesterov; adam with scikit-learn "
                     f"defaults. " + FOLD_NOTE + "random_state = numpy RandomState(i) instance, so each epoch "
                     f"reshuffles. Non-finite outputs score {DIVERGED} from that epoch on.")),
    "sgd": dict(
        name="sgd_digits_curves", space=SGD_SPACE, max_steps=SGD_EPOCHS, evaluate=curve_sgd, log_every=54,
        extra={"step": "epoch", "fixed": {"penalty": "l2", "power_t": 0.5, "diverged": DIVERGED}},
        description=("scikit-learn pipeline scaler -> SGDClassifier(loss, penalty='l2', alpha, learning_rate, eta0, "
                     "power_t=0.5, average) on the 8x8 digits (1797 samples, 64 features, 10 classes, one-vs-rest; "
                     "scaler none = raw pixels 0-16, scaler fitted on the training fold), trained with partial_fit, "
                     f"one pass per step; curve: validation error after each pass 1..{SGD_EPOCHS}. The optimal "
                     "schedule ignores eta0. " + FOLD_NOTE + "random_state = numpy RandomState(i) instance, so "
                     f"each pass reshuffles. An overflow or non-finite scores score {DIVERGED} from that step on.")),
    "hgb": dict(
        name="hgb_digits_curves", space=HGB_SPACE, max_steps=HGB_STEPS, evaluate=curve_hgb, log_every=9,
        extra={"step": f"{HGB_K} boosting iterations", "fixed": {"iterations_per_step": HGB_K,
                                                                 "max_iter": HGB_STEPS * HGB_K, "diverged": DIVERGED}},
        description=("scikit-learn HistGradientBoostingClassifier(learning_rate, max_leaf_nodes, max_features, "
                     f"min_samples_leaf, max_iter={HGB_STEPS * HGB_K}, early_stopping=False) on the 8x8 digits (1797 "
                     f"samples, raw pixels); one step = {HGB_K} boosting iterations (10 trees each); curve: "
                     f"validation error after {HGB_K}, {2 * HGB_K}, ..., {HGB_STEPS * HGB_K} iterations, read from "
                     "one fit with staged_decision_function. " + FOLD_NOTE + f"Non-finite scores score {DIVERGED}.")),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", choices=[*TABLES, "all"], default="all")
    args = ap.parse_args()
    for t in TABLES if args.table == "all" else [args.table]:
        spec = TABLES[t]
        t0 = time.perf_counter()
        with threadpool_limits(1):
            build_curves(seeds=SEEDS, out=os.path.join(HERE, spec["name"] + ".json"), **spec)
        print(f"{spec['name']}: total wall {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
