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

# shellcheck source=scripts/apt_install.sh
source "$(dirname "$0")/apt_install.sh"
apt_install_missing setup_slurm "${PACKAGES[@]}"
