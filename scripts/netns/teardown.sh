#!/usr/bin/env bash
# Undoes setup.sh: stops the delay tools and deletes both namespaces (with their veth ends and
# iptables rules). Safe to run when nothing is set up.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
for ns in "$NS_A" "$NS_B"; do
  if [ -f "$STATE/$ns.pid" ]; then
    kill "$(cat "$STATE/$ns.pid")" 2>/dev/null
    rm -f "$STATE/$ns.pid"
  fi
  ip netns del "$ns" 2>/dev/null
done
true
