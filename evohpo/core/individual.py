"""One evaluated configuration: data only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

OK, FAILED, PRUNED, INTERRUPTED = "ok", "failed", "pruned", "interrupted"
STATUSES = (OK, FAILED, PRUNED, INTERRUPTED)


@dataclass(frozen=True)
class Individual:
    """A configuration with its loss and where, when and by whom it was evaluated."""

    id: str
    params: dict[str, Any] = field(compare=False)
    loss: float = math.inf
    status: str = OK
    island: int = 0
    rank: int = 0
    generation: int = 0
    start: float = 0.0
    end: float = 0.0
    error: str | None = None
    step: int | None = None  # the highest step it reported (``evohpo.report``), None when it reported none

    @property
    def ok(self) -> bool:
        """A training that ran to its end with a finite loss."""
        return self.status == OK and math.isfinite(self.loss)

    @property
    def breeds(self) -> bool:
        """Whether it may be a parent: ok, or pruned with a finite last value (ranked below every ok one)."""
        return (self.status == OK or self.status == PRUNED) and math.isfinite(self.loss)

    def moved(self, island: int) -> Individual:
        """The same individual living on another island."""
        return replace(self, island=island)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (a non-finite loss becomes None)."""
        return {"id": self.id, "params": dict(self.params), "loss": self.loss if math.isfinite(self.loss) else None,
                "status": self.status, "island": self.island, "rank": self.rank, "generation": self.generation,
                "start": self.start, "end": self.end, "error": self.error, "step": self.step}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Individual:
        loss = d.get("loss")
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        fields["loss"] = math.inf if loss is None else float(loss)
        return cls(**fields)
