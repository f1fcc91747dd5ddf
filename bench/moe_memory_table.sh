#!/usr/bin/env bash
# The seeds' question as a table: which tp x pp x ep layouts of DeepSeek-V3/V3.1 and gpt-oss-120b fit 1, 2 and 3 nodes
# of 8 x 80 GB or 8 x 141 GB GPUs. `hpcinfer plan --device-memory` per layout (config-only presets, no weights read):
# tp = 8 GPUs of a node with the experts shared out (world.expert_parallel), pp = nodes; batch 1, 8192-token context.
#   bash bench/moe_memory_table.sh [WEIGHTS...]      (default: int8 bf16; BIN=build/bin/hpcinfer)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin/hpcinfer}
WEIGHTS=${*:-int8 bf16}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| model | weights | nodes x GPUs | layout | per-GPU weights | KV cache | total (max over ranks) | 80 GB | 141 GB |"
echo "|---|---|---|---|---|---|---|---|---|"
for model in deepseek-v3 gpt-oss-120b; do
  "$BIN" make-model --preset "$model" --config-only --out "$tmp/$model" > /dev/null
  for w in $WEIGHTS; do
    for nodes in 1 2 3; do
      printf 'model:\n  path: %s\nplugins:\n  strategy: tp_pp\n  weights: %s\nworld:\n  tp: 8\n  pp: %d\n  expert_parallel: true\n  replicate_kv_heads: true\nbatching:\n  batch_size: 1\n' \
        "$tmp/$model" "$w" "$nodes" > "$tmp/plan.yaml"
      "$BIN" plan --show "$tmp/plan.yaml" --context 8192 --json 2>/dev/null | python3 -c '
import json, sys
ranks = json.load(sys.stdin); model, w, nodes = sys.argv[1:4]
worst = max(ranks, key=lambda r: r["total_bytes"])
t, wb, kv = worst["total_bytes"] / 1e9, worst["weight_bytes"] / 1e9, worst["kv_cache_bytes"] / 1e9
fits = lambda gb: "fits" if t <= gb else "no"
print(f"| {model} | {w} | {nodes} x 8 | tp8 ep8 pp{nodes} | {wb:.1f} GB | {kv:.2f} GB | {t:.1f} GB | {fits(80)} | {fits(141)} |")' "$model" "$w" "$nodes"
    done
  done
done
