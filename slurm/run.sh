#!/usr/bin/env bash
# One rank of an hpcinfer experiment, as started by srun (slurm/submit.sbatch, slurm/serve.sbatch): sets up this
# rank's environment and execs `hpcinfer run CONFIG [--set k=v]...` (HPCINFER_COMMAND=serve: `hpcinfer serve`). hpcinfer itself reads SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and
# SLURM_JOB_ID to know its rank, world size, local rank and job.
#
# Tested on the two-node cluster of slurm/cluster.sh (tests/slurm/test_slurm_cluster.sh), gloo and mpi (pmix).
#
# Environment (all optional):
#   HPCINFER_BIN   the binary (default build/bin/hpcinfer)
#   HPCINFER_COMMAND  run (default) | serve
#   RENDEZVOUS     how the ranks find each other (world.rendezvous):
#                    unset        a file store in the run directory (which every node must see), one per job step:
#                                 file://$HPCINFER_RUN_DIR/.rendezvous/<job>.<step>
#                                 (HPCINFER_RUN_DIR default: $SLURM_SUBMIT_DIR/results)
#                    tcp          tcp://<first node of the job>:<20000 + job id % 20000>: no shared filesystem needed
#                    config       keep what the YAML (or a --set) says
#                    file://DIR or tcp://HOST:PORT   used as given
#   PROFILER       none (default) | nsys (nsys profile, one report per rank) | perf (perf record -g, one file per rank);
#                  output in $HPCINFER_RUN_DIR/profile/ (default ./profile/). The profiler must be on the nodes' PATH.
#   OMP_NUM_THREADS  default: SLURM_CPUS_PER_TASK, so `threads: 0` uses this task's share of the cores
set -euo pipefail

CONFIG=${1:?usage: slurm/run.sh CONFIG [--set k=v]...}
shift
BIN=${HPCINFER_BIN:-build/bin/hpcinfer}
CMD=${HPCINFER_COMMAND:-run}
case "$CMD" in run | serve) ;; *) echo "run.sh: HPCINFER_COMMAND must be run or serve (got '$CMD')" >&2; exit 2 ;; esac
RANK=${SLURM_PROCID:-0}
JOB=${SLURM_JOB_ID:-local$$}
STEP=${SLURM_STEP_ID:-0}

if [ -n "${SLURM_CPUS_PER_TASK:-}" ] && [ -z "${OMP_NUM_THREADS:-}" ]; then
  export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK
fi

sets=()
case "${RENDEZVOUS:-}" in
  "")
    # Fresh per job step: a store directory is never reused (stale keys from an earlier step would mislead).
    rdv=${HPCINFER_RUN_DIR:-${SLURM_SUBMIT_DIR:-$PWD}/results}
    case "$rdv" in /*) ;; *) rdv=$PWD/$rdv ;; esac
    sets+=(--set "world.rendezvous=file://$rdv/.rendezvous/$JOB.$STEP") ;;
  tcp)
    host=$(scontrol show hostnames "${SLURM_JOB_NODELIST:-localhost}" 2>/dev/null | head -n1 || true)
    sets+=(--set "world.rendezvous=tcp://${host:-localhost}:$((20000 + 10#${JOB//[^0-9]/0} % 20000))") ;;
  config) ;;
  file://* | tcp://*) sets+=(--set "world.rendezvous=$RENDEZVOUS") ;;
  *) echo "run.sh: RENDEZVOUS must be unset, tcp, config, file://DIR or tcp://HOST:PORT (got '$RENDEZVOUS')" >&2
     exit 2 ;;
esac

echo "run.sh: rank $RANK/${SLURM_NTASKS:-1} local ${SLURM_LOCALID:-0} on node ${SLURMD_NODENAME:-?} ($(hostname)), job $JOB step $STEP," \
     "GPUs ${CUDA_VISIBLE_DEVICES:-none}, threads ${OMP_NUM_THREADS:-auto}, $(date -Is)"

PROF_DIR=${HPCINFER_RUN_DIR:-.}/profile
case "${PROFILER:-none}" in
  nsys | perf) command -v "$PROFILER" >/dev/null ||
    { echo "run.sh: PROFILER=$PROFILER but '$PROFILER' is not on PATH on $(hostname)" >&2; exit 2; } ;;
esac
case "${PROFILER:-none}" in
  none) exec "$BIN" "$CMD" "$CONFIG" "${sets[@]}" "$@" ;;
  nsys) mkdir -p "$PROF_DIR"
        exec nsys profile --trace=cuda,nvtx,osrt --force-overwrite=true -o "$PROF_DIR/rank_$RANK" \
             "$BIN" "$CMD" "$CONFIG" "${sets[@]}" "$@" ;;
  perf) mkdir -p "$PROF_DIR"
        exec perf record -g -o "$PROF_DIR/perf_rank_$RANK.data" -- "$BIN" "$CMD" "$CONFIG" "${sets[@]}" "$@" ;;
  *) echo "run.sh: PROFILER must be none, nsys or perf (got '$PROFILER')" >&2; exit 2 ;;
esac
