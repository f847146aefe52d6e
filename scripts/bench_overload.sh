#!/usr/bin/env bash
# Overload: one slow receiver (synthetic kernel, about 6 ms of CPU per 256 KiB request, one
# kernel thread) against 1, 3 and 7 transmitters with deep windows (2 threads, 64 events in
# flight each, 4 credits). Prints, per run: the receiver's request rate, the event time, and the
# receiver's resident memory growth against the credit bound (tests/mpi/check_overload.py).
# Graceful: the rate stays at the receiver's capacity, latency grows with the queue, memory
# stays bounded, nothing is lost.
#   scripts/bench_overload.sh [EVENTS_PER_TRANSMITTER (60)]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-60}
scripts/build.sh >/dev/null
source scripts/env.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf "%-13s %8s %10s %10s %10s %12s %12s %8s\n" transmitters events "req/s" "p50_ms" "p99_ms" "rx_grew_MiB" "bound_MiB" lost
for tx in 1 3 7; do
  mpirun -np $((tx + 1)) build/apps/offload-run --receivers 1 --kernel synthetic --size 65536 --work 100 \
    --events "$events" --threads 2 --inflight 64 --credits 4 --max-message-bytes 1048576 --timeout-ms 600000 \
    --validate --quiet --json "$tmp/run.json" >"$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; exit 1; }
  python3 - "$tmp/run.json" "$tx" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); c, t = d["config"], d["total"]
rx = [r for r in d["ranks"] if r["role"] == "receiver"][0]
m = rx["memory"]
size_class = 1 << (int(c["max_message_bytes"]) - 1).bit_length()
bound = (c["transmitters"] * c["credits"] * 3 * size_class) / 2**20 + 48
lost = c["transmitters"] * c["events_per_transmitter"] - t["remote"] - t["fallbacks"]
print(f"{sys.argv[2]:<13} {t['events']:>8} {rx['requests_per_s']:>10.1f} {t['event_p50_ms']:>10.1f} "
      f"{t['event_p99_ms']:>10.1f} {(m['rss_max_kib'] - m['rss_start_kib']) / 1024:>12.1f} {bound:>12.0f} {lost:>8}")
PY
done
