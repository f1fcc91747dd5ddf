#!/usr/bin/env bash
# Installs what the reports need for the python3 on PATH: matplotlib for `hpcinfer report`'s PNG plots (it runs
# scripts/plot_report.py; `hpcinfer report --python PY` picks another) and for scripts/llm_study.py's plots, and
# PyYAML for scripts/llm_study.py's study specs. Only where reports and studies are made: the build, the runs and
# the tables need none of it, and the tests skip their PNG / study checks without it.
# Idempotent: when both already import, nothing is touched.
set -euo pipefail

PY=${PYTHON:-python3}
if "$PY" -c 'import matplotlib, yaml' 2>/dev/null; then
  echo "setup_report: matplotlib $("$PY" -c 'import matplotlib; print(matplotlib.__version__)') and PyYAML already importable by $PY"
  exit 0
fi
echo "setup_report: installing matplotlib and PyYAML for $PY ($("$PY" -c 'import sys; print(sys.executable)'))"
if ! "$PY" -m pip install --quiet matplotlib pyyaml; then
  # Debian's own python3 refuses pip (PEP 668, externally managed): its packages then.
  if [ "$("$PY" -c 'import sys; print(sys.executable)')" = /usr/bin/python3 ] && command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib python3-yaml
  else
    echo "setup_report: pip could not install matplotlib / pyyaml for $PY" >&2
    exit 1
  fi
fi
"$PY" -c 'import matplotlib, yaml; print("setup_report: done, matplotlib", matplotlib.__version__, "PyYAML", yaml.__version__)'
