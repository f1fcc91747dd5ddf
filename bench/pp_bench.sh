#!/usr/bin/env bash
# Issue 4 benchmark (not a test): pipeline parallelism on the same cores. A random tinyllama-1.1b (bf16) generates
# TOKENS tokens for each of 8 prompts with batch 8, as world=1 (`hpcinfer run`, all cores) and as pp=2 over gloo
# (`hpcinfer launch -n 2`) with micro-batches 1, 2, 4 and 8, plus two references: world=1 with the same micro-batches
# (the batch split the same way without a pipeline: the ceiling of pp=2 at that count) and pp=2 with one micro-batch
# and one thread per rank (the old core split). Runs are interleaved, each round runs every variant once, so that
# drifting load hits all variants alike; the table gives the median over the rounds and the range.
#
#   bash bench/pp_bench.sh                         # ROUNDS=3 TOKENS=32 MICRO="1 2 4 8"
#   MODEL=/tmp/tinyllama bash bench/pp_bench.sh    # use (or write, and keep) the model there
#
# From metrics/rank_<r>.json (bench/pp_bench_table.py): tokens/s = generated tokens / the slowest rank's
# engine_wall_s (the generation loop, after the weights are packed); compute, comm (inside communicator calls) and
# idle (blocked in recv: bubble plus transfer) as shares of each rank's engine_wall_s.
# The measuring part holds /tmp/hpcinfer-bench.lock: no other benchmark on this machine runs at the same time.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-build/bin/hpcinfer}
ROUNDS=${ROUNDS:-3}
TOKENS=${TOKENS:-32}
MICRO=${MICRO:-1 2 4 8}
DATA=../shared/data
TOKENIZER=$DATA/tokenizers/llama2-sentencepiece/tokenizer.model
PROMPTS=$DATA/prompts/stories8.jsonl
for f in "$BIN" "$TOKENIZER" "$PROMPTS"; do
  [ -e "$f" ] || { echo "pp_bench: $f not found (build first; ../shared/data must be present)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/pp_bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
model=${MODEL:-$work/tinyllama}
if [ ! -e "$model/config.json" ]; then
  echo "pp_bench: writing a random tinyllama-1.1b to $model" >&2
  "$BIN" make-model --preset tinyllama-1.1b --seed 1 --out "$model" >&2
fi
cat >"$work/exp.yaml" <<EOF
model:
  path: $model
  tokenizer: $TOKENIZER
world:
  timeout_s: 300
threads: 0
inputs:
  prompts: $PROMPTS
generation:
  max_new_tokens: $TOKENS
  temperature: 0
batching:
  batch_size: 8
  micro_batches: 1
EOF

# Other people's processes on this shared machine distort the comparison (a 2-thread OpenMP team slows down badly
# when one of its cores is taken), so each run waits for a quiet machine (< QUIET_PCT of the cores busy over 2 s) and
# is repeated (up to 5 times) when more than QUIET_PCT of the cores' time during it went to processes other than
# its own (all cores' busy time from /proc/stat minus this shell's children's CPU time). The share seen is reported.
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT_S=${QUIET_WAIT_S:-1800}
NCPU=$(nproc)
busy_ticks() {  # user + nice + system + irq + softirq + steal of all cores, in 1/100 s
  local a
  a=($(head -1 /proc/stat))
  echo $((a[1] + a[2] + a[3] + a[6] + a[7] + a[8]))
}
child_ticks() {  # CPU time of this shell's finished children (cutime + cstime), in 1/100 s
  local f
  f=($(cut -d')' -f2 /proc/$$/stat))
  echo $((f[13] + f[14]))
}
now_ticks() { echo $(($(date +%s%N) / 10000000)); }
wait_quiet() {
  local start=$SECONDS b0 t0 pct
  while :; do
    b0=$(busy_ticks) t0=$(now_ticks)
    sleep 2
    pct=$((100 * ($(busy_ticks) - b0) / (NCPU * ($(now_ticks) - t0))))
    [ "$pct" -lt "$QUIET_PCT" ] && return
    if [ $((SECONDS - start)) -ge "$QUIET_WAIT_S" ]; then
      echo "pp_bench: WARNING: machine still ${pct}% busy after ${QUIET_WAIT_S} s; measuring anyway" >&2
      return
    fi
  done
}
measure() {  # measure NAME COMMAND...: runs the command in a quiet window, again if others took too much CPU
  local name=$1 try b0 c0 t0 foreign log=$work/${1//\//_}.log
  shift
  for try in 1 2 3 4 5; do
    wait_quiet
    b0=$(busy_ticks) c0=$(child_ticks) t0=$(now_ticks)
    "$@" >"$log" 2>&1 || { tail -5 "$log" >&2; exit 1; }
    foreign=$((100 * (($(busy_ticks) - b0) - ($(child_ticks) - c0)) / (NCPU * ($(now_ticks) - t0))))
    [ "$foreign" -lt 0 ] && foreign=0
    [ "$foreign" -lt "$QUIET_PCT" ] && break
    echo "pp_bench: $name: other processes took ${foreign}% of the cores during the run; again (try $try)" >&2
  done
  echo "$name $foreign" >>"$work/foreign.txt"
}

# The variants, in the order of a round: NAME|RANKS|key=value overrides (RANKS 1: `run`; 2: `launch -n 2`, pp=2).
variants=("world1_m1|1|")
for m in $MICRO; do [ "$m" = 1 ] || variants+=("world1_m$m|1|batching.micro_batches=$m"); done
for m in $MICRO; do
  variants+=("pp2_m$m|2|batching.micro_batches=$m")
  [ "$m" = 1 ] && variants+=("pp2_m1_t1|2|batching.micro_batches=1 threads=$((NCPU > 1 ? NCPU / 2 : 1))")
done

run_round() {  # $1 = round number
  local v name ranks sets kv args
  for v in "${variants[@]}"; do
    IFS='|' read -r name ranks sets <<<"$v"
    args=(--set outputs.dir="$work/round$1/$name")
    for kv in $sets; do args+=(--set "$kv"); done
    if [ "$ranks" = 1 ]; then
      measure "round$1/$name" "$BIN" run "$work/exp.yaml" "${args[@]}"
    else
      measure "round$1/$name" "$BIN" launch -n 2 "$work/exp.yaml" --set world.pp=2 --set plugins.comm=gloo "${args[@]}"
    fi
  done
}

exec 9>/tmp/hpcinfer-bench.lock
echo "pp_bench: waiting for /tmp/hpcinfer-bench.lock" >&2
flock 9
echo "pp_bench: measuring, $ROUNDS rounds of ${#variants[@]} runs ($(date -u +%FT%TZ))" >&2
for r in $(seq 1 "$ROUNDS"); do
  run_round "$r"
  echo "pp_bench: round $r done ($(date -u +%FT%TZ))" >&2
done
flock -u 9
exec 9>&-
echo "pp_bench: share of the cores other processes took during each kept run (percent):" \
  $(cut -d' ' -f2 "$work/foreign.txt") >&2

names=()
for v in "${variants[@]}"; do names+=("${v%%|*}"); done
python3 bench/pp_bench_table.py "$work" "$ROUNDS" "${names[@]}"
