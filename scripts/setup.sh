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
  libbz2-dev                                  # eval mc: HellaSwag ships as .bz2
  iproute2                                    # ip netns: the two-host network test
  python3                                     # scripts/main_job.sh comparisons, ../shared/check-cli.sh
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
