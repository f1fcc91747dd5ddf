#!/usr/bin/env bash
# CI test (ctest label "slurm"): hpcinfer under a real Slurm cluster on this machine.
#   bash tests/slurm/test_slurm_cluster.sh SOURCE_DIR BUILD_DIR
# Starts the cluster of slurm/cluster.sh in a fresh scratch directory (munged, MariaDB + slurmdbd, slurmctld, two
# slurmd as nodes n1 n2), then submits with sbatch, through slurm/submit.sbatch and slurm/run.sh:
#   1. configs/local_pp2_gloo.yaml: pp=2 over gloo, one task on each node (-N 2 --ntasks-per-node=1);
#   2. configs/local_pp2_mpi.yaml: pp=2 over mpi, the same layout, its step started by `srun --mpi=pmix`;
#   3. slurm/serve.sbatch with world.dp=2: a server whose two replicas run on n1 and n2; its address comes from the
#      job's output, every prompt's greedy completion must equal the single-process run's, the front must have sent
#      requests to both replicas, and scancel must stop both ranks gracefully ("stopped:" in both rank logs);
#   4. slurm/launch_llm_night.sh on configs/experiments/palu_vs_baseline.yaml shrunk to stories260K (--set): the
#      palu compress job, then baseline and palu x infer, ppl, mc (the palu ones after the compress job): every job
#      COMPLETED, its log in slurm_logs/<exp>_<jobid>.out, six run directories, and the report compares both.
# Waits for both (60 s at most) and checks for each: the job COMPLETED with exit 0 in sacct; rank 0 ran on n1 and
# rank 1 on n2 as Slurm ranks; the greedy token ids of all 8 prompts equal a single-process run's;
# metrics/rank_0.json and rank_1.json exist and say launcher "slurm"; sacct.txt is in the results directory with the
# job's line and its step COMPLETED. The cluster is stopped on any exit (trap).
# Exit 77 (ctest SKIP_RETURN_CODE) with a message when not root, the Slurm packages (scripts/setup_slurm.sh) are
# missing, or ../shared/data has no stories260K. Takes about 20-25 s on the 2-core CI machine.
set -euo pipefail

SRC=$(cd "${1:?usage: test_slurm_cluster.sh SOURCE_DIR BUILD_DIR}" && pwd)
BUILD=$(cd "${2:?usage: test_slurm_cluster.sh SOURCE_DIR BUILD_DIR}" && pwd)
BIN=$BUILD/bin/hpcinfer
MODEL=$SRC/../shared/data/models/stories260K/stories260K.bin
t_start=$SECONDS

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "not root: the Slurm daemons of slurm/cluster.sh need root"
for b in munged mungekey slurmctld slurmd slurmdbd mariadbd mariadb-install-db sbatch sacct; do
  command -v $b >/dev/null || [ -x /usr/sbin/$b ] || skip "'$b' not installed: run 'bash scripts/setup_slurm.sh'"
done
[ -f "$MODEL" ] || skip "no stories260K model at $MODEL (../shared/data)"
[ -x "$BIN" ] || { echo "FAIL: no binary $BIN: build first" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is needed for the comparison" >&2; exit 1; }

# Nothing of an outer launcher may leak into the reference run or the jobs (ctest itself could run under Slurm).
while read -r v; do unset "$v"; done < <(compgen -v | grep -E '^(SLURM_|SBATCH_|SRUN_|SALLOC_|OMPI_|PMIX_|HPCINFER_(RUN_|EXP|JOB_ID|FAULT_))')

TMP=$(mktemp -d /tmp/hpcinfer-slurm-test.XXXXXX)
chmod 755 "$TMP"   # munged (user munge) must reach its directory inside
CLUSTER=$TMP/cluster
ok=0
finish() {
  bash "$SRC/slurm/cluster.sh" stop "$CLUSTER" >"$TMP/stop.log" 2>&1 || cat "$TMP/stop.log" >&2
  if [ $ok -eq 1 ]; then
    rm -rf "$TMP"
  else
    echo "test_slurm_cluster: FAILED; logs kept in $TMP (cluster logs in $CLUSTER/log)" >&2
  fi
}
trap finish EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/slurm_logs/*.out "$TMP"/results/*/ranks/*.log "$CLUSTER"/log/slurmctld.log; do
    [ -f "$f" ] && { echo "--- $f (last lines)" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}

# A port range of its own, so that a test beside a developer's cluster (default 16817) or another test does not
# collide; cluster.sh moves further up when one of the ports is taken.
export HPCINFER_SLURM_PORT_BASE=$((20000 + ($$ % 1000) * 10))
bash "$SRC/slurm/cluster.sh" start "$CLUSTER" || fail "the cluster did not start"
# shellcheck disable=SC1091
. "$CLUSTER/env.sh"
echo "test_slurm_cluster: cluster up after $((SECONDS - t_start)) s"

cd "$SRC"   # the configs name ../shared/data relative to the repository root; the jobs run in the submit dir
mkdir -p "$TMP/slurm_logs"
export HPCINFER_BIN=$BIN
submit() {   # submit NAME CONFIG: prints the job id
  HPCINFER_RUN_DIR=$TMP/results/$1 sbatch --parsable --job-name="$1" --output="$TMP/slurm_logs/%x_%j.out" \
    -N 2 --ntasks-per-node=1 --time=00:02:00 slurm/submit.sbatch "$2"
}
job_gloo=$(submit gloo configs/local_pp2_gloo.yaml) || fail "sbatch (gloo) refused the job"
job_mpi=$(submit mpi configs/local_pp2_mpi.yaml) || fail "sbatch (mpi) refused the job"
job_serve=$(HPCINFER_RUN_DIR=$TMP/results/serve sbatch --parsable --job-name=serve \
  --output="$TMP/slurm_logs/%x_%j.out" -N 2 --ntasks-per-node=1 --time=00:03:00 slurm/serve.sbatch \
  configs/local_pp2_gloo.yaml --set world.dp=2 --set world.pp=1 --set serve.port=0) || fail "sbatch (serve) refused the job"
echo "test_slurm_cluster: submitted job $job_gloo (gloo), $job_mpi (mpi) and $job_serve (serve, dp=2)"

# The single-process reference, while the jobs run.
"$BIN" run configs/local_single.yaml --set "outputs.dir=$TMP/single" >"$TMP/single.log" 2>&1 ||
  { cat "$TMP/single.log" >&2; fail "the single-process reference run failed"; }

deadline=$((SECONDS + 60))
while [ -n "$(squeue -h -j "$job_gloo,$job_mpi" -o %i 2>/dev/null)" ]; do
  if [ $SECONDS -ge $deadline ]; then
    squeue >&2 || true
    scancel "$job_gloo" "$job_mpi" 2>/dev/null || true
    fail "jobs $job_gloo and $job_mpi still not finished after 60 s"
  fi
  sleep 0.2
done
echo "test_slurm_cluster: both jobs left the queue after $((SECONDS - t_start)) s"

# The job's final record reaches slurmdbd a moment after the job ends.
final_state() {   # final_state JOB: "STATE EXITCODE" of the job's own line, once it is final (10 s at most)
  local s i
  for ((i = 0; i < 50; i++)); do
    s=$(sacct -n -P -X -j "$1" -o State,ExitCode 2>/dev/null | tr '|' ' ')
    case "$s" in "" | PENDING* | RUNNING*) sleep 0.2 ;; *) break ;; esac
  done
  echo "$s"
}

check_job() {   # check_job NAME JOB
  local name=$1 job=$2 dir=$TMP/results/$1 state r
  state=$(final_state "$job")
  [ "$state" = "COMPLETED 0:0" ] || fail "$name job $job: sacct says '$state', not 'COMPLETED 0:0'"
  for r in 0 1; do
    [ -f "$dir/metrics/rank_$r.json" ] || fail "$name: no $dir/metrics/rank_$r.json"
    grep -q '"launcher": "slurm"' "$dir/metrics/rank_$r.json" ||
      fail "$name: rank $r did not take its rank from Slurm (metrics launcher is not \"slurm\")"
    [ -f "$dir/ranks/rank_$r.log" ] || fail "$name: no per-rank log $dir/ranks/rank_$r.log"
    grep -q "rank $r/2 local 0 on node n$((r + 1)) " "$dir/ranks/rank_$r.log" ||
      fail "$name: rank $r did not run as rank $r/2 on node n$((r + 1)) (see $dir/ranks/rank_$r.log)"
  done
  [ -f "$dir/sacct.txt" ] || fail "$name: no sacct.txt in $dir"
  grep -qE "^$job +$name " "$dir/sacct.txt" || fail "$name: sacct.txt has no line for job $job"
  grep -qE "^$job\\.0 .* COMPLETED +0:0 " "$dir/sacct.txt" || fail "$name: sacct.txt has no COMPLETED step $job.0"
  [ "$(wc -l <"$TMP/single/completions.jsonl")" -eq 8 ] || fail "the reference run has not 8 completions"
  python3 "$SRC/tests/slurm/same_tokens.py" "$TMP/single/completions.jsonl" "$name=$dir/completions.jsonl" ||
    fail "$name: completions differ from the single-process run"
  grep -q "srun --mpi=pmix" "$TMP/slurm_logs/${name}_$job.out" || [ "$name" != mpi ] ||
    fail "mpi: the step was not started with srun --mpi=pmix"
  echo "test_slurm_cluster: $name job $job: COMPLETED, ranks on n1 and n2, metrics and sacct.txt present"
}
check_job gloo "$job_gloo"
check_job mpi "$job_mpi"

# The server job: its address from the job's output, then the same greedy completions as the single process.
serve_out=$TMP/slurm_logs/serve_$job_serve.out
url=""
for ((i = 0; i < 300; i++)); do
  url=$(sed -n 's|^hpcinfer serve: \(http://[^ ]*\).*|\1|p' "$serve_out" 2>/dev/null | head -n1 || true)
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || fail "serve job $job_serve printed no address in $serve_out"
python3 - "$url" "$TMP/single/completions.jsonl" configs/local_single.yaml <<'PY' || fail "serve job $job_serve: see above"
import json, sys, time, urllib.request
url, ref_path = sys.argv[1], sys.argv[2]
def get(path):
    try:
        with urllib.request.urlopen(url + path, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""
deadline = time.time() + 60
while get("/health")[0] != 200:
    if time.time() > deadline:
        sys.exit("serve: /health not 200 within 60 s")
    time.sleep(0.2)
ref = [json.loads(l) for l in open(ref_path) if l.strip()]
same = 0
for r in ref:
    body = json.dumps({"prompt": r["prompt"], "max_tokens": 64, "temperature": 0}).encode()
    req = urllib.request.Request(url + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        c = json.load(resp)["choices"][0]
    same += c["text"] == r["completion"]
metrics = get("/metrics")[1]
counts = [float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("hpcinfer:replica_requests_total{")]
print(f"test_slurm_cluster: serve: {same}/{len(ref)} completions equal the single process's; per replica {counts}")
sys.exit(0 if same == len(ref) and len(counts) == 2 and min(counts) > 0 else 1)
PY
scancel "$job_serve"
deadline=$((SECONDS + 60))
while [ -n "$(squeue -h -j "$job_serve" -o %i 2>/dev/null)" ]; do
  [ $SECONDS -lt $deadline ] || fail "serve job $job_serve still running 60 s after scancel"
  sleep 0.2
done
for r in 0 1; do
  grep -q "stopped:" "$TMP/results/serve/ranks/rank_$r.log" ||
    fail "serve: rank $r did not stop gracefully after scancel (no 'stopped:' in its log)"
done
echo "test_slurm_cluster: serve job $job_serve: replicas on n1 and n2 answered like the single process; scancel stopped both"

# The model-variant study as the night launcher submits it (one task per job, 1 CPU: the nodes have nproc CPUs).
D=$SRC/../shared/data
if python3 -c 'import yaml' 2>/dev/null && [ -f "$D/eval/wikitext-2-raw/wiki.test.raw" ] && [ -f "$D/eval/piqa/valid.jsonl" ]; then
  night=$(SLURM_LOG_DIR=$TMP/slurm_logs bash slurm/launch_llm_night.sh configs/experiments/palu_vs_baseline.yaml \
    --set experiment=night --set "output_root=$TMP/study" --set "model=$MODEL" --set variants.palu.group_size=4 \
    --set variants.palu.calib_skip_tokens=5000 --set variants.palu.calib_tokens=1024 --set 'suites.infer.args=[--quick]' \
    --set suites.infer.trials=1 --set suites.infer.warmup=0 --set suites.ppl.limit_tokens=2000 --set suites.mc.limit=5 \
    -- -c 1 -t 00:03:00) || fail "launch_llm_night.sh failed: $night"
  jobs=$(echo "$night" | awk '/ job /{print $NF}' | paste -sd,)
  [ "$(echo "$night" | grep -c ' job ')" -eq 7 ] || fail "launch_llm_night.sh submitted not 7 jobs: $night"
  deadline=$((SECONDS + 120))
  while [ -n "$(squeue -h -j "$jobs" -o %i 2>/dev/null)" ]; do
    [ $SECONDS -lt $deadline ] || { squeue >&2; scancel ${jobs//,/ } 2>/dev/null; fail "study jobs $jobs not done in 120 s"; }
    sleep 0.5
  done
  for j in ${jobs//,/ }; do
    [ "$(final_state "$j")" = "COMPLETED 0:0" ] || fail "study job $j: sacct says '$(final_state "$j")'"
    [ -f "$TMP/slurm_logs/night_$j.out" ] || fail "study job $j: no log slurm_logs/night_$j.out"
  done
  runs=$(find "$TMP/study/night" -mindepth 2 -maxdepth 2 -name summary.json | wc -l)
  [ "$runs" -eq 6 ] || fail "the study has $runs finished runs, not 6"
  python3 scripts/llm_study.py --report "$TMP/study/night" >"$TMP/report.log" 2>&1 || fail "the study report failed"
  grep -q '| palu | 960 | 0.750x' "$TMP/study/night/report/report.md" || fail "the report does not compare palu: $(cat "$TMP/study/night/report/report.md")"
  echo "test_slurm_cluster: study: 7 jobs COMPLETED (compress first), 6 runs, report baseline vs palu"
else
  echo "test_slurm_cluster: study part skipped: PyYAML or ../shared/data eval files missing"
fi

ok=1
echo "test_slurm_cluster: PASSED in $((SECONDS - t_start)) s (before the cluster stops)"
