#!/usr/bin/env bash
# hpcinfer from the charliecloud image of containers/build_charliecloud.sh, under the Slurm cluster of slurm/cluster.sh:
#   bash containers/test_charliecloud.sh SOURCE_DIR BUILD_DIR [IMAGE_DIR]     (ctest -L container; IMAGE_DIR default
#                                                                              $HPCINFER_CH_IMAGE or /var/tmp/hpcinfer-ch)
# Starts a cluster in a scratch directory, runs configs/local_pp2_gloo.yaml (file-store rendezvous) and
# configs/local_pp2_mpi.yaml (srun --mpi=pmix) as `srun -N 2 --ntasks-per-node=1 ch-run IMAGE -- hpcinfer run ...`,
# and checks that the greedy token ids equal a single-process run of the host's build. Stops the cluster on exit.
# Exit 77 (skip) when not root, without ch-run or the Slurm packages, without the image (building it takes about
# 5 minutes, so CI does not), or without ../shared/data. About 11 s.
set -euo pipefail

SRC=$(cd "${1:?usage: test_charliecloud.sh SOURCE_DIR BUILD_DIR [IMAGE_DIR]}" && pwd)
BUILD=$(cd "${2:?usage: test_charliecloud.sh SOURCE_DIR BUILD_DIR [IMAGE_DIR]}" && pwd)
IMG=${3:-${HPCINFER_CH_IMAGE:-/var/tmp/hpcinfer-ch}}
WORK=$(cd "$SRC/.." && pwd)   # holds the checkout and shared/data: bound at /mnt/work in the container

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root: the Slurm daemons of slurm/cluster.sh need root"
command -v ch-run >/dev/null || skip "no ch-run: apt-get install charliecloud-runtime (or run containers/build_charliecloud.sh)"
command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ] || skip "no Slurm: run 'bash scripts/setup_slurm.sh'"
[ -x "$IMG/opt/hpcinfer/bin/hpcinfer" ] || skip "no image at $IMG: build it with containers/build_charliecloud.sh"
[ -f "$WORK/shared/data/models/stories260K/stories260K.bin" ] || skip "no stories260K in $WORK/shared/data"
while read -r v; do unset "$v"; done < <(compgen -v | grep -E '^(SLURM_|SBATCH_|SRUN_|OMPI_|PMIX_)')
export USER=${USER:-root}   # ch-run insists on it

TMP=$(mktemp -d /tmp/hpcinfer-ch-test.XXXXXX)
chmod 755 "$TMP"
trap 'bash "$SRC/slurm/cluster.sh" stop "$TMP/cluster" >/dev/null 2>&1; rm -rf "$TMP"' EXIT
export HPCINFER_SLURM_PORT_BASE=$((30000 + ($$ % 1000) * 10))
bash "$SRC/slurm/cluster.sh" start "$TMP/cluster"
# shellcheck disable=SC1091
. "$TMP/cluster/env.sh"

cd "$SRC"
"$BUILD/bin/hpcinfer" run configs/local_single.yaml --set "outputs.dir=$TMP/single" >"$TMP/single.log" 2>&1 ||
  { cat "$TMP/single.log" >&2; exit 1; }
mkdir -p "$TMP/out"
# threads=1: srun binds nothing here (task/none), and one OpenMP thread per core in each rank oversubscribes the cores.
in_image() {   # in_image NAME CONFIG [SRUN FLAGS]: one rank per node, each in its own container
  local name=$1 config=$2
  shift 2
  timeout 90 srun -N 2 --ntasks-per-node=1 "$@" \
    ch-run -b "$WORK:/mnt/work" -b "$TMP/out:/mnt/0" -c "/mnt/work/$(basename "$SRC")" "$IMG" -- \
    hpcinfer run "$config" --set threads=1 --set "outputs.dir=/mnt/0/$name" --set "world.rendezvous=file:///mnt/0/rdv_$name" \
    >"$TMP/$name.log" 2>&1 || { echo "FAIL: $name in the container:" >&2; tail -n 20 "$TMP/$name.log" >&2; exit 1; }
}
in_image gloo configs/local_pp2_gloo.yaml
in_image mpi configs/local_pp2_mpi.yaml --mpi=pmix
python3 "$SRC/tests/slurm/same_tokens.py" "$TMP/single/completions.jsonl" \
  "container gloo=$TMP/out/gloo/completions.jsonl" "container mpi=$TMP/out/mpi/completions.jsonl"
for n in gloo mpi; do
  for r in 0 1; do
    grep -q '"launcher": "slurm"' "$TMP/out/$n/metrics/rank_$r.json" || { echo "FAIL: $n rank $r metrics" >&2; exit 1; }
  done
done
echo "test_charliecloud: PASSED: gloo and mpi pp=2 from $IMG under Slurm equal the single-process run"
