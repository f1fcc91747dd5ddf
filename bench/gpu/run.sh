#!/usr/bin/env bash
# The GPU check of the cuda backend, one unattended run on a GPU machine (issue 13), well inside 8 minutes:
#   bash bench/gpu/run.sh OUT_DIR
# 1. the hpcinfer build: the one carried from the CI-like machine (bench/gpu/prepare.sh: build/ plus the Debian
#    libraries it links, in .gpu-bundle/) if it runs here, else configure and build here on all cores (needs the
#    Debian packages of scripts/setup.sh; the GPU image may lack them: the log says which step failed);
# 2. the CUDA conformance and whole-model checks: ctest's BackendOps (every op of every usable backend against
#    float64; cuda joins by being found), then `hpcinfer run` with device: cuda against device: cpu on stories260K,
#    tiny-random and the reference/hf models (tokens must be equal), pp=2 on one GPU over gloo staging;
# 3. the device's copy bandwidth (Backend::copy_bandwidth) and `hpcinfer bench --device cuda` on a random
#    llama-3-8b (make-model) in bf16 and int8: prefill 512, decode batch 1 / 8 / 64, tokens/s and GB/s against the
#    copy bandwidth;
# 4. the same model through PyTorch + transformers eager decode on the same GPU when this python has them.
# Everything goes to OUT_DIR: run.log, env.txt, conformance.log, models.tsv, bench_*.json, torch.json.
set -uo pipefail
OUT=${1:?usage: bench/gpu/run.sh OUT_DIR}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
exec > >(tee -a "$OUT/run.log") 2>&1
t0=$(date +%s)
step() { echo "== $(( $(date +%s) - t0 )) s: $*"; }

step "environment"
{ date -u; uname -a; nvidia-smi || true; nvcc --version || true; python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' || true; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

BIN=build/bin/hpcinfer
TEST_OPS=build/tests/test_backend_ops
DATA=${HPCINFER_DATA:-$ROOT/../shared/data}
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
if [ -x .gpu-bundle/build/bin/hpcinfer ]; then  # bench/gpu/prepare.sh's bundle
  BIN=$ROOT/.gpu-bundle/build/bin/hpcinfer
  TEST_OPS=$ROOT/.gpu-bundle/build/tests/test_backend_ops
  DATA=$ROOT/.gpu-bundle/data
  export LD_LIBRARY_PATH="$ROOT/.gpu-bundle/lib:$LD_LIBRARY_PATH" HPCINFER_TEST_BIN=$BIN
  export HPCINFER_TEST_PLUGIN_DIR=$ROOT/.gpu-bundle/build/lib/hpcinfer
  if ! "$BIN" --version >/dev/null 2>&1; then  # an older glibc here: start the programs through the carried one
    step "the bundle does not start directly ($("$BIN" --version 2>&1 | head -1)); using its glibc"
    G=$ROOT/.gpu-bundle/glibc
    mkdir -p /tmp/hpcinfer-bin
    printf '#!/bin/sh\nexec %s/ld-linux-x86-64.so.2 --library-path %s:%s "%s" "$@"\n' "$G" "$G" "$LD_LIBRARY_PATH" "$ROOT/.gpu-bundle/build/bin/hpcinfer" > /tmp/hpcinfer-bin/hpcinfer
    printf '#!/bin/sh\nexec %s/ld-linux-x86-64.so.2 --library-path %s:%s "%s" "$@"\n' "$G" "$G" "$LD_LIBRARY_PATH" "$TEST_OPS" > /tmp/hpcinfer-bin/test_backend_ops
    chmod +x /tmp/hpcinfer-bin/*
    BIN=/tmp/hpcinfer-bin/hpcinfer
    TEST_OPS=/tmp/hpcinfer-bin/test_backend_ops
    export HPCINFER_TEST_BIN=$BIN
  fi
fi
if ! "$BIN" --version >/dev/null 2>&1; then
  step "no runnable build ($("$BIN" --version 2>&1 | head -2)); building here"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT/configure.log" 2>&1 &&
    cmake --build build -j"$(nproc)" > "$OUT/build.log" 2>&1 || { step "build failed: see configure.log / build.log"; tail -30 "$OUT/configure.log" "$OUT/build.log"; exit 1; }
  BIN=build/bin/hpcinfer
  TEST_OPS=build/tests/test_backend_ops
fi
"$BIN" plugins | tee "$OUT/plugins.txt"

step "conformance: every op and weights format of the cuda backend against float64 (ctest BackendOps)"
timeout 300 "$TEST_OPS" --gtest_filter='*cuda*:*Cuda*' 2>&1 | tee "$OUT/conformance.log" | tail -40

step "whole models: device cuda against device cpu, greedy tokens"
printf 'model\tstrategy\tcpu_vs_cuda\n' > "$OUT/models.tsv"
compare_model() {  # name path [extra --set ...]
  local name=$1 path=$2; shift 2
  local dir="$OUT/runs/$name"; mkdir -p "$dir"
  printf '{"id":"a","prompt_ids":[1,15,27,99,4,8]}\n{"id":"b","prompt_ids":[1,200,31,7]}\n' > "$dir/prompts.jsonl"
  local cpu_args=("${@//plugins.comm=nccl/plugins.comm=gloo}")  # the reference: nccl moves device memory only
  for dev in cpu cuda; do
    local args=("$@")
    [ "$dev" = cpu ] && args=("${cpu_args[@]}")
    cat > "$dir/$dev.yaml" <<YAML
model: {path: $path}
device: $dev
inputs: {prompts: $dir/prompts.jsonl}
generation: {max_new_tokens: 24, temperature: 0}
outputs: {dir: $dir/out_$dev}
YAML
    if [ "${RANKS:-1}" -gt 1 ]; then
      timeout 180 "$BIN" launch -n "$RANKS" "$dir/$dev.yaml" "${args[@]}" > "$dir/$dev.log" 2>&1 || echo "run $dev failed: $(tail -3 "$dir/$dev.log")"
    else
      timeout 120 "$BIN" run "$dir/$dev.yaml" "${args[@]}" > "$dir/$dev.log" 2>&1 || echo "run $dev failed: $(tail -3 "$dir/$dev.log")"
    fi
  done
  local same=no
  if [ -s "$dir/out_cpu/completions.jsonl" ] && cmp -s <(python3 -c "import json,sys;[print(json.loads(l)['token_ids']) for l in open(sys.argv[1])]" "$dir/out_cpu/completions.jsonl") \
      <(python3 -c "import json,sys;[print(json.loads(l)['token_ids']) for l in open(sys.argv[1])]" "$dir/out_cuda/completions.jsonl" 2>/dev/null); then same=yes; fi
  printf '%s\t%s\t%s\n' "$name" "${*:-single}" "$same" | tee -a "$OUT/models.tsv"
}
for g in "$DATA"/models/stories260K.gguf "$DATA"/models/stories260K/stories260K.gguf \
         "$DATA"/models/llama-2-tiny-random.gguf "$DATA"/models/llama-2-tiny-random-gguf/llama-2-tiny-random.gguf; do
  [ -f "$g" ] && compare_model "$(basename "$g" .gguf)" "$g"
done
for ref in "$DATA"/reference/hf/*/; do
  [ -f "$ref/config.json" ] && compare_model "hf-$(basename "$ref")" "$ref"
done
"$BIN" make-model --preset tiny-gqa --out "$OUT/tiny-gqa" > /dev/null 2>&1 && {
  compare_model tiny-gqa "$OUT/tiny-gqa"
  RANKS=2 compare_model tiny-gqa-pp2-gloo "$OUT/tiny-gqa" --set plugins.strategy=pp --set world.pp=2 --set plugins.comm=gloo
  RANKS=2 compare_model tiny-gqa-tp2-gloo "$OUT/tiny-gqa" --set plugins.strategy=tp_pp --set world.tp=2 --set plugins.comm=gloo
  RANKS=2 compare_model tiny-gqa-tp2-nccl "$OUT/tiny-gqa" --set plugins.strategy=tp_pp --set world.tp=2 --set plugins.comm=nccl
}

step "benchmark: random llama-3-8b, bf16 and int8"
[ -f /tmp/llama3-8b/config.json ] ||
  "$BIN" make-model --preset llama-3-8b --seed 7 --out /tmp/llama3-8b > "$OUT/make_model.log" 2>&1 || tail -5 "$OUT/make_model.log"
for w in bf16 int8; do
  for b in 8 64; do
    timeout 240 "$BIN" bench --model /tmp/llama3-8b --device cuda --weights "$w" --prompt-tokens 512 --decode-tokens 32 \
      --batch "$b" --trials 3 --bw-mib 2048 --json > "$OUT/bench_${w}_b$b.json" 2> "$OUT/bench_${w}_b$b.err" ||
      { echo "bench $w b$b failed: $(tail -3 "$OUT/bench_${w}_b$b.err")"; continue; }
    python3 -c "import json,sys;j=json.load(open(sys.argv[1]));print(sys.argv[2],'prefill %.0f tok/s, decode b1 %.1f tok/s (%.0f GB/s = %.0f%% of copy %.0f GB/s), decode b%d %.1f tok/s'%(j['prefill_tok_s'],j['decode_tok_s'],j['decode_gbs'],100*j['roofline_fraction'],j['mem_bw_gbs'],j['batch'],j['decode_b8_tok_s']))" "$OUT/bench_${w}_b$b.json" "$w"
  done
done

step "peer: PyTorch + transformers eager decode of the same model (if present)"
timeout 200 python3 - "$OUT/torch.json" <<'PY' || echo "torch peer failed or absent"
import json, sys, time
try:
    import torch, transformers
except Exception as e:
    print("no torch/transformers:", e); sys.exit(0)
m = transformers.AutoModelForCausalLM.from_pretrained("/tmp/llama3-8b", torch_dtype=torch.bfloat16).cuda().eval()
ids = torch.randint(3, m.config.vocab_size, (1, 512), device="cuda")
with torch.no_grad():
    out = m(ids, use_cache=True); torch.cuda.synchronize()
    t = time.time(); out = m(ids, use_cache=True); torch.cuda.synchronize(); prefill = 512 / (time.time() - t)
    past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
    t = time.time()
    for _ in range(32):
        o = m(nxt, past_key_values=past, use_cache=True); past, nxt = o.past_key_values, o.logits[:, -1:].argmax(-1)
    torch.cuda.synchronize(); decode = 32 / (time.time() - t)
r = {"torch": torch.__version__, "transformers": transformers.__version__, "prefill_tok_s": prefill, "decode_tok_s": decode}
print(r); json.dump(r, open(sys.argv[1], "w"))
PY
step "done"
