"""Checkpoints: the record kinds, the append-only per-rank journal writer, reading and restoring, the
checkpoint directory (lock, meta, backup) and the one definition of a finished search.

``files``, ``records`` and ``finished`` need only the standard library (slurm/finished.py imports them in
any batch shell)."""
