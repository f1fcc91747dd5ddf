#!/usr/bin/env bash
# A real Slurm 22.05 cluster on this one machine, for trying slurm/ and for CI: munged, MariaDB + slurmdbd (so that
# sacct works), slurmctld, and two emulated nodes n1 and n2 (two slurmd, nproc CPUs each, partition "debug").
# Everything lives under one scratch directory; nothing is written to /etc, and no other daemon is touched.
#
# Usage:  slurm/cluster.sh start|stop|status|env [DIR]        (DIR default: $HPCINFER_SLURM_DIR or /tmp/hpcinfer-slurm)
#   start   starts what is not running yet (idempotent), waits until sinfo shows n1 and n2 idle, prints the env file.
#           Then:  source DIR/env.sh   (exports SLURM_CONF; sbatch, srun, sinfo, sacct then talk to this cluster)
#   stop    cancels the cluster's jobs, then stops the daemons it started, by the pids in DIR/run/ (TERM, then KILL
#           after 10 s). Idempotent. DIR is kept (the database and the job ids carry over to the next start);
#           remove it to start afresh.
#   status  one line per daemon and sinfo; exit 0 when all run, 3 when none runs, 1 when only some do.
#   env     prints the path of the env file.
# Needs root (slurmd runs jobs as their users; munged runs as user munge) and the packages of scripts/setup_slurm.sh.
# Ports: five consecutive free TCP ports from $HPCINFER_SLURM_PORT_BASE (default 16817; the search moves up in steps
# of 10 when one is taken, so several clusters can run side by side), kept in DIR/etc/ports for later starts.
# The recipe and its traps: ../shared/STACK.md ("Slurm 22.05.8 + munge 0.5.15").
set -euo pipefail

CMD=${1:-}
DIR=${2:-${HPCINFER_SLURM_DIR:-/tmp/hpcinfer-slurm}}
NODES=(n1 n2)
CLUSTER=hpcinfer
DB_USER=slurm
DB_PASS=hpcinfer-slurm-db

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*"; }

case "$CMD" in
  start | stop | status | env) ;;
  *) echo "usage: slurm/cluster.sh start|stop|status|env [DIR]   (default DIR: /tmp/hpcinfer-slurm)" >&2; exit 2 ;;
esac
case "$DIR" in /*) ;; *) DIR=$PWD/$DIR ;; esac
DIR=${DIR%/}
[ -n "$DIR" ] && [ "$DIR" != / ] || die "refusing DIR '/'"

ETC=$DIR/etc RUN=$DIR/run LOG=$DIR/log MUNGE=$DIR/munge DB=$DIR/db
export SLURM_CONF=$ETC/slurm.conf

# --- processes: a pid file counts only when its process mentions DIR (pids get reused) ----------------------------
pidfile() {
  case "$1" in
    munged) echo "$MUNGE/munged.pid" ;;
    mariadbd) echo "$DB/mariadbd.pid" ;;
    slurmdbd | slurmctld) echo "$RUN/$1.pid" ;;
    slurmd-*) echo "$RUN/$1.pid" ;;
  esac
}
# The pid of a running daemon of this cluster, or nothing.
alive() {
  local f pid
  f=$(pidfile "$1")
  [ -r "$f" ] || return 1
  pid=$(tr -dc 0-9 <"$f")
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  # Our daemons carry DIR on their command line (-f, --socket, --datadir) or in their environment (SLURM_CONF).
  if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIR/" ||
     tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$SLURM_CONF"; then
    echo "$pid"
  else
    return 1
  fi
}
DAEMONS=(munged mariadbd slurmdbd slurmctld "${NODES[@]/#/slurmd-}")

# Waits up to $2 seconds (in 0.1 s steps) for the command "$3..." to succeed.
wait_for() {
  local what=$1 deadline=$(($(date +%s%N) / 1000000 + $2 * 1000)) secs=$2
  shift 2
  while [ $(($(date +%s%N) / 1000000)) -lt $deadline ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "cluster.sh: timed out after ${secs} s waiting for $what" >&2
  return 1
}

# Shows the end of a daemon's log and fails.
fail_start() {
  local name=$1 log=$2
  echo "cluster.sh: $name did not start; last lines of $log:" >&2
  tail -n 15 "$log" >&2 2>/dev/null || true
  exit 1
}

# --- ports -------------------------------------------------------------------------------------------------------
port_busy() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
choose_ports() {
  if [ -r "$ETC/ports" ]; then
    # shellcheck disable=SC1091
    . "$ETC/ports"
    return
  fi
  local base=${HPCINFER_SLURM_PORT_BASE:-16817} p ok
  for ((; base < 65000; base += 10)); do
    ok=1
    for ((p = base; p < base + 5; p++)); do port_busy $p && { ok=0; break; }; done
    [ $ok -eq 1 ] && break
  done
  [ $ok -eq 1 ] || die "no five free consecutive TCP ports found from ${HPCINFER_SLURM_PORT_BASE:-16817}"
  CTLD_PORT=$base DBD_PORT=$((base + 1)) DB_PORT=$((base + 2)) NODE_PORT0=$((base + 3))
  printf 'CTLD_PORT=%s\nDBD_PORT=%s\nDB_PORT=%s\nNODE_PORT0=%s\n' "$CTLD_PORT" "$DBD_PORT" "$DB_PORT" "$NODE_PORT0" \
    >"$ETC/ports"
}

# --- configuration -----------------------------------------------------------------------------------------------
write_config() {
  local host cpus i
  host=$(hostname -s)
  # Each emulated node declares the machine's cores (what slurmd finds anyway): two nodes give 2 x nproc task slots
  # on nproc cores, so that pp=4 fits. `-N 2 --ntasks-per-node=1` puts one rank on each node.
  cpus=$(nproc)
  # HPCINFER_SLURM_GPUS=N: N pretend GPUs per node (gres backed by /dev/null twins), so that --gpus-per-task can be
  # tried on a GPU-less machine: Slurm allocates them and sets CUDA_VISIBLE_DEVICES, and nothing more.
  gpus=${HPCINFER_SLURM_GPUS:-0} gres=""
  [ "$gpus" -gt 0 ] && gres=" Gres=gpu:$gpus"
  mkdir -p "$ETC" "$RUN" "$LOG" "$DIR/state"
  for n in "${NODES[@]}"; do mkdir -p "$DIR/spool/$n" "$DIR/tmp/$n"; done
  choose_ports
  {
    echo "# Written by slurm/cluster.sh for the cluster in $DIR. Do not edit: rewritten at every start."
    echo "ClusterName=$CLUSTER"
    echo "SlurmctldHost=$host(127.0.0.1)"
    echo "SlurmctldPort=$CTLD_PORT"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$MUNGE/munge.socket"
    echo "CredType=cred/munge"
    echo "MailProg=/bin/true"
    echo "StateSaveLocation=$DIR/state"
    echo "SlurmdSpoolDir=$DIR/spool/%n"
    echo "TmpFS=$DIR/tmp/%n"              # per node: PMIx with two slurmd on one host needs it
    echo "SlurmctldPidFile=$RUN/slurmctld.pid"
    echo "SlurmdPidFile=$RUN/slurmd-%n.pid"
    echo "SlurmctldLogFile=$LOG/slurmctld.log"
    echo "SlurmdLogFile=$LOG/slurmd-%n.log"
    echo "ProctrackType=proctrack/linuxproc" # no systemd, no cgroup delegation here
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_CPU"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "SlurmdTimeout=60"
    echo "InactiveLimit=0"
    echo "KillWait=5"
    echo "MinJobAge=300"
    echo "JobAcctGatherType=jobacct_gather/linux"
    echo "JobAcctGatherFrequency=5"
    echo "AccountingStorageType=accounting_storage/slurmdbd"
    echo "AccountingStorageHost=127.0.0.1"
    echo "AccountingStoragePort=$DBD_PORT"
    echo "AccountingStoragePass=$MUNGE/munge.socket"  # the munge socket for slurmdbd connections (not AuthInfo)
    echo "JobCompType=jobcomp/none"
    [ "$gpus" -gt 0 ] && echo "GresTypes=gpu"
    i=0
    for n in "${NODES[@]}"; do
      echo "NodeName=$n NodeHostname=$host NodeAddr=127.0.0.1 Port=$((NODE_PORT0 + i)) CPUs=$cpus$gres State=UNKNOWN"
      i=$((i + 1))
    done
    echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP"
  } >"$ETC/slurm.conf"
  # slurmdbd.conf: next to slurm.conf, owned by SlurmUser, mode 600 (slurmdbd refuses anything else).
  (
    umask 077
    {
      echo "# Written by slurm/cluster.sh for the cluster in $DIR."
      echo "DbdHost=$host"
      echo "DbdAddr=127.0.0.1"
      echo "DbdPort=$DBD_PORT"
      echo "SlurmUser=root"
      echo "AuthType=auth/munge"
      echo "AuthInfo=socket=$MUNGE/munge.socket"
      echo "PidFile=$RUN/slurmdbd.pid"
      echo "LogFile=$LOG/slurmdbd.log"
      echo "StorageType=accounting_storage/mysql"
      echo "StorageHost=127.0.0.1"
      echo "StoragePort=$DB_PORT"
      echo "StorageUser=$DB_USER"
      echo "StoragePass=$DB_PASS"
      echo "StorageLoc=slurm_acct_db"
    } >"$ETC/slurmdbd.conf"
  )
  chmod 600 "$ETC/slurmdbd.conf"
  if [ "$gpus" -gt 0 ]; then
    # slurmd drops GPUs without a device File, and wants a character device there: twins of /dev/null.
    for n in "${NODES[@]}"; do
      mkdir -p "$DIR/dev/$n"
      for ((i = 0; i < gpus; i++)); do
        [ -c "$DIR/dev/$n/nvidia$i" ] || { rm -f "$DIR/dev/$n/nvidia$i"; mknod "$DIR/dev/$n/nvidia$i" c 1 3; }   # a twin of /dev/null
      done
      echo "NodeName=$n Name=gpu File=$DIR/dev/$n/nvidia[0-$((gpus - 1))]"
    done >"$ETC/gres.conf"
  else
    rm -f "$ETC/gres.conf"
  fi
  printf '# source this file: the Slurm clients then use the cluster in %s (slurm/cluster.sh)\nexport SLURM_CONF=%s\n' \
    "$DIR" "$SLURM_CONF" >"$DIR/env.sh"
}

# --- daemons -----------------------------------------------------------------------------------------------------
start_munged() {
  alive munged >/dev/null && return 0
  # munged wants its socket directory open to all (mode 755) and its key and seed in a private one, both its own.
  install -d -m 755 -o munge -g munge "$MUNGE"
  install -d -m 700 -o munge -g munge "$MUNGE/private"
  [ -s "$MUNGE/private/munge.key" ] || runuser -u munge -- mungekey -c -k "$MUNGE/private/munge.key" >/dev/null
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE/munge.socket" --key-file="$MUNGE/private/munge.key" \
    --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/private/munged.seed" ||
    fail_start munged "$MUNGE/munged.log"
  wait_for "munged's socket" 10 test -S "$MUNGE/munge.socket" || fail_start munged "$MUNGE/munged.log"
}

sql() { mariadb --no-defaults --socket="$DB/mariadb.sock" -u root "$@"; }
start_mariadbd() {
  if ! alive mariadbd >/dev/null; then
    mkdir -p "$DB"
    if [ ! -d "$DB/data/mysql" ]; then
      mariadb-install-db --no-defaults --user=root --datadir="$DB/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$DB/install.log" 2>&1 || fail_start "mariadb-install-db" "$DB/install.log"
    fi
    # Small buffers: the accounting database of a test cluster is tiny.
    setsid /usr/sbin/mariadbd --no-defaults --user=root --datadir="$DB/data" --socket="$DB/mariadb.sock" \
      --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$DB/mariadbd.pid" \
      --log-error="$DB/mariadbd.log" --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
      --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_for "mariadbd" 30 sql -e "SELECT 1" || fail_start mariadbd "$DB/mariadbd.log"
  fi
  sql <<SQL
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO '$DB_USER'@'localhost';
SQL
}

start_slurmdbd() {
  if ! alive slurmdbd >/dev/null; then
    /usr/sbin/slurmdbd || fail_start slurmdbd "$LOG/slurmdbd.log"   # reads slurmdbd.conf beside $SLURM_CONF
    wait_for "slurmdbd" 30 sacctmgr -n list cluster || fail_start slurmdbd "$LOG/slurmdbd.log"
  fi
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
}

start_slurmctld() {
  alive slurmctld >/dev/null && return 0
  # Without -c: the state in DIR/state is recovered, so job ids go on from the last start (the accounting
  # database keeps them; sacct -j would otherwise mix two jobs of the same id). But not the nodes' state: a node
  # drained under an earlier configuration would stay drained, so they start afresh from slurm.conf.
  rm -f "$DIR/state/node_state" "$DIR/state/node_state.old"
  /usr/sbin/slurmctld -f "$SLURM_CONF" || fail_start slurmctld "$LOG/slurmctld.log"
  wait_for "slurmctld" 30 scontrol ping || fail_start slurmctld "$LOG/slurmctld.log"
}

start_slurmd() {
  local n=$1
  alive "slurmd-$n" >/dev/null && return 0
  /usr/sbin/slurmd -f "$SLURM_CONF" -N "$n" || fail_start "slurmd -N $n" "$LOG/slurmd-$n.log"
}

nodes_idle() {
  local states
  states=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u)
  for n in "${NODES[@]}"; do grep -qx "$n idle" <<<"$states" || return 1; done
}

do_start() {
  [ "$(id -u)" -eq 0 ] || die "needs root (munged runs as user munge, slurmd runs jobs as their users)"
  for b in munged mungekey mariadbd mariadb-install-db slurmdbd slurmctld slurmd sinfo sacctmgr ss; do
    command -v $b >/dev/null || [ -x /usr/sbin/$b ] ||
      die "'$b' not found: install the packages with 'bash scripts/setup_slurm.sh'"
  done
  id munge >/dev/null 2>&1 || die "no user 'munge': install the packages with 'bash scripts/setup_slurm.sh'"
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  runuser -u munge -- test -x "$DIR" || die "user munge cannot enter $DIR: choose a DIR outside private directories"
  local t0=$SECONDS d up=1
  for d in "${DAEMONS[@]}"; do alive "$d" >/dev/null || up=0; done
  if [ $up -eq 1 ]; then
    say "already running in $DIR: source $DIR/env.sh"
    return 0
  fi
  write_config
  start_munged
  start_mariadbd
  start_slurmdbd
  start_slurmctld
  for n in "${NODES[@]}"; do start_slurmd "$n"; done
  if ! wait_for "nodes ${NODES[*]} idle" 30 nodes_idle; then
    sinfo -N >&2 || true
    fail_start slurmd "$LOG/slurmd-${NODES[0]}.log"
  fi
  say "cluster '$CLUSTER' up in $((SECONDS - t0)) s: nodes ${NODES[*]} idle (slurmctld port $CTLD_PORT)"
  say "use it with:  source $DIR/env.sh"
}

stop_pid() {
  local name=$1 pid i
  pid=$(alive "$name") || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ]; then
    echo "cluster.sh: $name (pid $pid) still there after 10 s: KILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$name")"
  say "stopped $name (pid $pid)"
}

do_stop() {
  [ -d "$DIR" ] || { say "nothing to stop: no $DIR"; return 0; }
  # Jobs first, while slurmctld and the slurmd still run: their steps (slurmstepd) end with them.
  if alive slurmctld >/dev/null; then
    local jobs i
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 150; i++)); do
        [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
        sleep 0.1
      done
      say "cancelled job(s) $(echo $jobs)"
    fi
  fi
  # Each daemon takes 1-3 s to go: stop those that do not need each other side by side.
  for n in "${NODES[@]}"; do stop_pid "slurmd-$n" & done
  stop_pid slurmctld &
  wait
  stop_pid slurmdbd &
  stop_pid munged &
  wait
  stop_pid mariadbd   # last: slurmdbd may still write on its way out
}

do_status() {
  local up=0 down=0 pid
  for d in "${DAEMONS[@]}"; do
    if pid=$(alive "$d"); then
      printf '  %-10s running, pid %s\n' "$d" "$pid"; up=$((up + 1))
    else
      printf '  %-10s stopped\n' "$d"; down=$((down + 1))
    fi
  done
  if alive slurmctld >/dev/null; then sinfo -N -o '  %N %P %T %c' || true; fi
  [ $down -eq 0 ] && { say "running in $DIR (source $DIR/env.sh)"; return 0; }
  [ $up -eq 0 ] && { say "not running ($DIR)"; return 3; }
  say "partly running ($DIR): 'slurm/cluster.sh start' starts the rest, 'stop' stops all"
  return 1
}

case "$CMD" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) echo "$DIR/env.sh" ;;
esac
