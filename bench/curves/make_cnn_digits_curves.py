"""Build ``cnn_digits_curves``: the small CNN of bench/tables/make_cnn_digits.py on scikit-learn's 8x8 digits,
with the validation error recorded after **every epoch** 1..EPOCHS (one step = one epoch).

Same data (fixed stratified 70/30 train/validation split, random_state=0, pixels / 16), network family
(``layers`` x [Conv2d 3x3 same padding -> activation], MaxPool2d(2), Dropout, Linear(10); PyTorch default init),
batch size 64, mean cross-entropy, optimizers (SGD with momentum 0.9, Adam with torch defaults) and seeds (0-2:
init and batch order) as that table. The trainings are batched the same way: every model that shares
(layers, channels, activation, optimizer), i.e. every lr x dropout x seed, is trained as one grouped-convolution
network with make_cnn_digits.py's elementwise updates (its ``Updater``, ``make_model`` init and ``load_data``
are imported, not copied); here the whole group is also evaluated on the validation set after each epoch.
A model whose validation outputs are not finite scores 0.9 from that epoch on.

    .venv/bin/python bench/curves/make_cnn_digits_curves.py           # build bench/curves/cnn_digits_curves.json
    .venv/bin/python bench/curves/make_cnn_digits_curves.py --time    # time one epoch of a few groups, build nothing
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bench/
from tables.make_cnn_digits import ACTS, BATCH_SIZE, KERNEL, Updater, load_data, make_model  # noqa: E402

from curves._curvebuild import DIVERGED, build_curves, grid  # noqa: E402

EPOCHS = 27  # R: 1, 3, 9, 27 are the rungs of successive halving with eta = 3
SEEDS = 3
SPACE: dict[str, list] = {
    "layers": [1, 2],
    "channels": [4, 16],
    "activation": ["relu", "tanh", "sigmoid"],
    "optimizer": ["sgd", "adam"],
    "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "dropout": [0.0, 0.5],
}
GROUP_KEYS = ["layers", "channels", "activation", "optimizer"]
BATCHED = ["lr", "dropout"]


def train_group_curves(arch: dict, models: list[dict], epochs: int = EPOCHS) -> list[list[float]]:
    """Train len(models) networks of architecture ``arch`` at once (each model dict: lr, dropout, seed) and
    return each model's validation error after every epoch (non-finite outputs -> nan, made 0.9 by the caller)."""
    xtr, ytr, xva, yva = load_data()
    L, C, act = arch["layers"], arch["channels"], ACTS[arch["activation"]]
    M = len(models)
    singles = []
    for m in models:  # initial weights: exactly those of a seeded single model
        torch.manual_seed(m["seed"])
        singles.append(make_model(L, C, arch["activation"]))
    convs = [[mod for mod in s if isinstance(mod, torch.nn.Conv2d)] for s in singles]
    params, rows = [], []  # rows: how many leading-dim rows of a stacked tensor one model owns
    for i in range(L):
        params += [torch.cat([cv[i].weight.detach() for cv in convs]).clone(),  # (M*C, cin, k, k)
                   torch.cat([cv[i].bias.detach() for cv in convs]).clone()]  # (M*C,)
        rows += [C, C]
    lin = [s[-1] for s in singles]
    params += [torch.stack([ln.weight.detach().t() for ln in lin]).clone(),  # (M, C*16, 10)
               torch.stack([ln.bias.detach() for ln in lin]).clone()]  # (M, 10)
    rows += [1, 1]
    for p in params:
        p.requires_grad_(True)
    lr_model = torch.tensor([m["lr"] for m in models], dtype=torch.float32)
    lrs = [lr_model.repeat_interleave(r).reshape(-1, *([1] * (p.dim() - 1))) for p, r in zip(params, rows)]
    upd = Updater(arch["optimizer"], params, lrs)
    keep = 1.0 - torch.tensor([m["dropout"] for m in models], dtype=torch.float32).reshape(1, M, 1)
    has_dropout = bool((keep < 1).any())

    def forward(x: torch.Tensor, train: bool) -> torch.Tensor:  # x: (B, M, 8, 8) -> logits (B, M, 10)
        h = x
        for i in range(L):
            h = act(F.conv2d(h, params[2 * i], params[2 * i + 1], padding=KERNEL // 2, groups=M))
        h = F.max_pool2d(h, 2).reshape(x.shape[0], M, C * 16)
        if train and has_dropout:
            h = h * (torch.rand_like(h) < keep) / keep
        return torch.einsum("bmf,mfo->bmo", h, params[-2]) + params[-1]

    seeds = sorted({m["seed"] for m in models})
    seed_col = torch.tensor([seeds.index(m["seed"]) for m in models])
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    torch.manual_seed(12345)  # the shared dropout-mask stream
    n = len(xtr)
    xs = xtr[:, 0]
    xv = xva[:, 0].unsqueeze(1).expand(-1, M, -1, -1)
    curves: list[list[float]] = [[] for _ in range(M)]
    for _ in range(epochs):
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (S, n)
        for i in range(0, n, BATCH_SIZE):
            idx = perms[:, i:i + BATCH_SIZE][seed_col].t()  # (B, M): each model's own samples
            logits = forward(xs[idx], True)
            loss = F.cross_entropy(logits.reshape(-1, 10), ytr[idx].reshape(-1), reduction="sum") / idx.shape[0]
            loss.backward()
            upd.step()
        with torch.no_grad():
            out = forward(xv, False)  # (N, M, 10)
            finite = torch.isfinite(out).all(dim=(0, 2))
            err = (out.argmax(2) != yva[:, None]).float().mean(0)
        for j in range(M):
            curves[j].append(float(err[j]) if bool(finite[j]) else float("nan"))
    return curves


def group_models(space: dict[str, list] = SPACE) -> list[dict]:
    return [dict(zip(BATCHED, c)) | {"seed": s} for c in itertools.product(*(space[k] for k in BATCHED))
            for s in range(SEEDS)]


class GroupedEvaluator:
    """evaluate(params, seed) -> (curve, seconds) for build_curves: trains a whole group on first request."""

    def __init__(self, space: dict[str, list] = SPACE) -> None:
        self.space = space
        self.cache: dict[tuple, list[float]] = {}
        self.seconds: dict[tuple, float] = {}

    def __call__(self, params: dict, seed: int) -> tuple[list[float], float]:
        gk = tuple(params[k] for k in GROUP_KEYS)
        if gk not in self.seconds:
            models = group_models(self.space)
            t0 = time.perf_counter()
            curves = train_group_curves(dict(zip(GROUP_KEYS, gk)), models)
            self.seconds[gk] = (time.perf_counter() - t0) / len(models)  # one training's share of the group
            for m, c in zip(models, curves):
                self.cache[gk + tuple(m[k] for k in BATCHED) + (m["seed"],)] = c
        return self.cache.pop(gk + tuple(params[k] for k in BATCHED) + (seed,)), self.seconds[gk]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time", action="store_true", help="time 1 epoch of a few groups and exit")
    ap.add_argument("--out", default=os.path.join(HERE, "cnn_digits_curves.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    models = group_models()
    if args.time:
        total = 0.0
        for gk in itertools.product(*(SPACE[k] for k in GROUP_KEYS)):
            arch = dict(zip(GROUP_KEYS, gk))
            if arch["activation"] != "relu":
                continue
            t0 = time.perf_counter()
            c = train_group_curves(arch, models, epochs=1)
            dt = time.perf_counter() - t0
            total += dt
            print(f"{arch} x {len(models)} models, 1 epoch: {dt:.2f}s; errors {[round(x[0], 3) for x in c[::6]]}",
                  flush=True)
        n_act = len(SPACE["activation"])
        print(f"grid {len(list(grid(SPACE)))} configurations; estimated build "
              f"{total * n_act * EPOCHS:.0f}s (relu timing x {n_act} activations x {EPOCHS} epochs)")
        return
    ev = GroupedEvaluator()
    order = [dict(zip(GROUP_KEYS, gk)) | dict(zip(BATCHED, b))  # group by group: each group trained once
             for gk in itertools.product(*(SPACE[k] for k in GROUP_KEYS))
             for b in itertools.product(*(SPACE[k] for k in BATCHED))]
    desc = (f"Small CNN on sklearn 8x8 digits (1797 images, stratified 70/30 train/val split, random_state=0, "
            f"pixels/16), as bench/tables/cnn_digits: layers x [Conv2d {KERNEL}x{KERNEL} same padding -> activation], "
            f"MaxPool2d(2), Dropout(dropout), Linear(10); batch size {BATCH_SIZE}, cross-entropy; sgd = SGD with "
            f"momentum 0.9, adam with torch defaults. Curve: validation error (1 - accuracy, 540 images) after each "
            f"epoch 1..{EPOCHS} (one step = one epoch); non-finite outputs score {DIVERGED} from that epoch on. "
            f"Seeds 0..{SEEDS - 1} set the init and batch order. The {len(models)} models of one "
            f"architecture+optimizer are trained together as one grouped network (make_cnn_digits_curves.py), so "
            f"train_seconds (per step) is the group's wall time divided by its trainings and epochs. CPU, 1 thread.")
    t0 = time.perf_counter()
    build_curves(name="cnn_digits_curves", description=desc, space=SPACE, seeds=SEEDS, max_steps=EPOCHS,
                 evaluate=ev, out=args.out, order=order,
                 extra={"step": "epoch", "fixed": {"kernel": KERNEL, "batch_size": BATCH_SIZE, "diverged": DIVERGED}},
                 log_every=len(models) // SEEDS)
    print(f"total wall {time.perf_counter() - t0:.0f}s for {len(ev.seconds)} groups trained this run", flush=True)


if __name__ == "__main__":
    main()
