#!/usr/bin/env bash
# The progress threads' wait policies at realistic request rates, in ONE run: 1 receiver + 1
# transmitter over MPI, one worker thread, one event in flight, kernel mlp with 16 jets, under
# --wait-policy adaptive, spin, yield and block, at one request every 0.05, 1, 5, 20 and 60 ms
# (the four policies one after the other at each interval, so that they meet the same noise).
#
# How the interval is produced: each event first holds its worker thread for the interval
# (--cpu-work emulated --cpu-before-ms X: a sleep, no CPU), then sends its one request and
# waits for the reply (--threads 1 --inflight 1). Requests thus leave every X ms plus one round
# trip plus the thread hand-offs; gap_ms is the measured mean (transmitter wall time / requests).
# Each run is about 2 s (fewer events at longer intervals) after 10 warm-up events, which the
# adaptive policy learns from; the whole script takes about 2 minutes.
#
# Per row: requests; transmitter CPU per request, the process (tx_ms) and its progress thread
# (tx_prog_ms), over the measured events; receiver CPU per request (rx_ms, rx_prog_ms) over its
# whole run, divided by every request it served (warm-up included); round trip p50 and p99.
# CPU time is what every thread of the rank used (getrusage), so it counts the MPI library's
# own polling and the worker's wake-ups too.
# Usage: scripts/bench_wait.sh [build-dir] [extra offload-run flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
source scripts/env.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=$build/apps/offload-run

echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty) on $(hostname -s), $(nproc) cores"
printf '%-11s %-9s %8s %8s %8s %10s %8s %10s %8s %8s\n' interval_ms policy requests gap_ms tx_ms tx_prog_ms rx_ms \
  rx_prog_ms rtt_p50 rtt_p99
for interval in 0.05 1 5 20 60; do
  case $interval in
    0.05) events=4000 ;;
    1) events=1200 ;;
    5) events=350 ;;
    20) events=90 ;;
    60) events=30 ;;
  esac
  for policy in adaptive spin yield block; do
    mpirun -np 2 "$run" --backend cpu --kernel mlp --size 16 --threads 1 --inflight 1 --cpu-work emulated \
      --cpu-before-ms "$interval" --events "$events" --warmup-events 10 --wait-policy "$policy" \
      --quiet --json "$tmp/w.json" "$@" >/dev/null
    python3 - "$tmp/w.json" "$interval" "$policy" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["total"]
tx = [r for r in d["ranks"] if r["role"] == "transmitter"][0]
rx = [r for r in d["ranks"] if r["role"] == "receiver"][0]
n, m = t["requests"], rx["requests"]
ms = lambda s, k: 1e3 * s / k
print(f"{sys.argv[2]:<11} {sys.argv[3]:<9} {n:8d} {ms(tx['wall_s'], n):8.3f} "
      f"{ms(tx['cpu']['process_s'], n):8.3f} {ms(tx['cpu']['progress_thread_s'], n):10.3f} "
      f"{ms(rx['cpu']['process_s'], m):8.3f} {ms(rx['cpu']['progress_thread_s'], m):10.3f} "
      f"{t['round_trip_p50_ms']:8.3f} {t['round_trip_p99_ms']:8.3f}")
PY
  done
done
