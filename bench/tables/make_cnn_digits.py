"""Build the ``cnn_digits`` tables: a small CNN on scikit-learn's 8x8 digits, trained in plain PyTorch.

Two grids (``--table``): ``cnn_digits`` (378 configurations: layers x channels x activation x optimizer x lr,
no dropout) and ``cnn_digits_wide`` (3024: four activations, three optimizers, 32 channels and a dropout
knob added), whose size keeps the best configurations rare enough to tell optimizers apart at 100-240
evaluations. ``--device cuda`` trains on a GPU (the wide table was built that way).

Data: fixed stratified 70/30 train/validation split (random_state=0), pixels scaled to [0, 1].
Network: ``layers`` x [Conv2d(kernel, same padding) -> activation], MaxPool2d(2) -> 4x4, flatten,
Dropout(``dropout``), Linear(-> 10); PyTorch default initialisation. Trained for EPOCHS epochs
with mean cross-entropy on minibatches of BATCH_SIZE drawn from a seeded permutation per epoch.
Value: validation error (1 - accuracy) after the last epoch; a run whose outputs are not finite
scores 0.9 (chance level).

Speed: one training of this tiny net is dominated by per-op overhead on a CPU, so all models that
share an architecture and optimizer (every lr x dropout x seed) are trained *together* as one
grouped-convolution network (groups = models) with hand-written, elementwise SGD/Adam/RMSprop
updates; the loss is the sum of the models' mean losses, so each model's gradient, update, init
(copied from a seeded single-model ``make_model``) and batch order are exactly its own — the batch
is numerically the same as training the models one by one, apart from the dropout masks (drawn
from one shared stream) and float summation order. ``--check`` verifies this against the plain
one-model loop (``train_single``).

    .venv/bin/python bench/tables/make_cnn_digits.py            # build bench/tables/cnn_digits.json
    python bench/tables/make_cnn_digits.py --table cnn_digits_wide --device cuda
    .venv/bin/python bench/tables/make_cnn_digits.py --time     # time a few groups, build nothing
    .venv/bin/python bench/tables/make_cnn_digits.py --check    # batched vs one-by-one training
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _build import build, grid  # noqa: E402

EPOCHS = 6
BATCH_SIZE = 64
KERNEL = 3
SEEDS = 3

SPACE: dict[str, list] = {
    "layers": [1, 2, 3],
    "channels": [4, 8, 16],
    "activation": ["relu", "tanh", "sigmoid"],
    "optimizer": ["sgd", "adam"],
    "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
}
WIDE_SPACE: dict[str, list] = {
    "layers": [1, 2, 3],
    "channels": [4, 8, 16, 32],
    "activation": ["relu", "tanh", "gelu", "sigmoid"],
    "optimizer": ["sgd", "adam", "rmsprop"],
    "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
    "dropout": [0.0, 0.25, 0.5],
}
TABLES = {"cnn_digits": SPACE, "cnn_digits_wide": WIDE_SPACE}
DROPOUT = 0.0  # where the grid has no dropout knob
# Knobs that fix the network / update rule; the rest (lr, dropout) and the seed are batched.
GROUP_KEYS = ["layers", "channels", "activation", "optimizer"]
BATCHED = ("lr", "dropout")

ACTS = {"relu": torch.relu, "tanh": torch.tanh, "gelu": F.gelu, "sigmoid": torch.sigmoid}
ACT_MODULES = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "gelu": torch.nn.GELU, "sigmoid": torch.nn.Sigmoid}
DIVERGED = 0.9

_DATA = None


def load_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    global _DATA
    if _DATA is None:
        d = load_digits()
        x = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
        xtr, xva, ytr, yva = train_test_split(x, d.target, test_size=0.3, stratify=d.target, random_state=0)
        _DATA = (torch.from_numpy(xtr), torch.from_numpy(ytr).long(),
                 torch.from_numpy(xva), torch.from_numpy(yva).long())
    return _DATA


def make_model(layers: int, channels: int, activation: str, dropout: float = 0.0) -> torch.nn.Sequential:
    mods: list[torch.nn.Module] = []
    cin = 1
    for _ in range(layers):
        mods += [torch.nn.Conv2d(cin, channels, KERNEL, padding=KERNEL // 2), ACT_MODULES[activation]()]
        cin = channels
    mods += [torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(dropout), torch.nn.Linear(cin * 16, 10)]
    return torch.nn.Sequential(*mods)


class Updater:
    """Elementwise SGD(momentum 0.9) / Adam / RMSprop with torch's defaults and a per-row learning rate."""

    def __init__(self, name: str, params: list[torch.Tensor], lrs: list[torch.Tensor]) -> None:
        self.name, self.params, self.lrs, self.t = name, params, lrs, 0
        self.s1 = [torch.zeros_like(p) for p in params]
        self.s2 = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        for p, lr, a, b in zip(self.params, self.lrs, self.s1, self.s2):
            g = p.grad
            if self.name == "sgd":  # torch.optim.SGD(momentum=0.9): buf = 0.9 buf + g (buf = g at step 1)
                a.mul_(0.9).add_(g)
                p.sub_(lr * a)
            elif self.name == "adam":  # betas (0.9, 0.999), eps 1e-8
                a.mul_(0.9).add_(g, alpha=0.1)
                b.mul_(0.999).addcmul_(g, g, value=0.001)
                denom = (b / (1 - 0.999 ** self.t)).sqrt_().add_(1e-8)
                p.sub_(lr / (1 - 0.9 ** self.t) * a / denom)
            elif self.name == "rmsprop":  # alpha 0.99, eps 1e-8
                b.mul_(0.99).addcmul_(g, g, value=0.01)
                p.sub_(lr * g / (b.sqrt() + 1e-8))
            else:
                raise ValueError(self.name)
            p.grad = None


def train_group(arch: dict, models: list[dict], device: str = "cpu") -> list[float]:
    """Train len(models) networks of architecture ``arch`` at once; each model dict holds lr, dropout, seed."""
    xtr, ytr, xva, yva = (t.to(device) for t in load_data())
    L, C, act = arch["layers"], arch["channels"], ACTS[arch["activation"]]
    M = len(models)
    # Initial weights: exactly those of a seeded single model.
    singles = []
    for m in models:
        torch.manual_seed(m["seed"])
        singles.append(make_model(L, C, arch["activation"]))
    convs = [[mod for mod in s if isinstance(mod, torch.nn.Conv2d)] for s in singles]
    params, rows = [], []  # rows: how many leading-dim rows each model owns in the stacked tensor
    for i in range(L):
        params.append(torch.cat([cv[i].weight.detach() for cv in convs]).clone())  # (M*C, cin, k, k)
        params.append(torch.cat([cv[i].bias.detach() for cv in convs]).clone())  # (M*C,)
        rows += [C, C]
    lin = [s[-1] for s in singles]
    params.append(torch.stack([ln.weight.detach().t() for ln in lin]).clone())  # (M, C*16, 10)
    params.append(torch.stack([ln.bias.detach() for ln in lin]).clone())  # (M, 10)
    rows += [1, 1]
    params = [p.to(device) for p in params]
    for p in params:
        p.requires_grad_(True)
    lr_model = torch.tensor([m["lr"] for m in models], dtype=torch.float32, device=device)
    lrs = [lr_model.repeat_interleave(r).reshape(-1, *([1] * (p.dim() - 1))) for p, r in zip(params, rows)]
    upd = Updater(arch["optimizer"], params, lrs)
    keep = 1.0 - torch.tensor([m.get("dropout", DROPOUT) for m in models], dtype=torch.float32,
                              device=device).reshape(1, M, 1)
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
    n = len(xtr)
    xs = xtr[:, 0]  # (n, 8, 8)
    for _ in range(EPOCHS):
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (S, n)
        for i in range(0, n, BATCH_SIZE):
            idx = perms[:, i:i + BATCH_SIZE][seed_col].t().to(device)  # (B, M): sample of each model
            logits = forward(xs[idx], True)
            loss = F.cross_entropy(logits.reshape(-1, 10), ytr[idx].reshape(-1), reduction="sum") / idx.shape[0]
            loss.backward()
            upd.step()
    with torch.no_grad():
        out = forward(xva[:, 0].unsqueeze(1).expand(-1, M, -1, -1), False)  # (N, M, 10)
    errs = []
    for j in range(M):
        o = out[:, j]
        errs.append(DIVERGED if not torch.isfinite(o).all() else float((o.argmax(1) != yva).float().mean()))
    return errs


def train_single(params: dict, seed: int) -> float:
    """Reference: one model, torch.nn + torch.optim, the plain loop."""
    xtr, ytr, xva, yva = load_data()
    torch.manual_seed(seed)
    model = make_model(params["layers"], params["channels"], params["activation"], params.get("dropout", DROPOUT))
    opt = {"sgd": lambda p: torch.optim.SGD(p, lr=params["lr"], momentum=0.9),
           "adam": lambda p: torch.optim.Adam(p, lr=params["lr"]),
           "rmsprop": lambda p: torch.optim.RMSprop(p, lr=params["lr"])}[params["optimizer"]](model.parameters())
    gen = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), BATCH_SIZE):
            idx = perm[i:i + BATCH_SIZE]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        o = model(xva)
    return DIVERGED if not torch.isfinite(o).all() else float((o.argmax(1) != yva).float().mean())


def batched_keys(space: dict[str, list]) -> list[str]:
    return [k for k in BATCHED if k in space]


def group_models(space: dict[str, list] = SPACE) -> list[dict]:
    keys = batched_keys(space)
    return [dict(zip(keys, c)) | {"seed": s} for c in itertools.product(*(space[k] for k in keys))
            for s in range(SEEDS)]


class GroupedEvaluator:
    """evaluate(params, seed) for _build.build: trains a whole group on first request, then serves from cache."""

    def __init__(self, space: dict[str, list] = SPACE, device: str = "cpu") -> None:
        self.space, self.keys, self.device = space, batched_keys(space), device
        self.cache: dict[tuple, float] = {}
        self.group_seconds: dict[tuple, float] = {}

    def __call__(self, params: dict, seed: int) -> float:
        gk = tuple(params[k] for k in GROUP_KEYS)
        if gk not in self.group_seconds:
            models = group_models(self.space)
            t0 = time.perf_counter()
            errs = train_group(dict(zip(GROUP_KEYS, gk)), models, self.device)
            self.group_seconds[gk] = time.perf_counter() - t0
            for m, e in zip(models, errs):
                self.cache[gk + tuple(m[k] for k in self.keys) + (m["seed"],)] = e
        return self.cache[gk + tuple(params[k] for k in self.keys) + (seed,)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--time", action="store_true", help="time a few groups and exit")
    ap.add_argument("--check", action="store_true", help="compare batched with one-by-one training and exit")
    ap.add_argument("--table", choices=sorted(TABLES), default="cnn_digits")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda to train the groups on a GPU")
    ap.add_argument("--out", default=None, help="default: bench/tables/<table>.json")
    args = ap.parse_args()
    space = TABLES[args.table]
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{args.table}.json")
    torch.set_num_threads(1)
    if args.check:
        arch = {"layers": 2, "channels": 8, "activation": "tanh", "optimizer": "adam"}
        models = [{"lr": lr, "dropout": 0.0, "seed": s} for lr in (1e-3, 1e-2, 1e-1) for s in (0, 1)]
        arch_sgd = dict(arch, optimizer="sgd", activation="relu")
        arch_rms = dict(arch, optimizer="rmsprop", layers=1)
        for a in (arch, arch_sgd, arch_rms):
            batched = train_group(a, models, args.device)
            single = [train_single(a | m, m["seed"]) for m in models]
            print(a, "batched", np.round(batched, 4).tolist(), "single", np.round(single, 4).tolist(), flush=True)
        return
    if args.time:
        models = group_models(space)
        for arch in ({"layers": 1, "channels": 4, "activation": "relu", "optimizer": "adam"},
                     {"layers": 3, "channels": 16, "activation": "tanh", "optimizer": "sgd"},
                     {"layers": 2, "channels": 8, "activation": "sigmoid", "optimizer": "rmsprop"}):
            t0, c0 = time.perf_counter(), time.process_time()
            errs = train_group(arch, models, args.device)
            print(f"{arch} x {len(models)} models: wall {time.perf_counter() - t0:.2f}s "
                  f"cpu {time.process_time() - c0:.2f}s; errors {np.round(errs[::SEEDS], 3).tolist()}", flush=True)
        n_groups = int(np.prod([len(space[k]) for k in GROUP_KEYS]))
        print(f"grid size {len(list(grid(space)))}, {n_groups} groups of {len(models)} models")
        return
    ev = GroupedEvaluator(space, args.device)
    dropout = "Dropout(dropout)" if "dropout" in space else f"Dropout({DROPOUT})"
    where = f"on {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else "on the CPU"
    # Walk the grid group by group (each group trained once, all its configurations then cached).
    desc = (f"Small CNN on sklearn 8x8 digits (1797 images, stratified 70/30 train/val split, random_state=0, "
            f"pixels/16). layers x [Conv2d {KERNEL}x{KERNEL} same padding -> activation], MaxPool2d(2), "
            f"{dropout}, Linear(10); {EPOCHS} epochs, batch size {BATCH_SIZE}, cross-entropy. "
            f"sgd = SGD with momentum 0.9; adam, rmsprop with torch defaults. Value: validation error "
            f"(1 - accuracy) after the last epoch; non-finite outputs (divergence) score {DIVERGED}. "
            f"Seeds 0..{SEEDS - 1} set the init and batch order. Models of one architecture+optimizer are "
            f"trained together as one grouped network (see make_cnn_digits.py), so train_seconds is the group's "
            f"wall time divided by its number of trainings. Trained {where}.")
    # train_seconds per row is a per-seed average: here a group's time split over its trainings.
    t_all = time.perf_counter()
    fixed = {"kernel": KERNEL, "batch_size": BATCH_SIZE, "epochs": EPOCHS} | (
        {} if "dropout" in space else {"dropout": DROPOUT})
    per_group = len(group_models(space))
    table = build(name=args.table, description=desc, space=space, seeds=SEEDS, evaluate=ev, out=out,
                  extra={"fixed": fixed}, log_every=per_group // SEEDS,
                  seconds=lambda p: ev.group_seconds[tuple(p[k] for k in GROUP_KEYS)] / per_group)
    print(f"total wall {time.perf_counter() - t_all:.0f}s for {len(ev.group_seconds)} groups trained this run")
    del table


if __name__ == "__main__":
    main()
