# Sourced by scripts/setup.sh and scripts/setup_slurm.sh.
#   apt_install_missing LABEL PACKAGE...
# Installs the Debian packages that dpkg does not list as installed (as root, or through sudo). Idempotent: when all
# are there it returns at once, touching nothing. The package lists are refreshed only when an install needs it.
apt_install_missing() {
  local label=$1 p status sudo=""
  shift
  local missing=()
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "$label: all $# packages already installed"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "$label: need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  echo "$label: installing ${missing[*]}"
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" 2>/dev/null; then
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  echo "$label: done"
}
