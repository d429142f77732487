"""Hyperparameter optimization of neural networks: the Lightning CNN and its objective, the public Lightning callback
for a user's own Trainer, TensorBoard, datasets and devices. Imports torch only inside the functions that train.

Public names (loaded on first use: ``EvohpoCallback`` imports Lightning, the others import nothing heavy):

- :class:`EvohpoCallback` (``evohpo.hpo.callback``): per-epoch reports, pruning, evohpo's signals and a
  SLURM/MPI-safe environment for a user's own ``lightning.Trainer``;
- :func:`best_model_path`, :func:`load_model` (``evohpo.hpo.objective``): the weights the built-in objective kept;
- :func:`process_group` (``evohpo.hpo.distributed``): torch.distributed over the ranks of a worker of
  ``optimize(..., ranks_per_worker=k)``, set up once per worker and reused.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {  # public name -> the module that defines it
    "EvohpoCallback": ".callback",
    "best_model_path": ".objective", "load_model": ".objective",
    "process_group": ".distributed",
}
__all__ = ["EvohpoCallback", "best_model_path", "load_model", "process_group"]

if TYPE_CHECKING:  # pragma: no cover
    from .callback import EvohpoCallback
    from .distributed import process_group
    from .objective import best_model_path, load_model


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evohpo.hpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
