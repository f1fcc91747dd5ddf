#!/usr/bin/env bash
# Submits one Slurm job (slurm/submit.sbatch) per point of a grid of --set overrides.
# Tested on the two-node cluster of slurm/cluster.sh; --dry-run prints the sbatch commands and submits nothing.
#
# Usage (from the repository root):
#   slurm/sweep.sh [--dry-run] [--exp NAME] CONFIG KEY=V1,V2,... [KEY=...]... [-- SBATCH_ARGS...]
#   e.g. slurm/sweep.sh configs/local_pp2_gloo.yaml batching.micro_batches=1,2,4,8 -- -N 2 -t 00:20:00
# Values are split on ',' (or on ';' when the list holds one, for list values: 'world.layer_split=[2,3];[3,2]').
# Each point gets a unique run id <exp>_<index>_<key>-<value>..., results in results/<exp>/<run id>/, and its
# batch log in slurm_logs/<exp>_<jobid>.out; results/<exp>/sweep_<stamp>.tsv lists run id, job id and overrides
# of every point. When a point sets world.tp or world.pp, --ntasks = tp x pp (the other
# factor taken from the config's world: block, default 1); otherwise SBATCH_ARGS (or the #SBATCH default) decide.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0; exp=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --exp) exp=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
CONFIG=${1:?usage: slurm/sweep.sh [--dry-run] [--exp NAME] CONFIG KEY=V1,V2 ... [-- SBATCH_ARGS...]}
shift
[ -f "$CONFIG" ] || { echo "sweep.sh: no such config: $CONFIG" >&2; exit 2; }
exp=${exp:-$(basename "$CONFIG" .yaml)}

keys=(); lists=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  [[ "$1" == *=* ]] || { echo "sweep.sh: expected KEY=V1,V2,... got '$1'" >&2; exit 2; }
  keys+=("${1%%=*}"); lists+=("${1#*=}"); shift
done
[ "${1:-}" = "--" ] && shift
sbatch_args=("$@")

# world.tp / world.pp as written in CONFIG (simple two-level YAML), default 1.
config_world() {
  awk -v k="$1" '/^[^ #]/ {inw = ($0 ~ /^world:/)} inw && $1 == k":" {print $2; f=1} END {if (!f) print 1}' "$CONFIG"
}

# The grid: one line per point, fields "key=value" separated by a tab.
points=("")
for i in "${!keys[@]}"; do
  sep=','; [[ "${lists[$i]}" == *';'* ]] && sep=';'
  IFS="$sep" read -r -a vals <<<"${lists[$i]}"
  next=()
  for p in "${points[@]}"; do
    for v in "${vals[@]}"; do next+=("${p:+$p$'\t'}${keys[$i]}=$v"); done
  done
  points=("${next[@]}")
done

stamp=$(date +%Y%m%d-%H%M%S)
manifest=results/$exp/sweep_$stamp.tsv
if [ $dry -eq 0 ]; then
  mkdir -p slurm_logs "results/$exp"   # Slurm does not create the --output directory
  [ ! -e "$manifest" ] || { echo "sweep.sh: $manifest exists (two sweeps in one second?): try again" >&2; exit 1; }
  printf 'run_id\tjob_id\toverrides\n' >"$manifest"
fi
n=0
for p in "${points[@]}"; do
  IFS=$'\t' read -r -a kvs <<<"$p"
  sets=(); tag=""; tp=""; pp=""
  for kv in "${kvs[@]}"; do
    [ -n "$kv" ] || continue
    sets+=(--set "$kv")
    tag+="_$(printf '%s' "${kv##*.}" | tr -c 'A-Za-z0-9=_-' '-' | tr '=' '-')"
    case "${kv%%=*}" in world.tp) tp=${kv#*=} ;; world.pp) pp=${kv#*=} ;; esac
  done
  run_id="${exp}_${stamp}_$(printf '%03d' "$n")${tag}"
  extra=()
  if [ -n "$tp$pp" ]; then
    extra+=(--ntasks=$(( ${tp:-$(config_world tp)} * ${pp:-$(config_world pp)} )))
  fi
  cmd=(sbatch --job-name="$exp" --output="slurm_logs/${exp}_%j.out"
       --export="ALL,HPCINFER_EXP=$exp,HPCINFER_RUN_ID=$run_id" "${extra[@]}" "${sbatch_args[@]}"
       slurm/submit.sbatch "$CONFIG" "${sets[@]}")
  if [ $dry -eq 1 ]; then
    printf '%q ' "${cmd[@]}"; echo
  else
    job=$("${cmd[0]}" --parsable "${cmd[@]:1}")
    job=${job%%;*}   # --parsable prints "id" or "id;cluster"
    printf '%s\t%s\t%s\n' "$run_id" "$job" "${kvs[*]}" >>"$manifest"
    echo "sweep.sh: job $job: $run_id"
  fi
  n=$((n + 1))
done
echo "sweep.sh: $n point(s) of experiment '$exp'$([ $dry -eq 1 ] && echo ' (dry run, nothing submitted)');" \
     "results in results/$exp/, logs in slurm_logs/${exp}_<jobid>.out$([ $dry -eq 1 ] || echo ", list in $manifest")"
