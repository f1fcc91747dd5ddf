#!/usr/bin/env bash
# Submits a model-variant study (scripts/llm_study.py) as Slurm jobs: one slurm/run_llm.sbatch job per variant x
# suite (the seed study: baseline and palu x infer, ppl, mc = 6 jobs), each variant that must be made (palu compress)
# first as a job of its own that its suite jobs wait for (--dependency=afterok). Unique run ids (the job ids), logs
# in slurm_logs/<experiment>_%j.out (SLURM_LOG_DIR names another directory). Tested on the two-node cluster of
# slurm/cluster.sh.
#
# Usage (from the repository root):
#   bash slurm/launch_llm_night.sh [--dry-run] SPEC [--set k=v]... [-- SBATCH_ARGS...]
#   e.g. bash slurm/launch_llm_night.sh configs/experiments/palu_vs_baseline.yaml -- -p night -t 06:00:00
# Prints one line per job (variant, suite, job id) and, at the end, the report command to run when they are done.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0
[ "${1:-}" = "--dry-run" ] && { dry=1; shift; }
SPEC=${1:?usage: slurm/launch_llm_night.sh [--dry-run] SPEC [--set k=v]... [-- SBATCH_ARGS...]}
shift
[ -f "$SPEC" ] || { echo "launch_llm_night: no such spec: $SPEC" >&2; exit 2; }
sets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  [ "$1" = "--set" ] || { echo "launch_llm_night: expected --set k=v or --, got '$1'" >&2; exit 2; }
  sets+=(--set "$2"); shift 2
done
[ "${1:-}" = "--" ] && shift
sbatch_args=("$@")

# The spec as the study reads it (with the --set overrides): experiment, output root, variants (those to make) and
# suites. A bad spec stops here, before anything is submitted.
set_json=$(printf '%s\n' "${sets[@]}" | grep -v '^--set$' || true)
read_spec() {
  PYTHONPATH=scripts "${PYTHON:-python3}" - "$SPEC" "$set_json" <<'PY'
import sys, llm_study
sets = [s for s in sys.argv[2].split("\n") if s]
try:
    spec = llm_study.load_spec(sys.argv[1], sets)
except llm_study.SpecError as e:
    sys.exit(f"launch_llm_night: {e}")
print(spec["experiment"], spec.get("output_root", "results"))
print(" ".join(spec["variants"]))
print(" ".join(v for v, s in spec["variants"].items() if "ratio" in s))
print(" ".join(spec["suites"]))
PY
}
spec_lines=$(read_spec)
{ read -r exp root; read -r variants; read -r made; read -r suites; } <<<"$spec_lines"
logs=${SLURM_LOG_DIR:-slurm_logs}
mkdir -p "$logs"
submit() {  # prints the job id
  local args=(--parsable --job-name "${exp}_$1_$2" --output "$logs/${exp}_%j.out" "${sbatch_args[@]}")
  [ -n "${3:-}" ] && args+=(--dependency "afterok:$3")
  if [ $dry -eq 1 ]; then
    echo "sbatch ${args[*]} slurm/run_llm.sbatch $SPEC $1 $2 ${sets[*]}" >&2
    echo "dry$RANDOM"
  else
    sbatch "${args[@]}" slurm/run_llm.sbatch "$SPEC" "$1" "$2" "${sets[@]}"
  fi
}
for v in $variants; do
  dep=""
  if [[ " $made " == *" $v "* ]]; then
    dep=$(submit "$v" compress)
    echo "$v compress job $dep"
  fi
  for s in $suites; do
    id=$(submit "$v" "$s" "$dep")
    echo "$v $s job $id"
  done
done
echo "launch_llm_night: when the jobs are done: python3 scripts/llm_study.py --report $root/$exp"
