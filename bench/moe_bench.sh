#!/usr/bin/env bash
# MoE benchmark: a random-weight MoE of a real layer shape (make-model --preset qwen3-moe-2l: Qwen3-30B-A3B's layers,
# 128 experts top-8, two of them), one process against expert parallelism over 2 ranks (tp_pp, world.expert_parallel,
# gloo) in both forms (world.moe_comm: allreduce and alltoall) on the same cores, interleaved for ROUNDS rounds. 4 requests of 64 prompt ids, 32 greedy tokens each, batch 4.
# Per run: generated tokens/s (wall), and from each run's summary.json the compute, tp all-reduce (inside compute),
# idle (waiting in receives) seconds and the bytes sent per generated token (prompt tokens' traffic included).
#   bash bench/moe_bench.sh [MODEL_DIR]        (env: ROUNDS=3 WEIGHTS=bf16 BIN=build/bin/hpcinfer)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-/tmp/bench-qwen3-moe-2l}
ROUNDS=${ROUNDS:-3}
WEIGHTS=${WEIGHTS:-bf16}
BIN=${BIN:-build/bin/hpcinfer}
[ -f "$MODEL/config.json" ] || "$BIN" make-model --preset qwen3-moe-2l --seed 3 --out "$MODEL"
out=$(mktemp -d)
python3 - > "$out/prompts.jsonl" <<'PY'
import json, random
random.seed(9)
for i in range(4): print(json.dumps({"id": f"p{i}", "prompt_ids": [random.randrange(10, 150000) for _ in range(64)]}))
PY
cat > "$out/moe.yaml" <<YAML
model:
  path: $MODEL
plugins:
  weights: $WEIGHTS
  strategy: tp_pp
  comm: gloo
world:
  timeout_s: 600
inputs:
  prompts: $out/prompts.jsonl
generation:
  max_new_tokens: 32
  temperature: 0
batching:
  batch_size: 4
YAML
for r in $(seq 1 "$ROUNDS"); do
  flock "${BENCH_LOCK:-/tmp/hpcinfer-bench.lock}" "$BIN" run "$out/moe.yaml" --set outputs.dir="$out/single_$r" > "$out/single_$r.log" 2>&1
  flock "${BENCH_LOCK:-/tmp/hpcinfer-bench.lock}" "$BIN" launch -n 2 "$out/moe.yaml" --set world.tp=2 \
    --set world.expert_parallel=true --set outputs.dir="$out/ep2_$r" > "$out/ep2_$r.log" 2>&1
  flock "${BENCH_LOCK:-/tmp/hpcinfer-bench.lock}" "$BIN" launch -n 2 "$out/moe.yaml" --set world.tp=2 \
    --set world.expert_parallel=true --set world.moe_comm=alltoall --set outputs.dir="$out/ep2_a2a_$r" \
    > "$out/ep2_a2a_$r.log" 2>&1
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, sys
d, rounds = sys.argv[1], int(sys.argv[2])
print("| run | round | tokens/s | compute s (sum over ranks) | tp collectives s | idle s | bytes sent / token | tokens = single |")
print("|---|---|---|---|---|---|---|---|")
ids = lambda run: sorted(json.loads(l)["token_ids"] for l in open(f"{d}/{run}/completions.jsonl"))
for r in range(1, rounds + 1):
    for run in ("single", "ep2", "ep2_a2a"):
        s = json.load(open(f"{d}/{run}_{r}/summary.json"))
        tok = s["generated_tokens"]
        print(f"| {run} | {r} | {s['tokens_per_s']:.1f} | {s['compute_s']['sum']:.2f} | {s['tp_allreduce_s']['sum']:.2f} | "
              f"{s['idle_s']['sum']:.2f} | {s['bytes_sent'] / tok:.0f} | {ids(f'{run}_{r}') == ids(f'single_{r}')} |")
PY
rm -rf "$out"
