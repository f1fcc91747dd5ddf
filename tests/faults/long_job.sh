# Sourced by the fault tests (tests/faults/test_*_faults.sh): the long job every fault lands in, and the check of
# what it wrote. stories260K, f32, world.timeout_s 2, 300 prompts x 400 new tokens, one slot.
#   write_long_job DIR MODEL TOKENIZER [YAML LINES...]   writes DIR/prompts.jsonl and DIR/exp.yaml (extra top-level
#                                                        YAML lines appended, e.g. "threads: 1")
#   whole_json_lines FILE                                 exit 0 when every line of FILE is whole JSON (prints the count)

write_long_job() {
  local dir=$1 model=$2 tok=$3
  shift 3
  python3 - "$dir/prompts.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(300):
        f.write(json.dumps({"id": "m%d" % i, "prompt": "Once upon a time %d" % i}) + "\n")
PY
  {
    printf 'model:\n  path: %s\n  tokenizer: %s\n' "$model" "$tok"
    printf 'plugins:\n  weights: f32\nworld:\n  timeout_s: 2\n'
    printf 'inputs:\n  prompts: %s\ngeneration:\n  max_new_tokens: 400\nbatching:\n  batch_size: 1\n' "$dir/prompts.jsonl"
    local line
    for line in "$@"; do printf '%s\n' "$line"; done
  } > "$dir/exp.yaml"
}

whole_json_lines() {
  python3 - "$1" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    json.loads(line)
    n += 1
print("  %d whole completion lines" % n)
PY
}
