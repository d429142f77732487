"""Learning-curve tables from real trainings (see README.md): ``from bench.curves import load_curves, names``."""

from .curves import CurveTable, load_curves, names

__all__ = ["CurveTable", "load_curves", "names"]
