#!/usr/bin/env bash
# Fallback at scale: every receiver gone against no offloading at all. The same events run
# with --mode local (every module inline on its event's thread) and with --mode remote
# --receivers 0 (no receiver: every request runs as a local fallback on the transmitter's
# fallback threads), for each --fallback-threads value (0: as many as --threads, the default).
# The published claim (CMS-MLG-23-001: a CPU fallback server on the client node gives the same
# throughput as direct inference) is that the ratio stays 1.
# Usage: scripts/bench_fallback.sh [-b build-dir] [-t transmitters] [-f "1 0"] [offload-run flags...]
#   e.g. scripts/bench_fallback.sh -t 1 -f "1 0" --workload miniaod --time-scale 0.05 --threads 2 --inflight 4 --events 60
set -euo pipefail
cd "$(dirname "$0")/.."
build=build transmitters=1 fallback_threads="1 0"
while [ $# -gt 0 ]; do
  case $1 in
    -b) build=$2; shift 2 ;;
    -t) transmitters=$2; shift 2 ;;
    -f) fallback_threads=$2; shift 2 ;;
    *) break ;;
  esac
done
for f in $fallback_threads; do
  echo "== --fallback-threads $f$([ "$f" = 0 ] && echo ' (= --threads, the default)')"
  scripts/bench_modes.sh -b "$build" -t "$transmitters" -r 0 --fallback-threads "$f" "$@" |
    sed 's/^remote /fallback /; s|remote/local throughput|fallback/local throughput|'
done
