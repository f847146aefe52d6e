#!/usr/bin/env bash
# What the library adds to raw MPI, measured in one sitting on this machine: offload-pingpong (raw)
# and offload-run --kernel echo at the same sizes and rank counts.
#   round trip: raw = 2 x the ping-pong half round trip (median); library = the p50 of
#               submit -> result of echo with 1 request in flight (1 transmitter, 1 receiver)
#   bandwidth kept: raw round trip / library round trip (the same bytes go both ways)
#   many-to-one: 7 transmitters -> 1 receiver, 64 KiB echo, 8 in flight each, against the raw
#               request/reply rate with 64 KiB requests and 64 KiB replies
#   receiver CPU: the receiver rank's process CPU and its progress thread's CPU over the requests
#               it served, in us per request, for every run above, and for 64 B echo 1 -> 1 at
#               2 threads x 16 in flight (results/transports.md's CPU-per-request test; 30000
#               events, about 0.3 s: a 3000-event run lasts 30 ms and its rate is bimodal). Over a
#               busy run it bounds how many requests per second one receiver core can take; note
#               that a progress thread that spins while idle counts its spin.
# Usage: [REPEATS=3] scripts/bench_overhead.sh [build-dir] [extra offload-run flags...]; prints the
# tables: each figure is the median of REPEATS runs (the rounds interleave the measurements), since
# single runs on this VM are bimodal (raw 64 KiB at 12 or 35 us half round trip, minutes apart).
# The 2-rank runs bind each rank to its own core (--bind-to core), raw and library alike: a
# latency measured with both ranks floating over 2 cores is bimodal (13 or 70 us at 8 B).
# Targets (issue 18, reported, not asserted): raw round trip kept at 64 KiB >= 70%, 1 MiB >= 80%,
# 16 MiB >= 85%; 7 -> 1 at 64 KiB >= 80% of raw; under 8 us added at 8 B; receiver CPU per 64 B
# request at least 2x below 16.4 us.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
source scripts/env.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=$build/apps/offload-run
pingpong=$build/apps/offload-pingpong
# json_value FILE EXPR: a value of offload-run's or offload-pingpong's --json output, e.g. d["total"]["wall_s"]

repeats=${REPEATS:-3}
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty) on $(hostname -s), $(nproc) cores;" \
  "$build; median of $repeats runs of each measurement, interleaved"
for r in $(seq "$repeats"); do
  mpirun --bind-to core -np 2 "$pingpong" --pattern latency --min-bytes 8 --max-bytes $((16 << 20)) \
    --json "$tmp/raw.$r.json" >/dev/null
  for bytes in 8 1024 65536 1048576 16777216; do
    events=$(( bytes >= 1048576 ? 100 : 2000 ))
    mpirun --bind-to core -np 2 "$run" --receivers 1 --backend cpu --kernel echo --size "$bytes" --events "$events" \
      --threads 1 --inflight 1 --quiet --json "$tmp/echo.$bytes.$r.json" "$@" >/dev/null
  done
  mpirun -np 8 "$pingpong" --pattern many-to-one --mr-bytes 65536 --mr-reply-bytes 65536 --json "$tmp/mr.$r.json" >/dev/null
  mpirun -np 8 "$run" --receivers 1 --backend cpu --kernel echo --size 65536 --events 3000 --threads 2 --inflight 8 \
    --quiet --json "$tmp/mr_echo.$r.json" "$@" >/dev/null
  mpirun -np 2 "$run" --receivers 1 --backend cpu --kernel echo --size 64 --events 30000 --warmup-events 2000 --threads 2 \
    --inflight 16 --credits 16 --quiet --json "$tmp/tput.$r.json" "$@" >/dev/null
done

python3 - "$tmp" "$repeats" <<'PY'
import json, statistics, sys
tmp, repeats = sys.argv[1], int(sys.argv[2])
load = lambda name: [json.load(open(f"{tmp}/{name}.{r}.json")) for r in range(1, repeats + 1)]
med = statistics.median
def rx_cpu(d):  # the receiver rank's process and progress-thread CPU per request it served, us
    rx = [r for r in d["ranks"] if r["role"] == "receiver"][0]
    n = max(rx["requests"], 1)
    return 1e6 * rx["cpu"]["process_s"] / n, 1e6 * rx["cpu"]["progress_thread_s"] / n
raws = load("raw")
print(f"{'bytes':>10} {'raw_rtt_us':>14} {'offload_rtt_us':>14} {'added_us':>12} {'kept':>10} {'rx_cpu_us':>12} {'rx_prog_us':>12}")
for b in (8, 1024, 65536, 1048576, 16777216):
    raw = med(2 * next(x["value"] for x in d["rows"] if x["bytes"] == b) for d in raws)
    libs = load(f"echo.{b}")
    lib = med(1000 * d["modules"][0]["latency"]["p50_ms"] for d in libs)
    cpu = med(rx_cpu(d)[0] for d in libs)
    prog = med(rx_cpu(d)[1] for d in libs)
    print(f"{b:>10} {raw:>14.2f} {lib:>14.2f} {lib - raw:>12.2f} {100 * raw / lib:>9.1f}% {cpu:>12.2f} {prog:>12.2f}")
raw_rate = med(d["rows"][0]["value"] for d in load("mr"))
mr = load("mr_echo")
lib_rate = med(d["total"]["events_per_s"] for d in mr)
print(f"\n{'many-to-one, 64 KiB both ways':<34} {'raw req/s':>12} {'offload/s':>12} {'kept':>8} {'rx_cpu_us':>12} {'rx_prog_us':>12}")
print(f"{'7 -> 1':<34} {raw_rate:>12.0f} {lib_rate:>12.0f} {100 * lib_rate / raw_rate:>7.1f}% "
      f"{med(rx_cpu(d)[0] for d in mr):>12.2f} {med(rx_cpu(d)[1] for d in mr):>12.2f}")
tp = load("tput")
print(f"\n{'receiver CPU, 64 B echo 1 -> 1':<34} {'req/s':>12} {'rx_cpu_us':>12} {'rx_prog_us':>12}")
print(f"{'2 threads x 16 in flight':<34} {med(d['total']['requests_per_s'] for d in tp):>12.0f} "
      f"{med(rx_cpu(d)[0] for d in tp):>12.2f} {med(rx_cpu(d)[1] for d in tp):>12.2f}")
PY
