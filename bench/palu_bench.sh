#!/usr/bin/env bash
# The PaLU figures of bench/RESULTS.md, in one run on this machine:
#   1. SmolLM2-135M-Instruct (bash scripts/fetch_smollm2.sh): baseline vs palu at ratio 0.7 and 0.5 (one group of its
#      3 kv heads, whitened SVD from WikiText-2 test tokens [200000, 204096)) through the seed study
#      (configs/experiments/palu_vs_baseline.yaml) with a smaller infer grid (prefill B=1 S=512; decode B=1 gen 64 at
#      ctx 512, 1024, 2048; 2 trials) and perplexity over the first 16384 WikiText-2 test tokens; PIQA and
#      HellaSwag at limit 200 as the seed study has them.
#   2. A random-weight llama-3-8b-shaped model cut to 4 layers (make-model --layers 4: the real per-layer shape,
#      so per-layer speed and KV bytes are the 8B model's; whitening none: random weights have no activations worth
#      calibrating on), bf16 weights: decode tokens/s at ctx 512 and 2048 (B=1, gen 16), baseline vs palu 0.7.
# Usage: bash bench/palu_bench.sh [OUT_DIR]   (default results/palu_bench; about 35 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HPCINFER_BIN:-build/bin/hpcinfer}
OUT=${1:-results/palu_bench}
SMOL=models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
WIKI=../shared/data/eval/wikitext-2-raw/wiki.test.raw
[ -f "$SMOL" ] || bash scripts/fetch_smollm2.sh
echo "palu_bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores, $(date -Is)"

python3 scripts/llm_study.py configs/experiments/palu_vs_baseline.yaml --bin "$BIN" \
  --set experiment=smollm2_palu --set "output_root=$OUT" \
  --set "variants.palu_r05={ratio: 0.5, group_size: 3, calib: $WIKI, calib_skip_tokens: 200000, calib_tokens: 4096}" \
  --set 'suites.infer.args=[--prefill-batches, "1", --prefill-lens, "512", --decode-ctx, "512,1024,2048", --decode-gen, "64", --decode-batches, "1"]' \
  --set suites.infer.trials=2 --set suites.ppl.limit_tokens=16384

L3=$OUT/llama3-8b-4layers
[ -f "$L3/base/config.json" ] || "$BIN" make-model --preset llama-3-8b --layers 4 --out "$L3/base"
[ -f "$L3/palu07/config.json" ] || "$BIN" palu compress --model "$L3/base" --ratio 0.7 --group-size 4 \
  --whitening none --dtype bf16 --out "$L3/palu07"
for v in base palu07; do
  echo "== llama-3-8b-shaped (4 layers, random bf16 weights): $v"
  "$BIN" eval infer --model "$L3/$v" --weights bf16 --prefill-batches 1 --prefill-lens 512 --decode-ctx 512,2048 \
    --decode-gen 16 --decode-batches 1 --warmup 0 --trials 2 --json > "$L3/$v.infer.json"
  python3 - "$L3/$v.infer.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"  KV bytes per token (f32, 4 layers): {j['kv_bytes_per_token']:.0f}")
for p in j["points"]:
    size = p.get("seq", p.get("ctx"))
    print(f"  {p['phase']:8s} B={p['batch']} {size:5d}: " + (f"{p['tok_s']['mean']:.2f} tok/s (std {p['tok_s']['std']:.2f})" if p['status'] == 'ok' else p['reason']))
PY
done
# The full 32-layer model's KV bytes per token from its config alone (plan --show reads no weights).
python3 - "$L3/palu07/config.json" "$L3/full32" <<'PY'
import json, os, sys
c = json.load(open(sys.argv[1])); out = sys.argv[2]
os.makedirs(out + "/palu07", exist_ok=True); os.makedirs(out + "/base", exist_ok=True)
c["num_hidden_layers"] = 32
for k in ("rank_k", "rank_v"):
    c["palu"][k] = [c["palu"][k][0]] * 32
json.dump(c, open(out + "/palu07/config.json", "w"))
del c["palu"]
json.dump(c, open(out + "/base/config.json", "w"))
PY
for v in base palu07; do
  printf 'model:\n  path: %s\n' "$L3/full32/$v" > "$L3/full32/$v.yaml"
  echo "== llama-3-8b (32 layers) $v: $("$BIN" plan --show "$L3/full32/$v.yaml" | grep -o 'KV cache: .*')"
done
