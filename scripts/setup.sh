#!/usr/bin/env bash
# Installs the Debian 12 packages hpcinfer's build and tests need. Idempotent: packages already installed are
# detected with dpkg-query first, so a second run takes well under a second and touches nothing.
# Runs as root (CI) or through sudo when available. See ../shared/STACK.md for what each package is for.
set -euo pipefail

PACKAGES=(
  cmake make g++ pkg-config                   # toolchain (CMake >= 3.25, C++20); make: bare debian:12 lacks it
  libgtest-dev libgmock-dev                   # tests
  libgloo-dev                                 # comm plugin gloo (TCP)
  libopenmpi-dev openmpi-bin                  # comm plugin mpi, mpirun
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libboost-dev   # config, JSON, CLI, Boost.DLL
  libpcre2-dev libsentencepiece-dev           # tokenizers
  libcpp-httplib-dev curl                     # serve: HTTP server and the data-parallel front's client; curl client
  libssl-dev                                  # rendezvous: the TCP store's HMAC admission (libcrypto)
  clang-14 libclang-rt-14-dev                 # scripts/fuzz.sh: libFuzzer + ASan/UBSan runtimes
  libbz2-dev                                  # eval mc: HellaSwag ships as .bz2
  libeigen3-dev                               # palu compress: Cholesky and SVD (header-only)
  iproute2                                    # ip netns: the two-host network test
  python3                                     # scripts/main_job.sh comparisons, ../shared/check-cli.sh
)

# shellcheck source=scripts/apt_install.sh
source "$(dirname "$0")/apt_install.sh"
apt_install_missing setup "${PACKAGES[@]}"
