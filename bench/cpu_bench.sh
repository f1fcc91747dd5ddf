#!/usr/bin/env bash
# Issue 5 benchmark: `hpcinfer bench` on a random tinyllama-1.1b, bf16 and int8 interleaved, ROUNDS rounds each, on
# THREADS threads; prints one markdown row per run and the medians. Run it on a quiet machine:
#   bash bench/cpu_bench.sh [MODEL_DIR]      (env: ROUNDS=3 THREADS=2 PROMPT=512 BIN=build/bin/hpcinfer)
# BENCH_LOCK=FILE: the lock taken around each run (default /tmp/hpcinfer-bench.lock, shared with pp_bench.sh).
# The model is made once (hpcinfer make-model --preset tinyllama-1.1b --seed 7, 2.2 GB) when MODEL_DIR is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-/tmp/bench-tinyllama}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-512}
BIN=${BIN:-build/bin/hpcinfer}
[ -f "$MODEL/config.json" ] || "$BIN" make-model --preset tinyllama-1.1b --seed 7 --out "$MODEL"
out=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  for w in bf16 int8; do
    # The lock keeps two benchmarks (this one, bench/pp_bench.sh) from running at once.
    flock "${BENCH_LOCK:-/tmp/hpcinfer-bench.lock}" "$BIN" bench --model "$MODEL" --weights "$w" --threads "$THREADS" \
      --prompt-tokens "$PROMPT" --json > "$out/$w.$r.json"
  done
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
runs = {w: [json.load(open(f"{d}/{w}.{r}.json")) for r in range(1, rounds + 1)] for w in ("bf16", "int8")}
cols = ["prefill_tok_s", "prefill_peak_fraction", "decode_tok_s", "decode_b8_tok_s", "mem_bw_gbs", "read_bw_gbs",
        "fma_peak_gflops", "bytes_per_token", "decode_gbs", "roofline_fraction", "roofline_fraction_read_bw"]
print("| weights | round | " + " | ".join(cols) + " |")
print("|---|---|" + "---|" * len(cols))
for w, rs in runs.items():
    for i, j in enumerate(rs, 1):
        print(f"| {w} | {i} | " + " | ".join(f"{j[c]:.3g}" for c in cols) + " |")
med = {w: {c: statistics.median(j[c] for j in rs) for c in cols} for w, rs in runs.items()}
for w in runs:
    print(f"| {w} | median | " + " | ".join(f"{med[w][c]:.3g}" for c in cols) + " |")
ratio = [runs["int8"][i]["decode_tok_s"] / runs["bf16"][i]["decode_tok_s"] for i in range(rounds)]
print(f"\nint8 / bf16 decode b1, per round (side by side): {', '.join(f'{x:.2f}' for x in ratio)}; median {statistics.median(ratio):.2f}")
print(f"cpu: {runs['bf16'][0]['cpu']}, simd {runs['bf16'][0]['simd']}, threads {runs['bf16'][0]['threads']}")
PY
rm -rf "$out"
