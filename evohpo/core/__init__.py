"""The pure core: search space, individuals, an island's population, the evolver, breeding strategies and
migration as functions over populations. Imports neither mpi4py nor torch; runs in a plain for-loop."""
