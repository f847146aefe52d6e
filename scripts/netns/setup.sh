#!/usr/bin/env bash
# Two emulated nodes on one machine: network namespaces offload-a (10.77.0.1) and offload-b
# (10.77.0.2) joined by a veth pair, with DELAY_MS added to every packet of MPI's TCP ports
# arriving in each namespace (so a round trip gains 2 x DELAY_MS). The kernel has no netem: the
# delay is offload-netdelay (an NFQUEUE program) on each namespace's INPUT chain.
#   scripts/netns/setup.sh DELAY_MS|PRESET [NETDELAY_BINARY]      (root; undo with teardown.sh)
# PRESET, as offload-run's --distance: same-dc (0.05 ms each way, 0.1 ms round trip), nearby-dc
# (1 ms, 2 ms), far-dc (12.5 ms, 25 ms).
# OFFLOAD_NETNS_SLOW_START_AFTER_IDLE=0 turns off TCP's return to slow start after an idle
# period (net.ipv4.tcp_slow_start_after_idle, per namespace; the kernel default is 1), as is
# usual on long-haul links: otherwise every burst after a pause restarts with a small window.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
delay=${1:?usage: setup.sh DELAY_MS|same-dc|nearby-dc|far-dc [path to offload-netdelay]}
case $delay in
  same-dc) delay=0.05 ;;
  nearby-dc) delay=1 ;;
  far-dc) delay=12.5 ;;
esac
netdelay=${2:-$here/../../build/scripts/netns/offload-netdelay}
[ "$(id -u)" -eq 0 ] || { echo "setup.sh: needs root (network namespaces, iptables)" >&2; exit 1; }
command -v iptables >/dev/null || { echo "setup.sh: iptables is missing (apt-get install iptables)" >&2; exit 1; }
[ -x "$netdelay" ] || { echo "setup.sh: no delay tool at $netdelay (build offload-netdelay: libnetfilter-queue-dev)" >&2; exit 1; }
awk -v d="$delay" 'BEGIN { exit !(d >= 0 && d <= 60000) }' || { echo "setup.sh: DELAY_MS must be 0..60000, got '$delay'" >&2; exit 2; }

"$here/teardown.sh" >/dev/null 2>&1 || true
ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "$VETH_A" type veth peer name "$VETH_B"
ip link set "$VETH_A" netns "$NS_A"
ip link set "$VETH_B" netns "$NS_B"
ip -n "$NS_A" addr add "$ADDR_A/24" dev "$VETH_A"
ip -n "$NS_B" addr add "$ADDR_B/24" dev "$VETH_B"
mkdir -p "$STATE"
for side in A B; do
  ns_var=NS_$side veth_var=VETH_$side
  ns=${!ns_var} veth=${!veth_var}
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_slow_start_after_idle="${OFFLOAD_NETNS_SLOW_START_AFTER_IDLE:-1}"
  ip -n "$ns" link set "$veth" up
  ip netns exec "$ns" iptables -A INPUT -i "$veth" -p tcp -m multiport \
    --ports "$MPI_PORT_MIN:$((MPI_PORT_MIN + MPI_PORT_RANGE - 1))" -j NFQUEUE --queue-num 0 --queue-bypass
  ip netns exec "$ns" "$netdelay" --queue 0 --delay-ms "$delay" >"$STATE/$ns.log" 2>&1 &
  echo $! >"$STATE/$ns.pid"
done
# Wait until both delay tools have bound their queues (they print their settings then).
for ns in "$NS_A" "$NS_B"; do
  for _ in $(seq 50); do grep -q "delay" "$STATE/$ns.log" 2>/dev/null && break; sleep 0.1; done
  kill -0 "$(cat "$STATE/$ns.pid")" 2>/dev/null || { echo "setup.sh: the delay tool in $ns died:" >&2; cat "$STATE/$ns.log" >&2; exit 1; }
done
echo "netns: $NS_A ($ADDR_A) <-> $NS_B ($ADDR_B), ${delay} ms added to each packet of TCP ports $MPI_PORT_MIN+$MPI_PORT_RANGE on arrival, tcp_slow_start_after_idle=${OFFLOAD_NETNS_SLOW_START_AFTER_IDLE:-1}"
