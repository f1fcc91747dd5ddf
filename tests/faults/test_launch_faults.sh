#!/usr/bin/env bash
# CI test (ctest label "faults"): real processes of `hpcinfer launch` under faults (issue 18). stories260K, f32,
# world.timeout_s 2, a long run (300 prompts x 400 tokens, one slot) so that every fault lands mid-run:
#   1. SIGSTOP (a hung node) and SIGKILL (a dead one) of each rank of pp=2, tp=2 and tp2 x pp2, and of the middle
#      stage of pp=3: a stopped rank is named by a peer that timed out, launch SIGTERMs then SIGKILLs it, the job is
#      down within world.timeout_s + 5 s + 5 s (+ slack); a killed rank is named by launch; launch exits non-zero;
#   3. SIGKILL of `launch` itself: its ranks die with it (PR_SET_PDEATHSIG), no orphans within 5 s;
#   4. SIGTERM to `launch`: passed on, every rank gone within 10 s;
#   5. two SIGINTs to `launch` (Ctrl-C twice): the second kills at once;
#   7. the link between two network-namespace "hosts" taken down mid-run (root only): both ranks exit naming a peer.
# After each: no process of the job is left, and every line of completions.jsonl written before is whole JSON.
#   bash tests/faults/test_launch_faults.sh SOURCE_DIR BUILD_DIR
# Exit 77 (skip) without ../shared/data's stories260K. About 3 minutes (each SIGSTOP case waits out the grace).
set -uo pipefail

SRC=$(cd "${1:?usage: test_launch_faults.sh SOURCE_DIR BUILD_DIR}" && pwd)
BUILD=$(cd "${2:?usage}" && pwd)
BIN=$BUILD/bin/hpcinfer
MODEL=$SRC/../shared/data/models/stories260K/stories260K.bin
TOK=$SRC/../shared/data/models/stories260K/tok512.bin
[ -f "$MODEL" ] || { echo "SKIPPED: no stories260K at $MODEL (../shared/data)"; exit 77; }
while read -r v; do unset "$v"; done < <(compgen -v | grep -E '^(SLURM_|OMPI_|PMIX_|HPCINFER_(RANK|WORLD_SIZE|LOCAL_RANK|JOB_ID))')

TMP=$(mktemp -d /tmp/hpcinfer-faults.XXXXXX)
trap 'pkill -KILL -f "$TMP/" 2>/dev/null; rm -rf "$TMP"' EXIT
# shellcheck disable=SC1091
. "$SRC/tests/faults/long_job.sh"
write_long_job "$TMP" "$MODEL" "$TOK"

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($(now) - $1, 1))"; }

# start NAME N [--set ...]: launches N ranks into $TMP/NAME; sets L (launch pid) and RANKS (pids by rank).
start() {
  local name=$1 n=$2
  shift 2
  "$BIN" launch -n "$n" "$TMP/exp.yaml" --set outputs.dir="$TMP/$name" "$@" > "$TMP/$name.launch.log" 2>&1 &
  L=$!
  RANKS=()
  for _ in $(seq 100); do  # the ranks, by HPCINFER_RANK, once every one has started and is generating
    RANKS=()
    for p in $(pgrep -P "$L"); do
      r=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^HPCINFER_RANK=//p')
      [ -n "$r" ] && RANKS[$r]=$p
    done
    if [ ${#RANKS[@]} -eq "$n" ] && [ -s "$TMP/$name/completions.jsonl" ]; then return 0; fi
    sleep 0.1
  done
  fail "$name: the job did not start generating within 10 s: $(tail -5 "$TMP/$name.launch.log")"
}

# check_down NAME LIMIT_S T0 [expect_launch_exit]: launch and every rank gone within LIMIT_S of T0.
check_down() {
  local name=$1 limit=$2 t0=$3
  local deadline=$(( $(date +%s) + limit + 2 ))
  while kill -0 "$L" 2>/dev/null && [ "$(date +%s)" -le $deadline ]; do sleep 0.1; done
  local took; took=$(elapsed "$t0")
  kill -0 "$L" 2>/dev/null && fail "$name: launch still running after ${took} s"
  for p in "${RANKS[@]}"; do
    while [ "$(date +%s)" -le $deadline ] && kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' /proc/$p/status; do sleep 0.1; done
    if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; then
      fail "$name: rank pid $p still running after ${took} s"
      kill -KILL "$p" 2>/dev/null
    fi
  done
  whole_json_lines "$TMP/$name/completions.jsonl" || fail "$name: completions.jsonl has a broken line"
  echo "$name: down in ${took} s (limit $limit s)"
}

# rank_fault NAME N SIG RANK [--set ...]: SIGSTOP or SIGKILL (SIG = STOP | KILL) to RANK of an N-rank job.
rank_fault() {
  local name=$1 n=$2 sig=$3 r=$4 t0 others limit
  shift 4
  start "$name" "$n" "$@"
  t0=$(now)
  kill -"$sig" "${RANKS[$r]:-0}"
  limit=12
  [ "$sig" = STOP ] && limit=$((n > 2 ? 20 : 17))
  check_down "$name" "$limit" "$t0"
  wait "$L"; [ $? -ne 0 ] || fail "$name: launch exited 0 with rank $r gone"
  if [ "$sig" = STOP ]; then
    others=$(ls "$TMP/$name/ranks/"rank_*.log | grep -v "/rank_$r.log")
    # shellcheck disable=SC2086  # a list of files
    grep -qE "rank $r([^/0-9]|$)" $others || fail "$name: no other rank's error names the stopped rank $r"
    grep -q "rank $r did not exit: SIGKILL" "$TMP/$name.launch.log" || fail "$name: launch did not kill the stopped rank $r"
  else
    grep -q "rank $r exited with status 137" "$TMP/$name.launch.log" || fail "$name: launch does not name the killed rank $r"
  fi
}
for sig in STOP KILL; do
  for r in 0 1; do
    rank_fault "${sig,,}_pp2_rank$r" 2 $sig $r --set world.pp=2
    rank_fault "${sig,,}_tp2_rank$r" 2 $sig $r --set world.tp=2 --set plugins.strategy=tp_pp
  done
  for r in 0 1 2 3; do
    rank_fault "${sig,,}_tp2pp2_rank$r" 4 $sig $r --set world.tp=2 --set world.pp=2 --set plugins.strategy=tp_pp
  done
  rank_fault "${sig,,}_pp3_middle" 3 $sig 1 --set world.pp=3
done

# 3. SIGKILL of the launcher: no orphans.
start kill_launch 2 --set world.pp=2
t0=$(now)
kill -KILL "$L"
check_down kill_launch 5 "$t0"

# 4. SIGTERM to the launcher: passed on.
start term_launch 2 --set world.pp=2
t0=$(now)
kill -TERM "$L"
check_down term_launch 10 "$t0"
wait "$L"; [ $? -ne 0 ] || fail "term_launch: launch exited 0 after SIGTERM stopped the run early"

# 5. Ctrl-C twice.
start int_twice 2 --set world.pp=2
t0=$(now)
kill -STOP "${RANKS[1]:-0}"   # a rank that would not stop on SIGTERM alone
kill -INT "$L"; sleep 0.3; kill -INT "$L"
check_down int_twice 3 "$t0"

# 7. The network between two "hosts" (network namespaces joined by a veth; root only) goes down mid-run: both ranks
# time out (world.timeout_s 2) naming their peer, and exit.
t0=$(now)
LINK_DOWN_AFTER=1.5 bash "$SRC/tests/scripts/two_hosts_netns.sh" "$BIN" "$TMP/exp.yaml" "$TMP/netns" \
  --set inputs.prompts="$TMP/prompts.jsonl" > "$TMP/netns.log" 2>&1
rc=$?
took=$(elapsed "$t0")
if [ $rc -eq 77 ]; then
  echo "link_down: skipped ($(grep SKIP "$TMP/netns.log"))"
else
  [ $rc -ne 0 ] || fail "link_down: both ranks exited 0 with the link down"
  python3 -c "import sys; sys.exit(0 if $took <= 1.5 + 2 + 12 else 1)" || fail "link_down: the ranks took ${took} s to exit"
  for h in a b; do
    grep -q 'rank [01]' "$TMP/netns/host_$h/rank_"*.log || fail "link_down: host_$h's error names no peer rank"
  done
  echo "link_down: both ranks out in ${took} s: $(grep -h 'error' "$TMP/netns/host_a/rank_0.log" | head -1 | cut -c1-160)"
fi

if [ $fails -ne 0 ]; then echo "test_launch_faults: $fails failure(s)"; exit 1; fi
echo "test_launch_faults: all faults brought the job down in bounded time, no process left"
