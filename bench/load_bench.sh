#!/usr/bin/env bash
# Weight loading side by side with llama.cpp (issue 20), not a test:
#   PEER=/scratch/peer ROUNDS=2 bash bench/load_bench.sh
# PEER as ../shared/peer/README.md sets it up (llama.cpp c392e509 built there, $PEER/models/tinyllama-BF16.gguf made
# with its make_random_gguf.py + llama-quantize --pure). Random tinyllama-1.1b, 2 threads, files in the page cache:
#   llama.cpp   llama-bench -p 0 -n 1 (load, warm-up and one token) on the BF16 GGUF
#   hpcinfer    `logits --tokens 1` on the same GGUF (bf16; int8 quantized at load) and on an HF directory (bf16, f32);
#               and with the packed-weight cache (--weights-cache): round 1 writes it, later rounds map it
# Each row: wall, user, sys, peak RSS (/usr/bin/time), and hpcinfer's own figures (GB packed, load / read / pack
# seconds, GB/s). Then, where /proc/sys/vm/drop_caches is writable, the cold case: dd of the GGUF beside hpcinfer
# loading it, each after dropping the caches. Rounds interleave the runs; compare rows of one round.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${PEER:?set PEER to the scratch folder of ../shared/peer/README.md}
BIN=${HPCINFER:-build/bin/hpcinfer}
ROUNDS=${ROUNDS:-2}
GGUF=$PEER/models/tinyllama-BF16.gguf
HF=${HF_DIR:-/tmp/load-bench-tinyllama}
LB=$PEER/llama.cpp/build/bin/llama-bench
[ -f "$GGUF" ] || { echo "load_bench.sh: $GGUF missing (../shared/peer/README.md step 3)" >&2; exit 2; }
[ -x "$LB" ] || { echo "load_bench.sh: $LB missing (../shared/peer/README.md step 2)" >&2; exit 2; }
[ -f "$HF/model.safetensors" ] || "$BIN" make-model --preset tinyllama-1.1b --seed 7 --out "$HF" > /dev/null
# The packed-weight cache (--weights-cache): emptied here, so round 1 writes it (miss) and later rounds map it (hit).
CACHE=${CACHE:-/tmp/load-bench-cache}
rm -rf "$CACHE"

timed() {  # name command...: one table row
  local name=$1; shift
  local err; err=$(mktemp)
  /usr/bin/time -f "TIME %e %U %S %M" "$@" > /dev/null 2> "$err" || { echo "| $name | failed: $(tail -2 "$err" | tr '\n' ' ') |"; rm -f "$err"; return; }
  read -r _ wall user sys rss < <(grep '^TIME' "$err")
  local own; own=$(grep -o 'weights: .* packed in .*' "$err" | sed 's/weights: //' || true)
  grep -q 'mapped from the packed-weight cache' "$err" && name="$name: hit"
  grep -q 'packed-weight cache .* written' "$err" && name="$name: miss, file written"
  printf '| %s | %s | %s | %s | %s | %.2f | %s |\n' "$name" "$round" "$wall" "$user" "$sys" "$(awk -v k="$rss" 'BEGIN {print k / 1048576}')" "${own:--}"
  rm -f "$err"
}

echo "| run | round | wall s | user s | sys s | peak RSS GB | hpcinfer: packed, load (read, pack), rate |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  cat "$GGUF" "$HF/model.safetensors" > /dev/null  # both in the page cache
  timed "llama.cpp llama-bench BF16 gguf" "$LB" -m "$GGUF" -p 0 -n 1 -r 1 -t 2
  timed "hpcinfer bf16 gguf" "$BIN" logits --model "$GGUF" --weights bf16 --threads 2 --tokens 1 --out /dev/null
  timed "hpcinfer bf16 hf" "$BIN" logits --model "$HF" --weights bf16 --threads 2 --tokens 1 --out /dev/null
  timed "hpcinfer int8 gguf (quantized at load)" "$BIN" logits --model "$GGUF" --weights int8 --threads 2 --tokens 1 --out /dev/null
  timed "hpcinfer f32 hf" "$BIN" logits --model "$HF" --weights f32 --threads 2 --tokens 1 --out /dev/null
  timed "hpcinfer bf16 gguf, packed cache" "$BIN" logits --model "$GGUF" --weights bf16 --threads 2 --tokens 1 --out /dev/null --weights-cache "$CACHE"
  timed "hpcinfer int8 gguf, packed cache" "$BIN" logits --model "$GGUF" --weights int8 --threads 2 --tokens 1 --out /dev/null --weights-cache "$CACHE"
done
if sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
  round=cold
  dd if="$GGUF" of=/dev/null bs=16M 2>&1 | tail -1 | sed 's/^/dd cold read: /'
  sync && echo 3 > /proc/sys/vm/drop_caches
  timed "hpcinfer bf16 gguf, cold file" "$BIN" logits --model "$GGUF" --weights bf16 --threads 2 --tokens 1 --out /dev/null
  sync && echo 3 > /proc/sys/vm/drop_caches
  timed "hpcinfer bf16 gguf, packed cache, cold file" "$BIN" logits --model "$GGUF" --weights bf16 --threads 2 --tokens 1 --out /dev/null --weights-cache "$CACHE"
else
  echo "(cold case skipped: /proc/sys/vm/drop_caches is not writable here)"
fi
