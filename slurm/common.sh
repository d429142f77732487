# shellcheck shell=bash
# slurm/common.sh — sourced by slurm/*.sbatch; not a program of its own.
#
# sbatch runs a *copy* of the batch script from its spool directory, so the scripts find this file (and
# slurm/finished.py, and a relative program path such as run.py) through EVOHPO_ROOT, the repository root:
# by default the directory sbatch was called from ($SLURM_SUBMIT_DIR).
#
# What one allocation does (evohpo_main PROGRAM [ARGS...]):
#   1. launch `PYTHON -m mpi4py PROGRAM ARGS --checkpoint DIR` on every task (srun, or mpiexec), in the
#      background, and forward a SIGUSR1 that reaches this batch shell (--signal=B:USR1@N) to the launcher,
#      which passes it on to every rank: evohpo then starts no new evaluation, gives the running one its
#      grace period, flushes the journals and returns, so the program exits 0;
#   2. ask slurm/finished.py whether the search in DIR is finished;
#   3. finished: exit 0. Not finished, the program exited 0 and this allocation finished at least one
#      evaluation: `scontrol requeue $SLURM_JOB_ID` (the same job id runs again and resumes DIR), unless
#      EVOHPO_REQUEUE=0 (submit-chain.sh sets that: the next job of the chain resumes instead).
#   The program failed (exit code != 0): no requeue; the job ends with that exit code.
#
# Settings (environment variables; sbatch passes the submitting shell's environment to the job):
#   EVOHPO_ROOT          repository root (default $SLURM_SUBMIT_DIR)
#   EVOHPO_CHECKPOINT    checkpoint directory, on a file system every node sees
#                        (default $SLURM_SUBMIT_DIR/checkpoints/$SLURM_JOB_NAME)
#   EVOHPO_LAUNCHER      srun (default) | mpiexec
#   EVOHPO_SRUN_ARGS     extra srun options, e.g. "--mpi=pmix --cpu-bind=cores"
#   MPIEXEC, EVOHPO_MPIEXEC_ARGS   mpiexec program (default mpiexec) and extra options
#   PYTHON               the interpreter with evohpo and mpi4py (default: python3 on PATH)
#   EVOHPO_VENV          a virtual environment to activate first (default $EVOHPO_ROOT/.venv if it exists)
#   EVOHPO_REQUEUE       1 (default): requeue an unfinished search; 0: never
#   EVOHPO_MAX_RESTARTS  stop requeueing after this many restarts (default 50)
#   EVOHPO_FRESH         1: start a new search in DIR on the first run (pass --fresh; old journals go to a
#                        backup folder); never on a requeued run or on a later job of a chain
#   EVOHPO_SKIP_IF_FINISHED  1: do not launch when DIR already holds a finished search (later chain jobs)
#   EVOHPO_ACCEPT        a 'done' reason prefix that also counts as finished (e.g. "time limit")
#   EVOHPO_RANKS_PER_WORKER  ranks per worker (run.py --ranks-per-worker; ddp-node.sbatch sets it): journals to
#                        wait for before a SIGUSR1 is passed on = SLURM_NTASKS / this

evohpo_log() { printf '[evohpo-slurm %s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*"; }

evohpo_die() { evohpo_log "ERROR: $*" >&2; exit 2; }

# Settings, environment, and one line that says which run of which job this is.
evohpo_init() {
  [[ -n ${SLURM_JOB_ID:-} ]] || evohpo_die "not inside a SLURM job: submit this script with sbatch"
  EVOHPO_ROOT=${EVOHPO_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
  EVOHPO_CHECKPOINT=${EVOHPO_CHECKPOINT:-${SLURM_SUBMIT_DIR:-$PWD}/checkpoints/${SLURM_JOB_NAME:-evohpo}}
  [[ $EVOHPO_CHECKPOINT == /* ]] || EVOHPO_CHECKPOINT=$PWD/$EVOHPO_CHECKPOINT
  EVOHPO_LAUNCHER=${EVOHPO_LAUNCHER:-srun}
  EVOHPO_REQUEUE=${EVOHPO_REQUEUE:-1}
  EVOHPO_MAX_RESTARTS=${EVOHPO_MAX_RESTARTS:-50}
  EVOHPO_RESTART=${SLURM_RESTART_COUNT:-0}
  local venv=${EVOHPO_VENV:-$EVOHPO_ROOT/.venv}
  if [[ -z ${PYTHON:-} && -f $venv/bin/activate ]]; then
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
  fi
  PYTHON=${PYTHON:-python3}
  # One torch/BLAS thread pool per rank sized to its CPUs (evohpo.devices also sets torch's own count).
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
  # Slurm 22.05 to 23.02: srun does not inherit sbatch's --cpus-per-task unless told so.
  [[ -n ${SLURM_CPUS_PER_TASK:-} ]] && export SRUN_CPUS_PER_TASK=${SRUN_CPUS_PER_TASK:-$SLURM_CPUS_PER_TASK}
  export PYTHONUNBUFFERED=1
  evohpo_log "job ${SLURM_JOB_ID} (${SLURM_JOB_NAME:-}) run $((EVOHPO_RESTART + 1))" \
    "SLURM_RESTART_COUNT=${EVOHPO_RESTART} nodes=${SLURM_JOB_NUM_NODES:-1} (${SLURM_JOB_NODELIST:-?})" \
    "tasks=${SLURM_NTASKS:-?} launcher=${EVOHPO_LAUNCHER}" \
    "checkpoint=${EVOHPO_CHECKPOINT} python=$(command -v "$PYTHON" || echo "$PYTHON")"
}

# finished.py on the checkpoint directory; prints its line, returns its exit code (0/1/2).
evohpo_finished() {
  local extra=()
  [[ -n ${EVOHPO_ACCEPT:-} ]] && extra=(--accept "$EVOHPO_ACCEPT")
  "$PYTHON" "$EVOHPO_ROOT/slurm/finished.py" "${extra[@]}" "$@" "$EVOHPO_CHECKPOINT"
}

# Whether every worker of this run has written to its journal since the launch: then every rank is inside
# evohpo.optimize and handles SIGUSR1 (before that, Python's default action for SIGUSR1 ends the process).
# With EVOHPO_RANKS_PER_WORKER=k (ddp-node.sbatch) only the SLURM_NTASKS/k workers' roots write journals, after
# the split that every rank makes inside optimize.
_evohpo_ranks_ready() {
  local r f
  for ((r = 0; r < ${SLURM_NTASKS:-1} / ${EVOHPO_RANKS_PER_WORKER:-1}; r++)); do
    printf -v f '%s/journal-r%04d.jsonl' "$EVOHPO_CHECKPOINT" "$r"
    [[ $f -nt $_EVOHPO_MARK ]] || return 1
  done
}

# The USR1 trap: pass the signal on now, or, when it came before the ranks were up (an allocation
# shorter than the signal's lead time plus 30 s), as soon as they are (at most EVOHPO_SIGNAL_WAIT s).
_evohpo_forward() {
  local child=$1
  if _evohpo_ranks_ready; then
    evohpo_log "batch shell got SIGUSR1: passing it on to the ranks"
    kill -USR1 "$child" 2>/dev/null
    return
  fi
  local wait_s=${EVOHPO_SIGNAL_WAIT:-120}
  evohpo_log "batch shell got SIGUSR1 before every rank is up: passing it on when they are (at most ${wait_s} s)"
  (
    trap - USR1
    end=$((SECONDS + wait_s))
    while ((SECONDS < end)) && ! _evohpo_ranks_ready; do sleep 1; done
    evohpo_log "passing SIGUSR1 on to the ranks"
    kill -USR1 "$child" 2>/dev/null
  ) &
  _EVOHPO_DELAYED=$!
}

# Run "$@" in the background; a SIGUSR1 to this shell is passed on to it. Sets EVOHPO_RC.
_evohpo_run_forwarding() {
  # the mark lives beside the journals so that both get their times from the same clock (an NFS server's)
  mkdir -p "$EVOHPO_CHECKPOINT" || evohpo_die "cannot create the checkpoint directory $EVOHPO_CHECKPOINT"
  _EVOHPO_MARK=$EVOHPO_CHECKPOINT/.launched-${SLURM_JOB_ID}
  touch "$_EVOHPO_MARK" || evohpo_die "cannot write to $EVOHPO_CHECKPOINT"
  _EVOHPO_DELAYED=""
  sleep 1  # journals written from now on are newer than the mark, also where mtimes have whole seconds
  "$@" </dev/null &
  local child=$!
  # shellcheck disable=SC2064
  trap "_evohpo_forward $child" USR1
  while :; do
    wait "$child"
    EVOHPO_RC=$?
    kill -0 "$child" 2>/dev/null || break  # wait returned because the child ended, not for a signal
  done
  trap - USR1
  [[ -n $_EVOHPO_DELAYED ]] && kill "$_EVOHPO_DELAYED" 2>/dev/null
  rm -f "$_EVOHPO_MARK"
}

# One allocation: launch PROGRAM on every task, then finish, requeue or fail (see the header).
evohpo_main() {
  (($# >= 1)) || evohpo_die "evohpo_main needs a program"
  local program=$1; shift
  [[ $program != /* && ! -e $program && -e $EVOHPO_ROOT/$program ]] && program=$EVOHPO_ROOT/$program
  [[ -e $program ]] || evohpo_die "program $program not found (submit from the repository root or set EVOHPO_ROOT)"
  [[ -f $EVOHPO_ROOT/slurm/finished.py ]] || evohpo_die "$EVOHPO_ROOT/slurm/finished.py not found: set EVOHPO_ROOT"

  local before status
  before=$(evohpo_finished --count 2>/dev/null) || true
  before=${before:-0}
  if [[ ${EVOHPO_SKIP_IF_FINISHED:-0} == 1 ]] && status=$(evohpo_finished); then
    evohpo_log "nothing to do: $status"
    exit 0
  fi

  local args=("$@" --checkpoint "$EVOHPO_CHECKPOINT")
  if [[ ${EVOHPO_FRESH:-0} == 1 && $EVOHPO_RESTART == 0 ]]; then
    args+=(--fresh)
    evohpo_log "EVOHPO_FRESH=1: starting afresh (old journals are moved to a backup folder)"
  fi
  local launch
  case $EVOHPO_LAUNCHER in
    # shellcheck disable=SC2206
    srun) launch=(srun --kill-on-bad-exit=1 ${EVOHPO_SRUN_ARGS:-}) ;;
    # shellcheck disable=SC2206
    mpiexec|mpirun) launch=("${MPIEXEC:-mpiexec}" -n "${SLURM_NTASKS:-1}" ${EVOHPO_MPIEXEC_ARGS:-}) ;;
    *) evohpo_die "EVOHPO_LAUNCHER=$EVOHPO_LAUNCHER must be srun or mpiexec" ;;
  esac
  local cmd=("${launch[@]}" "$PYTHON" -m mpi4py "$program" "${args[@]}")
  evohpo_log "launching: ${cmd[*]} (finished evaluations so far: $before)"
  _evohpo_run_forwarding "${cmd[@]}"
  local rc=$EVOHPO_RC
  evohpo_log "program exited with code $rc"
  if ((rc != 0)); then
    evohpo_log "the program failed: not requeued (the journals in $EVOHPO_CHECKPOINT keep what finished)"
    exit "$rc"
  fi

  local frc after
  status=$(evohpo_finished); frc=$?
  after=$(evohpo_finished --count 2>/dev/null) || true
  after=${after:-0}
  evohpo_log "$status"
  case $frc in
    0) evohpo_log "search finished"; exit 0 ;;
    1) ;;
    *) evohpo_log "cannot tell whether the search finished (does the program write journals to" \
         "--checkpoint?): not requeued"
       exit 0 ;;
  esac
  if [[ $EVOHPO_REQUEUE != 1 ]]; then
    evohpo_log "search not finished; EVOHPO_REQUEUE=$EVOHPO_REQUEUE: not requeued (a later job resumes it)"
    exit 0
  fi
  if ((after <= before)); then
    evohpo_log "search not finished, but no evaluation finished in this allocation ($before before, $after after):" \
      "not requeued, it would not get further (raise --time, or shorten an evaluation)"
    exit 1
  fi
  if ((EVOHPO_RESTART >= EVOHPO_MAX_RESTARTS)); then
    evohpo_log "search not finished, but the job was restarted $EVOHPO_RESTART times" \
      "(EVOHPO_MAX_RESTARTS=$EVOHPO_MAX_RESTARTS): not requeued"
    exit 1
  fi
  evohpo_log "search not finished ($before -> $after evaluations): requeueing job $SLURM_JOB_ID"
  if scontrol requeue "$SLURM_JOB_ID"; then
    exit 0
  fi
  evohpo_log "scontrol requeue failed (is the job requeueable: --requeue, JobRequeue?): resume with" \
    "slurm/submit-chain.sh or by submitting again with the same EVOHPO_CHECKPOINT"
  exit 1
}
