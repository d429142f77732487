"""Runs run.main(ARGS) with evohpo.optimize replaced by a stand-in; prints what optimize was given as JSON.

    python tests/run_main_probe.py --dataset digits --fresh ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evohpo  # noqa: E402
import run  # noqa: E402

seen: dict[str, Any] = {}


def fake_optimize(objective: Any, space: Any, **kwargs: Any) -> Any:
    """Records the arguments instead of searching."""
    seen.update({k: v for k, v in kwargs.items() if k in ("propagator", "pop_size", "checkpoint", "resume",
                                                          "fingerprint", "generations", "metric")})
    seen["space"] = sorted(space)
    seen["trials"] = None if objective.log_dir is None else str(objective.log_dir)
    return SimpleNamespace(best=None, n_evaluations=0, n_failed=0)


evohpo.optimize = fake_optimize
code = run.main(sys.argv[1:])
print("OPTIMIZE " + json.dumps(seen, sort_keys=True), flush=True)
raise SystemExit(code)
