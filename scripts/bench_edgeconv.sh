#!/usr/bin/env bash
# The EdgeConv example kernel (examples/edgeconv, loaded with --plugin) on a receiver's backend:
# events/s at 1, 3 and 7 transmitter ranks, local (every event's jets tagged on its own thread)
# against remote (1 receiver), each pair measured back to back by bench_modes.sh with the same
# events and calibration, outputs compared by digest. Builds the example against an install
# of BUILD first (tests/example/build.sh) unless BUILD/tests/example/build has it.
# Usage: scripts/bench_edgeconv.sh [-b build-dir] [--backend cpu|cuda] [offload-run flags...]
#   default: -b build, --backend cpu, 16 jets per event, 200 events per transmitter, 2 threads, not
#   validated (validation repeats every remote result on the transmitter's CPU; the digests compare).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build backend=cpu
while [ $# -gt 0 ]; do
  case $1 in
    -b) build=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    *) break ;;
  esac
done
plugin=$build/tests/example/build/edgeconv_plugin.so
[ -f "$plugin" ] || tests/example/build.sh "$build" "$build/tests/example" >/dev/null
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty): EdgeConv (examples/edgeconv)" \
  "via --plugin, backend $backend, $(nproc) cores on $(hostname -s)"
for tx in 1 3 7; do
  echo "## $tx transmitter(s) -> 1 receiver"
  scripts/bench_modes.sh -b "$build" -t "$tx" -r 1 --plugin "$plugin" --kernel edgeconv --size 16 --events 200 \
    --threads 2 --inflight 4 --backend "$backend" "$@" | grep -v '^# [0-9]'
done
