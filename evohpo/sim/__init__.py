"""A discrete-event simulation of evohpo at scale: the real ``optimize`` on thousands of simulated workers.

``simulate(workers, islands, ...)`` runs the worker loop, the evolver and the termination protocol unchanged over a
``SimTransport``: evaluations take virtual time (``Durations``), messages cost what a ``CostModel`` measured on
MPI says, and the optimizer's own CPU time is measured on the real code. ``python -m evohpo.sim`` runs one from the
command line. Needs the ``greenlet`` package (``pip install 'evohpo[sim]'``).
"""

from .costs import CostModel
from .durations import Durations
from .engine import Engine, SimulationError
from .simulate import SimReport, simulate
from .transport import SimTransport

__all__ = ["CostModel", "Durations", "Engine", "SimReport", "SimTransport", "SimulationError", "simulate"]
