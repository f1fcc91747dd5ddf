#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_*.cpp) with libFuzzer under ASan + UBSan.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 10 s each, every target)
# Builds build-fuzz/ with clang-14 (HPCINFER_FUZZ=ON: the core and the harnesses instrumented), seeds each corpus
# from ../shared/data and the repository's configs (build-fuzz/corpus/<target>/, kept between runs so that long
# runs accumulate), runs the targets two at a time (JOBS), and prints executions and findings per target; a crash,
# leak, sanitizer report or timeout leaves its input in build-fuzz/artifacts/<target>/ and fails the script.
# Env: JOBS (targets at once, default 2), RSS_MB (per-process memory limit, default 2048: a loader allocating what a
# header claims is a finding), BUILD_DIR (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-10}
shift || true
BUILD=${BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}
RSS_MB=${RSS_MB:-2048}
DATA=$(cd .. && pwd)/shared/data

command -v clang++-14 >/dev/null || { echo "fuzz.sh: clang++-14 is needed (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DHPCINFER_FUZZ=ON \
    -DHPCINFER_BUILD_TESTS=OFF -DHPCINFER_WITH_CUDA=OFF -DHPCINFER_WITH_MPI=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)" --target fuzzers

TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do TARGETS+=("$(basename "$f" .cpp)"); done
fi

# Seeds: real files of each kind (whole, and cut short: truncations are half of what hostile files look like).
seed() {  # seed TARGET FILE [PREFIX_BYTE]
  local dir=$BUILD/seeds/$1 name
  mkdir -p "$dir"
  [ -f "$2" ] || return 0
  name=$(basename "$2")
  if [ -n "${3:-}" ]; then
    { printf "\\x$3"; cat "$2"; } > "$dir/$name"
    { printf "\\x$3"; head -c 4096 "$2"; } > "$dir/$name.head"
  else
    cp "$2" "$dir/$name"
    head -c 65536 "$2" > "$dir/$name.head"
  fi
}
rm -rf "$BUILD/seeds"
for f in "$DATA"/models/*/*.gguf "$DATA"/tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf; do seed fuzz_gguf "$f"; done
for f in "$DATA"/reference/hf/*/model.safetensors; do seed fuzz_safetensors "$f"; done
for f in "$DATA"/reference/hf/*/config.json; do
  mkdir -p "$BUILD/seeds/fuzz_hf_config"; cp "$f" "$BUILD/seeds/fuzz_hf_config/$(basename "$(dirname "$f")").json"
done
mkdir -p "$BUILD/seeds/fuzz_hf_index"
python3 - "$BUILD/seeds/fuzz_hf_index/index.json" <<'EOF'
import json, sys
names = ["model.embed_tokens.weight", "model.norm.weight"] + [
    "model.layers.%d.%s.weight" % (i, t) for i in range(2)
    for t in ["input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
              "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]]
json.dump({"metadata": {"total_size": 1}, "weight_map": {n: "model.safetensors" for n in names}}, open(sys.argv[1], "w"))
EOF
seed fuzz_llama2c "$DATA/models/stories260K/stories260K.bin"
seed fuzz_tokenizer "$DATA/models/stories260K/tok512.bin" 01
seed fuzz_tokenizer "$DATA/tokenizers/llama2-sentencepiece/tokenizer.bin" 01
for f in "$DATA"/reference/hf/*/tokenizer.json; do [ -f "$f" ] && seed fuzz_tokenizer "$f" 00; done
mkdir -p "$BUILD/seeds/fuzz_experiment_yaml" "$BUILD/seeds/fuzz_prompts" "$BUILD/seeds/fuzz_store" "$BUILD/seeds/fuzz_http_request" \
  "$BUILD/seeds/fuzz_packed_cache"
# fuzz_packed_cache: 2 bytes of place (a fraction of the file), then what is written there (nothing: cut there).
printf '\x00\x80' > "$BUILD/seeds/fuzz_packed_cache/cut_half"
printf '\x00\x00GGUF' > "$BUILD/seeds/fuzz_packed_cache/magic"
printf '\x40\x00\xff\xff\xff\xff\xff\xff\xff\x7f' > "$BUILD/seeds/fuzz_packed_cache/index_offset"
printf '\x00\xf8{"key":"x","matrices":{}}' > "$BUILD/seeds/fuzz_packed_cache/index_tail"
cp configs/*.yaml configs/experiments/*.yaml "$BUILD/seeds/fuzz_experiment_yaml/"
cp "$DATA"/prompts/*.jsonl configs/prompts/*.jsonl "$BUILD/seeds/fuzz_prompts/"
python3 - "$BUILD/seeds" <<'EOF'
import json, struct, sys
d = sys.argv[1]
def frame(op, key, value):
    return bytes([op]) + struct.pack("<I", len(key)) + key + struct.pack("<Q", len(value)) + value
open(d + "/fuzz_store/set_get", "wb").write(b"\x01" + frame(1, b"hpcinfer/job/addr/0", b"127.0.0.1:1234") + frame(2, b"hpcinfer/job/addr/0", b""))
open(d + "/fuzz_store/unadmitted", "wb").write(b"\x00" + frame(1, b"k", b"v"))
open(d + "/fuzz_store/huge_len", "wb").write(b"\x01" + bytes([1]) + struct.pack("<I", 1) + b"k" + struct.pack("<Q", 1 << 30))
bodies = [
    (1, {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0.5, "logprobs": 2}),
    (1, {"prompt": [[1, 2, 3], "text"], "n": 2, "stop": ["."], "echo": True, "max_tokens": 0, "logprobs": 1}),
    (0, {"messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": {"include_usage": True}}),
    (1, {"prompt": "x", "top_p": 0.9, "top_k": 5, "min_p": 0.1, "seed": 7, "max_tokens": 4}),
]
for i, (completions, b) in enumerate(bodies):
    open("%s/fuzz_http_request/b%d" % (d, i), "wb").write(bytes([completions]) + json.dumps(b).encode())
EOF

mkdir -p "$BUILD/artifacts" "$BUILD/logs"
run_one() {
  local t=$1 corpus=$BUILD/corpus/$1
  mkdir -p "$corpus" "$BUILD/artifacts/$t"
  "$BUILD/fuzz/$t" -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" -timeout=20 \
    -max_len=1300000 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t/" \
    "$corpus" "$BUILD/seeds/$t" > "$BUILD/logs/$t.log" 2>&1
}
export -f run_one
export BUILD SECS RSS_MB
status=0
printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {} || echo "{}: FAILED (exit $?)"' | tee "$BUILD/logs/failed.txt"
total=0
printf '%-24s %12s %10s %8s  %s\n' target executions exec/s corpus findings
for t in "${TARGETS[@]}"; do
  log=$BUILD/logs/$t.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  found=$(find "$BUILD/artifacts/$t" -type f | wc -l)
  printf '%-24s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$(find "$BUILD/corpus/$t" -type f | wc -l)" \
    "$([ "$found" -eq 0 ] && echo none || echo "$found in $BUILD/artifacts/$t (log $log)")"
  total=$((total + ${execs:-0}))
  [ "$found" -eq 0 ] || status=1
  grep -q 'ERROR: libFuzzer\|SUMMARY: .*Sanitizer' "$log" && status=1
done
echo "fuzz.sh: $total executions in all, ${SECS} s per target"
[ -s "$BUILD/logs/failed.txt" ] && status=1
exit $status
