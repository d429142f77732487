"""Ask/tell in a plain loop: no MPI, no torch. You own the loop; evohpo breeds the candidates.

    python tutorials/ask_tell.py
"""

from evohpo import Evolver
from evohpo.testing.functions import get

problem = get("rastrigin", dim=4)  # known minimum 0 at the origin
evolver = Evolver(problem.space, pop_size=16, seed=0)

for step in range(1, 2001):
    params = evolver.ask()  # never a configuration asked before
    evolver.tell(params, problem.loss(params))  # a NaN or an exception's text would make it "failed"
    if step % 500 == 0:
        best = evolver.best()[0]
        print(f"after {step:4d} evaluations: best loss {best.loss:.4f}")

best = evolver.best()[0]
print("best:", {k: round(v, 4) for k, v in best.params.items()}, f"loss {best.loss:.4f}")
