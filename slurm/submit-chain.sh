#!/usr/bin/env bash
# Submit a chain of N jobs that run one after another (each --dependency=afterany:<previous>), all
# resuming the same checkpoint directory. The alternative to self-requeueing, for sites that forbid
# `scontrol requeue` or limit requeues, or when every allocation should wait in the queue on its own.
#
#   slurm/submit-chain.sh N [SBATCH OPTIONS...] SCRIPT [SCRIPT ARGUMENTS...]
#   slurm/submit-chain.sh 5 slurm/gpu-node.sbatch
#   slurm/submit-chain.sh 3 -J cifar --time=02:00:00 slurm/gpu-node.sbatch run.py --dataset cifar10
#   EVOHPO_FRESH=1 slurm/submit-chain.sh 4 slurm/multi-node.sbatch      # the first job starts afresh
#
# SCRIPT is the first argument that names an existing file starting with "#!"; the arguments before it
# go to sbatch, the ones after it to the script. Prints the job ids, one a line, in order (and a summary
# on stderr).
# Every job gets the same options and so the same checkpoint directory (the default one is
# $SLURM_SUBMIT_DIR/checkpoints/$SLURM_JOB_NAME: keep the same -J; EVOHPO_CHECKPOINT in the environment
# is passed on to every job). The jobs do not requeue themselves (EVOHPO_REQUEUE=0); jobs 2..N start no
# program once the search is finished (EVOHPO_SKIP_IF_FINISHED=1) and end within seconds.
# Environment: EVOHPO_CHAIN_DEPENDENCY (default afterany; afterok stops the chain at the first failed
# or timed-out job), SBATCH (the sbatch program).
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
(($# >= 2)) || usage
n=$1; shift
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "submit-chain.sh: N must be a positive integer, got '$n'" >&2; usage; }
opts=()
is_script() { [[ -f $1 ]] && [[ $(head -c 2 "$1") == "#!" ]]; }
while (($# > 0)) && ! is_script "$1"; do opts+=("$1"); shift; done
(($# > 0)) || { echo "submit-chain.sh: no batch script among the arguments" >&2; usage; }
script=$1; shift
sbatch=${SBATCH:-sbatch}
dep=${EVOHPO_CHAIN_DEPENDENCY:-afterany}

ids=()
prev=""
for ((i = 1; i <= n; i++)); do
  env_opts="ALL,EVOHPO_REQUEUE=${EVOHPO_REQUEUE:-0}"
  dep_opts=()
  if ((i > 1)); then
    env_opts+=",EVOHPO_FRESH=0,EVOHPO_SKIP_IF_FINISHED=1"
    dep_opts=(--dependency="$dep:$prev")
  fi
  out=$("$sbatch" --parsable --export="$env_opts" "${dep_opts[@]}" "${opts[@]}" "$script" "$@") || {
    echo "submit-chain.sh: sbatch failed for job $i of $n (submitted so far: ${ids[*]:-none})" >&2; exit 1; }
  prev=${out%%;*}  # --parsable prints "jobid" or "jobid;cluster"
  ids+=("$prev")
  echo "$prev"
done
echo "submit-chain.sh: $n jobs ($dep): ${ids[*]}; cancel the rest with: scancel ${ids[*]}" >&2
