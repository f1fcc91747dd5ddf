#!/usr/bin/env bash
# CI test (ctest labels "faults;slurm"): hpcinfer job steps under srun, on the two-node cluster of slurm/cluster.sh,
# under faults (issue 18). stories260K, f32, world.timeout_s 2, pp=2 with one rank on n1 and one on n2, a long run
# (300 prompts x 400 tokens, one slot) so that every fault lands mid-run, started as users' scripts do:
#   srun -N 2 --ntasks-per-node=1 --kill-on-bad-exit=1 slurm/run.sh CONFIG   (slurm/submit.sbatch's step)
#   1. SIGTERM to srun: forwarded to the step's tasks, every rank gone;
#   2. SIGINT twice to srun within a second (Ctrl-C twice): srun aborts the step;
#   3. `scancel --signal=TERM JOB.0`: the step's tasks get SIGTERM;
#   4. `scancel JOB` (the whole allocation): SIGTERM, then SIGKILL after slurm.conf's KillWait (5 s);
#   5. SIGSTOP of rank 1 (a hung node): rank 0 times out naming rank 1, exits 1, --kill-on-bad-exit brings the
#      stopped rank down;
#   6. SIGKILL of rank 0: srun names the task, --kill-on-bad-exit ends rank 1, the step ends.
# After each: srun and every rank are gone within the stated bound, srun exits non-zero, the job leaves the queue,
# and every line of completions.jsonl written before is whole JSON.
#   bash tests/faults/test_srun_faults.sh SOURCE_DIR BUILD_DIR
# Exit 77 (skip) when not root, without the Slurm packages (scripts/setup_slurm.sh) or ../shared/data's
# stories260K. About 40 s (the cluster's start included).
set -uo pipefail

SRC=$(cd "${1:?usage: test_srun_faults.sh SOURCE_DIR BUILD_DIR}" && pwd)
BUILD=$(cd "${2:?usage: test_srun_faults.sh SOURCE_DIR BUILD_DIR}" && pwd)
BIN=$BUILD/bin/hpcinfer
MODEL=$SRC/../shared/data/models/stories260K/stories260K.bin
TOK=$SRC/../shared/data/models/stories260K/tok512.bin

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root: the Slurm daemons of slurm/cluster.sh need root"
for b in munged slurmctld slurmd slurmdbd mariadbd srun scancel squeue; do
  command -v $b >/dev/null || [ -x /usr/sbin/$b ] || skip "'$b' not installed: run 'bash scripts/setup_slurm.sh'"
done
[ -f "$MODEL" ] || skip "no stories260K at $MODEL (../shared/data)"
[ -x "$BIN" ] || { echo "FAIL: no binary $BIN: build first" >&2; exit 1; }
while read -r v; do unset "$v"; done < <(compgen -v | grep -E '^(SLURM_|SBATCH_|SRUN_|SALLOC_|OMPI_|PMIX_|HPCINFER_(RANK|WORLD_SIZE|LOCAL_RANK|JOB_ID|RUN_))')

TMP=$(mktemp -d /tmp/hpcinfer-srun-faults.XXXXXX)
chmod 755 "$TMP"   # munged (user munge) must reach its directory inside
CLUSTER=$TMP/cluster
trap 'bash "$SRC/slurm/cluster.sh" stop "$CLUSTER" >/dev/null 2>&1; pkill -KILL -f "$TMP/" 2>/dev/null; rm -rf "$TMP"' EXIT
export HPCINFER_SLURM_PORT_BASE=$((25000 + ($$ % 1000) * 10))
bash "$SRC/slurm/cluster.sh" start "$CLUSTER" > "$TMP/cluster.log" 2>&1 ||
  { cat "$TMP/cluster.log"; echo "FAIL: the cluster did not start"; exit 1; }
# shellcheck disable=SC1091
. "$CLUSTER/env.sh"

# shellcheck disable=SC1091
. "$SRC/tests/faults/long_job.sh"
write_long_job "$TMP" "$MODEL" "$TOK" "threads: 1"

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($(now) - $1, 1))"; }
export HPCINFER_BIN=$BIN

# start NAME: the step in the background (S = srun's pid, JOB = its job id, RANKS = hpcinfer pids by rank), once
# both ranks run and the first completion is written.
start() {
  local name=$1
  mkdir -p "$TMP/$name"
  (cd "$SRC" && exec env HPCINFER_RUN_DIR="$TMP/$name" srun -N 2 --ntasks-per-node=1 --kill-on-bad-exit=1 -t 2 \
    -J "$name" --output="$TMP/$name/rank_%t.log" slurm/run.sh "$TMP/exp.yaml" --set world.pp=2 --set outputs.dir="$TMP/$name") \
    > "$TMP/$name.srun.log" 2>&1 &
  S=$!
  JOB=""
  RANKS=()
  for _ in $(seq 200); do
    RANKS=()
    for p in $(pgrep -f "outputs.dir=$TMP/$name\$"); do
      r=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SLURM_PROCID=//p')
      [ -n "$r" ] && RANKS[$r]=$p
    done
    JOB=$(squeue -h -n "$name" -o %i 2>/dev/null | head -n1)
    if [ ${#RANKS[@]} -eq 2 ] && [ -n "$JOB" ] && [ -s "$TMP/$name/completions.jsonl" ]; then return 0; fi
    sleep 0.1
  done
  fail "$name: the step did not start generating within 20 s: $(tail -3 "$TMP/$name.srun.log" "$TMP/$name"/rank_*.log 2>/dev/null)"
}

# check_down NAME LIMIT_S T0: srun, both ranks and the job gone within LIMIT_S of T0; srun's exit is not 0.
check_down() {
  local name=$1 limit=$2 t0=$3 p took
  local deadline=$(( $(date +%s) + limit + 1 ))
  while kill -0 "$S" 2>/dev/null && [ "$(date +%s)" -le $deadline ]; do sleep 0.1; done
  for p in "${RANKS[@]}"; do
    while [ "$(date +%s)" -le $deadline ] && kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' /proc/$p/status; do sleep 0.1; done
  done
  took=$(elapsed "$t0")
  if kill -0 "$S" 2>/dev/null; then
    fail "$name: srun still running after ${took} s"
  else
    wait "$S"; local rc=$?
    [ $rc -ne 0 ] || fail "$name: srun exited 0 although the step was stopped mid-run"
  fi
  for p in "${RANKS[@]}"; do
    if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; then
      fail "$name: rank pid $p still running after ${took} s"
    fi
  done
  while [ -n "$(squeue -h -j "$JOB" -o %i 2>/dev/null)" ] && [ "$(date +%s)" -le $((deadline + 10)) ]; do sleep 0.2; done
  [ -z "$(squeue -h -j "$JOB" -o %i 2>/dev/null)" ] || fail "$name: job $JOB still in the queue"
  whole_json_lines "$TMP/$name/completions.jsonl" || fail "$name: completions.jsonl has a broken line"
  echo "$name: down in ${took} s (limit $limit s)"
  pkill -KILL -f "outputs.dir=$TMP/$name\$" 2>/dev/null
}

# 1. SIGTERM to srun: forwarded to both tasks.
start term_srun
t0=$(now)
kill -TERM "$S"
check_down term_srun 8 "$t0"

# 2. Ctrl-C twice: srun aborts the step.
start int_twice
t0=$(now)
kill -INT "$S"; sleep 0.3; kill -INT "$S"
check_down int_twice 8 "$t0"

# 3. SIGTERM to the step's tasks by scancel.
start term_step
t0=$(now)
scancel --signal=TERM "$JOB.0"
check_down term_step 8 "$t0"

# 4. The allocation cancelled: SIGTERM, SIGKILL after KillWait (5 s).
start cancel_job
t0=$(now)
scancel "$JOB"
check_down cancel_job 12 "$t0"

# 5. A hung node: rank 1 stopped. Rank 0 times out (2 s) naming rank 1; srun's --kill-on-bad-exit kills rank 1.
start stop_rank1
t0=$(now)
kill -STOP "${RANKS[1]:-0}"
check_down stop_rank1 14 "$t0"
grep -q 'rank 1' "$TMP/stop_rank1/rank_0.log" ||
  fail "stop_rank1: rank 0's error does not name rank 1: $(tail -2 "$TMP/stop_rank1/rank_0.log")"
echo "  rank 0: $(grep -m1 'error' "$TMP/stop_rank1/rank_0.log" | cut -c1-200)"

# 6. A dead rank: rank 0 killed.
start kill_rank0
t0=$(now)
kill -KILL "${RANKS[0]:-0}"
check_down kill_rank0 12 "$t0"
# --kill-on-bad-exit ends rank 1 at once (before its own timeout); srun names the dead task and its node.
grep -q 'n1: task 0: Killed' "$TMP/kill_rank0.srun.log" ||
  fail "kill_rank0: srun does not name task 0 on n1: $(cat "$TMP/kill_rank0.srun.log")"

if [ $fails -ne 0 ]; then
  echo "test_srun_faults: $fails failure(s); srun logs:"
  tail -n 5 "$TMP"/*.srun.log
  exit 1
fi
echo "test_srun_faults: every fault brought the srun step down in bounded time, no process left"
