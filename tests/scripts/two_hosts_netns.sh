#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair (10.77.0.1/24 and 10.77.0.2/24, the
# interface called hpci0 on both sides, as eth0 would be on two real nodes). Rank 0 runs in the first, rank 1 in the
# second, as `hpcinfer run` with the launcher's environment variables (HPCINFER_RANK / _WORLD_SIZE / _JOB_ID). The
# rendezvous is our TcpStore served by rank 0 at 10.77.0.1 (no shared directory), gloo binds hpci0
# (world.interface), and each "host" writes its own results directory: OUT/host_a (rank 0), OUT/host_b (rank 1).
#
#   tests/scripts/two_hosts_netns.sh HPCINFER_BIN CONFIG OUT [--set k=v]...
#   LINK_DOWN_AFTER=S: take the link down S seconds into the run (tests/faults/test_launch_faults.sh)
#
# Exit 0 when both ranks succeeded, 77 when this machine cannot do it (not root, no `ip`, netns or veth refused:
# the caller skips), else the first failing rank's status. Prints "netns NAME_A NAME_B" first, and at the end
# "veth_tx_bytes host_a N" / "... host_b N" (bytes that left each namespace through the veth) for the caller to
# compare with the ranks' metrics. The namespaces and
# the veth pair have names unique to this run and are deleted on every exit path (trap).
set -uo pipefail

bin=$1 cfg=$2 out=$3
shift 3

skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root for ip netns (CI runs as root)"
command -v ip >/dev/null || skip "ip (Debian iproute2) not found"

id=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
ns_a=hpci_a_$id ns_b=hpci_b_$id
veth_a=hpva$id veth_b=hpvb$id  # <= 15 characters: the kernel's limit on interface names
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  ip netns del "$ns_a" 2>/dev/null
  ip netns del "$ns_b" 2>/dev/null  # deleting a namespace deletes the veth end inside it, and so its peer
  ip link del "$veth_a" 2>/dev/null
  true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "netns $ns_a $ns_b"
ip netns add "$ns_a" 2>/dev/null || skip "ip netns add failed (no CAP_SYS_ADMIN or no network namespaces here)"
ip netns add "$ns_b" || skip "ip netns add failed for the second namespace"
ip link add "$veth_a" type veth peer name "$veth_b" || skip "ip link add type veth failed (no veth module?)"
set -e
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
for side in a b; do
  ns_var=ns_$side veth_var=veth_$side
  ns=${!ns_var}
  ip -n "$ns" link set "${!veth_var}" name hpci0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set hpci0 up
done
ip -n "$ns_a" addr add 10.77.0.1/24 dev hpci0
ip -n "$ns_b" addr add 10.77.0.2/24 dev hpci0
set +e

mkdir -p "$out/host_a" "$out/host_b"
common=(--set world.pp=2 --set world.rendezvous=tcp://10.77.0.1:29477 --set world.interface=hpci0 "$@")
job=netns-$id
ip netns exec "$ns_a" env HPCINFER_RANK=0 HPCINFER_WORLD_SIZE=2 HPCINFER_JOB_ID="$job" \
  "$bin" run "$cfg" "${common[@]}" --set outputs.dir="$out/host_a" >"$out/host_a/rank_0.log" 2>&1 &
pids+=($!)
ip netns exec "$ns_b" env HPCINFER_RANK=1 HPCINFER_WORLD_SIZE=2 HPCINFER_JOB_ID="$job" \
  "$bin" run "$cfg" "${common[@]}" --set outputs.dir="$out/host_b" >"$out/host_b/rank_1.log" 2>&1 &
pids+=($!)

# LINK_DOWN_AFTER=S (the fault test): the veth goes down S seconds into the run, as a cable pulled between two nodes.
if [ -n "${LINK_DOWN_AFTER:-}" ]; then
  (sleep "$LINK_DOWN_AFTER" && ip -n "$ns_a" link set hpci0 down && echo "link down after $LINK_DOWN_AFTER s") &
fi

rc=0
for r in 0 1; do
  wait "${pids[$r]}"
  s=$?
  if [ $s -ne 0 ]; then
    echo "rank $r exited with status $s"
    [ $rc -ne 0 ] || rc=$s
  fi
done
pids=()
for side in a b; do
  ns_var=ns_$side
  echo "veth_tx_bytes host_$side $(ip netns exec "${!ns_var}" cat /sys/class/net/hpci0/statistics/tx_bytes)"
done
exit $rc
