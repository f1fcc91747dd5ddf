#!/usr/bin/env bash
# Installs what `hpcinfer report` needs for its PNG plots: matplotlib for the python3 on PATH (the one the report
# runs scripts/plot_report.py with; `hpcinfer report --python PY` picks another). Only where reports are made: the
# build, the runs and the tables need none of it, and the tests skip their PNG check without it.
# Idempotent: when matplotlib already imports, nothing is touched.
set -euo pipefail

PY=${PYTHON:-python3}
if "$PY" -c 'import matplotlib' 2>/dev/null; then
  echo "setup_report: matplotlib $("$PY" -c 'import matplotlib; print(matplotlib.__version__)') already importable by $PY"
  exit 0
fi
echo "setup_report: installing matplotlib for $PY ($("$PY" -c 'import sys; print(sys.executable)'))"
if ! "$PY" -m pip install --quiet matplotlib; then
  # Debian's own python3 refuses pip (PEP 668, externally managed): its package then.
  if [ "$("$PY" -c 'import sys; print(sys.executable)')" = /usr/bin/python3 ] && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib
  else
    echo "setup_report: pip could not install matplotlib for $PY" >&2
    exit 1
  fi
fi
"$PY" -c 'import matplotlib; print("setup_report: done, matplotlib", matplotlib.__version__)'
