#!/usr/bin/env bash
# Real TCP between two network namespaces ("nodes"), no delay and then 5 ms added to every MPI
# packet on arrival in each namespace: the round trip of a small echo must grow by about
# 2 x 5 ms. Skips (77), saying why, where it cannot run: not root, no iptables, no delay tool,
# no namespaces. Always tears down what it set up.
#   netns_distance.sh OFFLOAD_RUN NETDELAY
set -u
run=$1
netdelay=$2
netns=$(cd "$(dirname "$0")/../../scripts/netns" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces, iptables)"; exit 77; }
command -v iptables >/dev/null || { echo "SKIP: iptables is not installed"; exit 77; }
[ -x "$netdelay" ] || { echo "SKIP: no delay tool (offload-netdelay needs libnetfilter-queue-dev)"; exit 77; }
if ! ip netns add offload-probe 2>/tmp/netns_probe.$$; then
  echo "SKIP: cannot create network namespaces: $(cat /tmp/netns_probe.$$)"; rm -f /tmp/netns_probe.$$; exit 77
fi
ip netns del offload-probe; rm -f /tmp/netns_probe.$$
trap '"$netns/teardown.sh"' EXIT
tmp=$(mktemp -d)
round_trip() {  # round_trip DELAY_MS: sets up, runs 1 receiver + 1 transmitter, prints the p50 round trip (ms)
  "$netns/setup.sh" "$1" "$netdelay" >&2 || return 1
  timeout -s KILL 120 "$netns/mpirun.sh" -np 2 "$run" --kernel echo --size 64 --events 100 --threads 1 \
    --inflight 1 --quiet --json "$tmp/run.json" >"$tmp/out.log" 2>&1 || { cat "$tmp/out.log" >&2; return 1; }
  grep -q "^status: ok" "$tmp/out.log" || { cat "$tmp/out.log" >&2; return 1; }
  python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['total']['round_trip_p50_ms'])" "$tmp/run.json"
}
r0=$(round_trip 0) || { echo "FAIL: the run at 0 ms failed"; exit 1; }
r5=$(round_trip 5) || { echo "FAIL: the run at 5 ms failed"; exit 1; }
rm -rf "$tmp"
echo "round trip p50: ${r0} ms at 0 ms, ${r5} ms at 5 ms per direction"
# The delay is exact per packet, so the growth is at least 10 ms; the upper bound only says
# "about": a scheduling hiccup of a few ms on this 2-core VM must not fail it.
if awk -v a="$r0" -v b="$r5" 'BEGIN { d = b - a; exit !(d >= 9.5 && d <= 20) }'; then
  echo "PASS: the round trip grew by $(awk -v a="$r0" -v b="$r5" 'BEGIN { printf "%.2f", b - a }') ms"
else
  echo "FAIL: the round trip grew by $(awk -v a="$r0" -v b="$r5" 'BEGIN { printf "%.2f", b - a }') ms, expected about 10"
  exit 1
fi
