#!/usr/bin/env bash
# Installs what the serve tests' clients need (tests/serve/test_serve.py): the `openai` Python package from PyPI
# for the python3 on PATH (Debian has no package of it). Idempotent: when it already imports, nothing is touched.
# The tests skip (with the reason) without it.
set -euo pipefail
PY=${PYTHON:-python3}
if "$PY" -c 'import openai' 2>/dev/null; then
  echo "setup_serve_test: openai $("$PY" -c 'import openai; print(openai.__version__)') already importable by $PY"
  exit 0
fi
# A bare Debian python3 may lack pip: its package first (root or sudo).
if ! "$PY" -m pip --version >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip
fi
# Debian's own python3 refuses pip (PEP 668): the user's site then, which the same interpreter reads.
"$PY" -m pip install --quiet openai 2>/dev/null || "$PY" -m pip install --quiet --user --break-system-packages openai
"$PY" -c 'import openai; print("setup_serve_test: done, openai", openai.__version__)'
