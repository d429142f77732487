"""Keep CPython's full garbage collections from growing with the archive.

Every evaluated individual is a GC-tracked object and the archive only grows, so a full collection, which
walks every tracked object, pauses each rank for longer the further the search has come (about 1 ms per
1,000 individuals; all ranks of a node pause alike). ``SurvivorFreezer`` collects once every ``every`` new
archive entries and then freezes what survived (``gc.freeze``): later collections skip frozen objects, so a
pause covers only what is new. ``close`` unfreezes them again at the end of the search.

Reference counting still frees frozen objects; only frozen objects that later become unreachable *cycles*
wait for ``close``. The freezer stays off if the process had frozen objects of its own (it must not unfreeze
them) or had automatic collection disabled.
"""

from __future__ import annotations

import gc

FREEZE_EVERY = 1000  # new archive entries between two collect-and-freeze steps


class SurvivorFreezer:
    """Collect-and-freeze every ``every`` (default FREEZE_EVERY) archive entries; ``close`` unfreezes."""

    def __init__(self, every: int | None = None, enabled: bool = True) -> None:
        every = FREEZE_EVERY if every is None else every
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every=}")
        self.every = every
        self.active = enabled and gc.isenabled() and gc.get_freeze_count() == 0
        self._next = every
        self.freezes = 0

    def tick(self, archived: int) -> None:
        """Called with the archive's size; freezes the survivors when it has grown by ``every`` since the last."""
        if not self.active or archived < self._next:
            return
        gc.collect()
        gc.freeze()
        self.freezes += 1
        self._next = archived + self.every

    def close(self) -> None:
        """Give the frozen objects back to the collector."""
        if self.active:
            self.active = False
            gc.unfreeze()
