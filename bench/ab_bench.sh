#!/usr/bin/env bash
# A/B of two hpcinfer builds on the same machine, interleaved: for each round and weights plugin, `hpcinfer bench` of
# build A then build B right after it, so both see the same machine state; prints one row per run and, per weights
# plugin, the per-round B/A ratios of prefill and decode (batch 1 and 8) and their medians.
#   BIN_A=/path/old/bin/hpcinfer BIN_B=build/bin/hpcinfer bash bench/ab_bench.sh [MODEL_DIR]
# env: ROUNDS=3 THREADS=2 PROMPT=512 WEIGHTS="bf16 int8"; BENCH_LOCK as in cpu_bench.sh. The model is made once
# (make-model --preset tinyllama-1.1b --seed 7, 2.2 GB) by BIN_B when MODEL_DIR is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-/tmp/bench-tinyllama}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-512}
WEIGHTS=${WEIGHTS:-bf16 int8}
: "${BIN_A:?set BIN_A to the hpcinfer binary of the baseline build}"
BIN_B=${BIN_B:-build/bin/hpcinfer}
[ -f "$MODEL/config.json" ] || "$BIN_B" make-model --preset tinyllama-1.1b --seed 7 --out "$MODEL"
out=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  for w in $WEIGHTS; do
    for side in A B; do
      bin=BIN_$side
      flock "${BENCH_LOCK:-/tmp/hpcinfer-bench.lock}" "${!bin}" bench --model "$MODEL" --weights "$w" \
        --threads "$THREADS" --prompt-tokens "$PROMPT" --json > "$out/$side.$w.$r.json"
    done
  done
done
python3 - "$out" "$ROUNDS" "$WEIGHTS" <<'PY'
import json, statistics, sys
d, rounds, weights = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
cols = ["prefill_tok_s", "decode_tok_s", "decode_b8_tok_s", "mem_bw_gbs", "read_bw_gbs", "roofline_fraction"]
print("| weights | round | build | " + " | ".join(cols) + " |")
print("|---|---|---|" + "---|" * len(cols))
runs = {(s, w, r): json.load(open(f"{d}/{s}.{w}.{r}.json")) for s in "AB" for w in weights for r in range(1, rounds + 1)}
for w in weights:
    for r in range(1, rounds + 1):
        for s in "AB":
            j = runs[(s, w, r)]
            print(f"| {w} | {r} | {s} | " + " | ".join(f"{j[c]:.3g}" for c in cols) + " |")
print()
for w in weights:
    for c in ("prefill_tok_s", "decode_tok_s", "decode_b8_tok_s"):
        ratios = [runs[("B", w, r)][c] / runs[("A", w, r)][c] for r in range(1, rounds + 1)]
        print(f"{w} {c}: B/A per round {', '.join(f'{x:.3f}' for x in ratios)}; median {statistics.median(ratios):.3f}")
j = runs[("A", weights[0], 1)]
print(f"cpu: {j['cpu']}, simd {j['simd']}, threads {j['threads']}")
PY
rm -rf "$out"
