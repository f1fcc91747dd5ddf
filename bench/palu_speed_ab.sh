#!/usr/bin/env bash
# Decode speed of a baseline and its PaLU variants measured interleaved (round after round, variant after variant),
# so the ratios compare runs minutes apart at most (this VM's memory bandwidth drifts): `eval infer` decode B=1,
# gen 32, at each context of CTX, one timed trial per round.
# Usage: bash bench/palu_speed_ab.sh ROUNDS CTX BASELINE VARIANT...   e.g.
#   bash bench/palu_speed_ab.sh 3 512,1024,2048 models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf results/palu_bench/smollm2_palu/models/palu-*
# Prints one line per (variant, ctx): median tokens/s over the rounds and its ratio to the baseline's median.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HPCINFER_BIN:-build/bin/hpcinfer}
ROUNDS=${1:?usage: palu_speed_ab.sh ROUNDS CTX BASELINE VARIANT...}; CTX=${2:?}; shift 2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
  i=0
  for m in "$@"; do
    "$BIN" eval infer --model "$m" --prefill-batches 1 --prefill-lens 16 --decode-ctx "$CTX" --decode-gen 32 \
      --decode-batches 1 --warmup 0 --trials 1 --json > "$tmp/$i.$r.json" 2>/dev/null
    i=$((i + 1))
  done
  echo "palu_speed_ab: round $r of $ROUNDS done" >&2
done
python3 - "$tmp" "$ROUNDS" "$@" <<'PY'
import json, statistics, sys
tmp, rounds, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med = {}
for i, m in enumerate(models):
    per = {}
    for r in range(1, rounds + 1):
        j = json.load(open(f"{tmp}/{i}.{r}.json"))
        for p in j["points"]:
            if p["phase"] == "decode" and p["status"] == "ok":
                per.setdefault(p["ctx"], []).append(p["tok_s"]["mean"])
    med[i] = {c: statistics.median(v) for c, v in per.items()}
    kv = j["kv_bytes_per_token"]
    for c in sorted(med[i]):
        print(f"{m}: KV {kv:.0f} B/token, ctx {c}: {med[i][c]:.2f} tok/s (median of {len(per[c])}: "
              f"{', '.join(f'{x:.2f}' for x in per[c])}), {med[i][c] / med[0][c]:.3f}x the baseline")
PY
