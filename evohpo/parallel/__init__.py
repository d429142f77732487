"""Workers in parallel: transports (MPI, threads), the one worker loop and its collaborators (budget sharing,
migration, progress, stop signals, result gathering, callbacks) and resuming from a checkpoint."""
