#!/usr/bin/env bash
# Issue 19 benchmark: what the transport costs a tensor-parallel run on one machine, as a user measures it. For each
# model, ROUNDS interleaved rounds of: one process (all cores), tp=2 over gloo with its shared-memory collectives
# (ranks on one host; the default), tp=2 over gloo forced onto TCP (HPCINFER_GLOO_SHM=0: the path before), tp=2 over
# mpi (mpirun), and pp=2 over gloo (shared memory, and TCP). 8 prompts x TOKENS new tokens, batch 8, one micro-batch, greedy.
# tokens/s = generated tokens / the slowest rank's engine_wall_s (raw.json); tp all-reduce seconds of rank 0.
#   bash bench/transport_bench.sh                 # ROUNDS=2 TOKENS=32, models: random tinyllama-1.1b bf16, stories260K
#   MODEL=/tmp/tinyllama bash bench/transport_bench.sh   # keep (or reuse) the random tinyllama there
#   VARIANTS="one pp2_gloo pp2_gloo_tcp" MODELS=tinyllama ROUNDS=5 bash bench/transport_bench.sh   # a subset
# Also: pp2_gloo_passive, tp2_gloo_passive (OMP_WAIT_POLICY=passive set by the user: launch's wait policy before
# core/runtime/shared_cores_env.hpp, which spins 0.1 ms first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin/hpcinfer}
ROUNDS=${ROUNDS:-2}
TOKENS=${TOKENS:-32}
DATA=../shared/data
work=$(mktemp -d /tmp/transport_bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
tiny=${MODEL:-$work/tinyllama}
[ -e "$tiny/config.json" ] || "$BIN" make-model --preset tinyllama-1.1b --seed 1 --out "$tiny" >&2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
models=("tinyllama|$tiny|$DATA/tokenizers/llama2-sentencepiece/tokenizer.model"
        "stories260K|$DATA/models/stories260K/stories260K.bin|$DATA/models/stories260K/tok512.bin")
for m in "${models[@]}"; do
  IFS='|' read -r name path tok <<<"$m"
  cat >"$work/$name.yaml" <<EOF2
model:
  path: $path
  tokenizer: $tok
world:
  timeout_s: 300
inputs:
  prompts: $DATA/prompts/stories8.jsonl
generation:
  max_new_tokens: $TOKENS
  temperature: 0
batching:
  batch_size: 8
  micro_batches: 1
EOF2
done
run_variant() {  # MODEL VARIANT ROUND
  local y=$work/$1.yaml out=$work/$3/$1/$2
  case $2 in
    one) "$BIN" run "$y" --set outputs.dir="$out" ;;
    tp2_gloo_shm) "$BIN" launch -n 2 "$y" --set world.tp=2 --set plugins.strategy=tp_pp --set plugins.comm=gloo --set outputs.dir="$out" ;;
    tp2_gloo_tcp) HPCINFER_GLOO_SHM=0 "$BIN" launch -n 2 "$y" --set world.tp=2 --set plugins.strategy=tp_pp --set plugins.comm=gloo --set outputs.dir="$out" ;;
    tp2_mpi) mpirun --allow-run-as-root --oversubscribe --bind-to none -n 2 "$BIN" run "$y" --set world.tp=2 --set plugins.strategy=tp_pp \
               --set plugins.comm=mpi --set threads=1 --set outputs.dir="$out" ;;
    pp2_gloo) "$BIN" launch -n 2 "$y" --set world.pp=2 --set plugins.comm=gloo --set outputs.dir="$out" ;;
    pp2_gloo_passive) OMP_WAIT_POLICY=passive "$BIN" launch -n 2 "$y" --set world.pp=2 --set plugins.comm=gloo --set outputs.dir="$out" ;;
    tp2_gloo_passive) OMP_WAIT_POLICY=passive "$BIN" launch -n 2 "$y" --set world.tp=2 --set plugins.strategy=tp_pp --set plugins.comm=gloo --set outputs.dir="$out" ;;
    pp2_gloo_tcp) HPCINFER_GLOO_SHM=0 "$BIN" launch -n 2 "$y" --set world.pp=2 --set plugins.comm=gloo --set outputs.dir="$out" ;;
  esac >"$work/log_$3_$1_$2.txt" 2>&1 || { tail -5 "$work/log_$3_$1_$2.txt" >&2; exit 1; }
}
read -r -a variants <<<"${VARIANTS:-one tp2_gloo_shm tp2_gloo_tcp tp2_mpi pp2_gloo pp2_gloo_tcp}"
read -r -a model_names <<<"${MODELS:-tinyllama stories260K}"
for ((r = 1; r <= ROUNDS; r++)); do
  for name in "${model_names[@]}"; do
    for v in "${variants[@]}"; do run_variant "$name" "$v" "$r"; done
  done
  echo "transport_bench: round $r of $ROUNDS done" >&2
done
python3 - "$work" "$ROUNDS" "${model_names[*]}" "${variants[@]}" <<'PY'
import json, statistics, sys
work, rounds, model_names, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
for model in model_names:
    print(f"\n{model}: tokens/s (median of {rounds} rounds; each round's value), vs one process, rank 0's tp all-reduce s")
    base = None
    for v in variants:
        tps, ar = [], []
        for r in range(1, rounds + 1):
            j = json.load(open(f"{work}/{r}/{model}/{v}/raw.json"))
            gen = sum(x["generated_tokens"] for x in j["ranks"] if x.get("pp_rank", 0) == max(y.get("pp_rank", 0) for y in j["ranks"]) and x.get("tp_rank", 0) == 0)
            wall = max(x["engine_wall_s"] for x in j["ranks"])
            tps.append(gen / wall)
            ar.append(j["ranks"][0].get("tp_allreduce_s", 0.0))
        med = statistics.median(tps)
        base = base or med
        print(f"  {v:14s} {med:9.1f} ({', '.join(f'{x:.1f}' for x in tps)})  {med / base:5.2f}x   all-reduce {statistics.median(ar):.3f} s")
PY
