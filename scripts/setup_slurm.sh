#!/usr/bin/env bash
# Installs the Debian 12 packages for a real Slurm cluster on this machine (slurm/cluster.sh): munge, slurmctld,
# slurmd, the clients, slurmdbd and MariaDB for sacct. Same style as scripts/setup.sh: idempotent, packages already
# installed are detected with dpkg-query first, so a second run takes well under a second and touches nothing.
# Runs as root (CI) or through sudo. The packages never start their services here (policy-rc.d refuses, no systemd):
# slurm/cluster.sh starts and stops the daemons itself.
set -euo pipefail

PACKAGES=(
  munge                                       # authentication between the Slurm daemons and clients
  slurmctld slurmd slurm-client               # = slurm-wlm without the metapackage; srun --mpi=pmix is in the plugins
  slurmdbd mariadb-server mariadb-client      # accounting: real `sacct` (results/<exp>/<run>/sacct.txt)
  openmpi-bin                                 # mpi jobs under srun --mpi=pmix (also in scripts/setup.sh)
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup_slurm: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup_slurm: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup_slurm: installing ${missing[*]}"
install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
# scripts/setup.sh has usually just updated the package lists: update again only when the install needs it.
if ! install 2>/dev/null; then
  $SUDO apt-get update -qq
  install
fi
echo "setup_slurm: done"
