#!/usr/bin/env bash
# Issue 19 benchmark: all-reduce latency and bandwidth on this machine, nccl-tests style (`hpcinfer bench-comm`:
# f32 sums 8 B .. 64 MiB, median of ITERS calls, algorithm and bus bandwidth), for gloo with its shared-memory path
# (ranks on one host: the default), gloo over TCP (HPCINFER_GLOO_SHM=0) and mpi (mpirun), with 2 and 4 ranks, on
# idle cores and with every core also busy (one `yes` per core: what a rank meets when other work shares its node).
#   bash bench/comm_bench.sh            # ITERS=20, MAX=64M
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin/hpcinfer}
ITERS=${ITERS:-20}
MAX=${MAX:-67108864}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
busy=()
stop_busy() { [ ${#busy[@]} -eq 0 ] || kill "${busy[@]}" 2>/dev/null || true; busy=(); }
trap stop_busy EXIT
for load in idle busy; do
  if [ $load = busy ]; then
    for ((i = 0; i < $(nproc); i++)); do yes >/dev/null & busy+=($!); done
  fi
  for n in 2 4; do
    echo "== $load cores, $n ranks"
    "$BIN" bench-comm --comm gloo --ranks $n --iters "$ITERS" --max-bytes "$MAX"
    HPCINFER_GLOO_SHM=0 "$BIN" bench-comm --comm gloo --ranks $n --iters "$ITERS" --max-bytes "$MAX"
    mpirun --allow-run-as-root --oversubscribe --bind-to none -n $n "$BIN" bench-comm --comm mpi --iters "$ITERS" --max-bytes "$MAX"
  done
  stop_busy
done
