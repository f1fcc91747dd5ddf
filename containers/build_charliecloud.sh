#!/usr/bin/env bash
# The tested twin of containers/hpcinfer.def: the same environment (Debian 12 + scripts/setup.sh) with hpcinfer built
# and installed in /opt/hpcinfer, as a charliecloud image directory that `ch-run` runs (also under Slurm).
# Apptainer is not packaged in Debian 12; charliecloud (ch-run, unprivileged, made for HPC under Slurm) is.
#
# Usage (root; network to deb.debian.org):   containers/build_charliecloud.sh [IMAGE_DIR]   (default /var/tmp/hpcinfer-ch)
#   then:  USER=root ch-run IMAGE_DIR -- hpcinfer plugins
#          srun -N 2 --ntasks-per-node=1 ch-run -b "$PWD/..:/mnt/work" -c /mnt/work/main IMAGE_DIR -- \
#            hpcinfer run configs/local_pp2_gloo.yaml --set threads=1 --set world.rendezvous=file:///mnt/work/main/results/.rdv/1
# Steps, as in the .def: mmdebstrap makes a Debian 12 root (the .def's `From: debian:12`), the sources of the
# committed tree (git archive HEAD, the .def's %files) go to /opt/hpcinfer/src, scripts/setup.sh installs the
# packages inside, cmake builds and installs (tests off), and the apt lists are dropped. About 5 minutes on 2 cores.
# The image has /mnt/work and /mnt/0../mnt/9 as mount points (-b), and an empty /etc/hosts onto which ch-run binds
# the host's: without it the host name does not resolve inside and gloo 0.5's CreateDevice dies of SIGSEGV.
set -euo pipefail
cd "$(dirname "$0")/.."

IMG=${1:-/var/tmp/hpcinfer-ch}
case "$IMG" in /*) ;; *) IMG=$PWD/$IMG ;; esac
[ "$(id -u)" -eq 0 ] || { echo "build_charliecloud: needs root (mmdebstrap root mode, chroot)" >&2; exit 1; }

# The builder's own tools, installed when missing (scripts/setup.sh style).
need=()
for p in mmdebstrap charliecloud-runtime; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "build_charliecloud: installing ${need[*]}"
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The sources: the directories hpcinfer.def copies with %files, from the committed tree.
src_dirs=$(awk '/^%files/ {f = 1; next} /^%/ {f = 0} f && NF {print $1}' containers/hpcinfer.def)
src_tar=$(mktemp /tmp/hpcinfer-src.XXXXXX.tar)
trap 'rm -f "$src_tar"' EXIT
# shellcheck disable=SC2086  # a list of paths
git archive --format=tar -o "$src_tar" HEAD $src_dirs

if [ -e "$IMG" ]; then
  echo "build_charliecloud: replacing $IMG"
  rm -rf "$IMG"
fi
cmake_args="-DCMAKE_BUILD_TYPE=Release -DHPCINFER_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/opt/hpcinfer"
t0=$SECONDS
mmdebstrap --variant=apt --quiet \
  --customize-hook='mkdir -p "$1/opt/hpcinfer/src" "$1/mnt/work" && for i in 0 1 2 3 4 5 6 7 8 9; do mkdir -p "$1/mnt/$i"; done' \
  --customize-hook="tar -C \"\$1/opt/hpcinfer/src\" -xf $src_tar" \
  --customize-hook='chroot "$1" bash /opt/hpcinfer/src/scripts/setup.sh' \
  --customize-hook="chroot \"\$1\" cmake -S /opt/hpcinfer/src -B /tmp/hpcinfer-build $cmake_args" \
  --customize-hook='chroot "$1" sh -c "cmake --build /tmp/hpcinfer-build -j$(nproc) && cmake --install /tmp/hpcinfer-build"' \
  --customize-hook='rm -rf "$1/tmp/hpcinfer-build" "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  --customize-hook='ln -sf /opt/hpcinfer/bin/hpcinfer "$1/usr/local/bin/hpcinfer"' \
  --customize-hook='touch "$1/etc/hosts"' \
  bookworm "$IMG" http://deb.debian.org/debian

echo "build_charliecloud: image $IMG built in $((SECONDS - t0)) s ($(du -sh "$IMG" | cut -f1))"
USER=${USER:-root} ch-run "$IMG" -- hpcinfer plugins
