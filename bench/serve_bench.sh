#!/usr/bin/env bash
# Serving benchmark (issue 15): throughput and latency of `hpcinfer serve` on SmolLM2-135M-Instruct (the main job's
# model, f32 weights from its Q4_1 GGUF) at concurrency 1, 4, 16, 64 (bench/serve_load.py: closed-loop streaming
# clients, 64 generated tokens a request, greedy), for three layouts on the same cores, one after another:
#   dp1   one process, all cores (the baseline)
#   pp2   two pipeline stages over gloo (hpcinfer launch --serve, 2 micro-batches)
#   dp2   two data-parallel replicas (world.dp: 2), the front on rank 0 dispatching to the least-loaded
# 16 batch slots per replica, serve.max_waiting 256 (nothing is refused: the queue holds what the slots cannot).
# First, the engine alone on the same model (`hpcinfer bench`, batch 1, a 16-token prompt and 64 decode steps: the
# served requests' shape) with the memory-bandwidth probe beside it: the served single stream's rate against the
# engine's, and the engine's against the bandwidth roofline, measured in the same run.
#   bash bench/serve_bench.sh            (env: BIN=build/bin/hpcinfer LEVELS="1 4 16 64" REQ_MIN=8 LAYOUTS="dp1 pp2 dp2")
# Prints one JSON line per (layout, concurrency) and a table; needs the openai package (scripts/setup_serve_test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin/hpcinfer}
LEVELS=${LEVELS:-"1 4 16 64"}
LAYOUTS=${LAYOUTS:-"dp1 pp2 dp2"}
REQ_MIN=${REQ_MIN:-8}
bash scripts/fetch_smollm2.sh >/dev/null
bash scripts/setup_serve_test.sh >/dev/null
out=$(mktemp -d)
MODEL=models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"$BIN" bench --model "$MODEL" --weights f32 --prompt-tokens 16 --decode-tokens 64 --trials 3 --json 2>/dev/null \
  >"$out/engine.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(json.dumps({"engine_decode_b1_tok_s": j["decode_tok_s"], "engine_decode_b8_tok_s": j["decode_b8_tok_s"], "read_bw_gbs": j["read_bw_gbs"], "roofline_fraction_read_bw": j["roofline_fraction_read_bw"]}))' "$out/engine.json"
trap 'pkill -TERM -P $$ 2>/dev/null || true; rm -rf "$out"' EXIT
common=(--set serve.port=0 --set batching.batch_size=16 --set serve.max_waiting=256 --set serve.max_context=512
        --set inputs.chat=false --set world.timeout_s=120)
for layout in $LAYOUTS; do
  case $layout in
    dp1) cmd=("$BIN" serve configs/smollm2_pp2_gloo.yaml --set world.pp=1 --set batching.micro_batches=1) ;;
    pp2) cmd=("$BIN" launch -n 2 --serve configs/smollm2_pp2_gloo.yaml --set batching.micro_batches=2) ;;
    dp2) cmd=("$BIN" launch -n 2 --serve configs/smollm2_pp2_gloo.yaml --set world.pp=1 --set world.dp=2
              --set batching.micro_batches=1) ;;
    *) echo "serve_bench: unknown layout $layout" >&2; exit 2 ;;
  esac
  "${cmd[@]}" "${common[@]}" --set outputs.dir="$out/$layout" >"$out/$layout.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [ -s "$out/$layout/server.json" ] && url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$out/$layout/server.json") &&
      curl -sf "$url/health" >/dev/null && break
    sleep 0.2
  done
  curl -sf "$url/health" >/dev/null || { cat "$out/$layout.log" >&2; exit 1; }
  for c in $LEVELS; do
    n=$(( c * 2 > REQ_MIN ? c * 2 : REQ_MIN ))
    python3 bench/serve_load.py "$url" configs/prompts/tales16.jsonl --concurrency "$c" --requests "$n" --max-tokens 64 |
      python3 -c 'import json,sys; j=json.load(sys.stdin); j["layout"]=sys.argv[1]; print(json.dumps(j))' "$layout" |
      tee -a "$out/results.jsonl"
  done
  kill -TERM $pid; wait $pid || true
done
python3 - "$out/results.jsonl" "$out/engine.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
eng = json.load(open(sys.argv[2]))
one = next((r for r in rows if r["layout"] == "dp1" and r["concurrency"] == 1), None)
print(f'\nengine alone (hpcinfer bench, batch 1): {eng["decode_tok_s"]:.1f} tok/s decode, '
      f'{eng["roofline_fraction_read_bw"]:.2f} of the read-bandwidth roofline ({eng["read_bw_gbs"]:.1f} GB/s); batch 8: '
      f'{eng["decode_b8_tok_s"]:.1f} tok/s')
if one:
    print(f'served, one stream (dp1, concurrency 1): {one["output_tok_per_s"]:.1f} tok/s = '
          f'{one["output_tok_per_s"] / eng["decode_tok_s"]:.2f}x the engine alone (HTTP, scheduling, prefill, TTFT included)')
base = {r["concurrency"]: r for r in rows if r["layout"] == "dp1"}
print("\n| layout | conc. | req/s | out tok/s | vs dp1 | TTFT p50 / p99 (ms) | ITL p50 / p99 (ms) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    b = base.get(r["concurrency"])
    ratio = f'{r["output_tok_per_s"] / b["output_tok_per_s"]:.2f}x' if b else "-"
    ms = lambda v: f"{1000 * v:.0f}" if v is not None else "-"
    print(f'| {r["layout"]} | {r["concurrency"]} | {r["req_per_s"]:.2f} | {r["output_tok_per_s"]:.0f} | {ratio} | '
          f'{ms(r["ttft_p50_s"])} / {ms(r["ttft_p99_s"])} | {ms(r["itl_p50_s"])} / {ms(r["itl_p99_s"])} |')
PY
