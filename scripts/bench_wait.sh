#!/usr/bin/env bash
# The progress threads' wait policy, measured in ONE run: the same jobs under --wait-policy
# adaptive, spin, yield and block, with more ranks than cores on this machine. Per policy and
# job it prints throughput, latency, and the CPU the progress threads used (sum over ranks, in
# cores: 1.0 is a core spinning for the whole run) against the CPU of the whole job.
#   jobs: "echo 8B"    1 receiver + 1 transmitter, 1 request in flight (latency-bound)
#         "mlp 3->1"   1 receiver + 3 transmitters, 4 events in flight each (throughput-bound)
#         "miniaod"    1 receiver + 3 transmitters, CPU work per event (--time-scale 0.02): the
#                      progress threads compete with the workers for the cores
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
printf '%-10s %-9s %10s %12s %12s %14s %12s\n' job policy events/s event_p50_ms rtt_p50_ms progress_cores job_cores
for job in "echo 8B" "mlp 3->1" "miniaod"; do
  case $job in
    "echo 8B") args=(-np 2 "$run" --kernel echo --size 8 --events 5000 --threads 1 --inflight 1) ;;
    "mlp 3->1") args=(-np 4 "$run" --kernel mlp --events 1500 --threads 2 --inflight 4) ;;
    miniaod) args=(-np 4 "$run" --workload miniaod --time-scale 0.02 --events 60 --threads 2 --inflight 4) ;;
  esac
  for policy in adaptive spin yield block; do
    mpirun "${args[@]}" --wait-policy "$policy" --quiet --json "$tmp/w.json" "$@" >/dev/null
    python3 - "$tmp/w.json" "$job" "$policy" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["total"]
wall = t["wall_s"]
progress = sum(r["cpu"]["progress_thread_s"] for r in d["ranks"]) / wall
job = sum(r["cpu"]["process_s"] for r in d["ranks"]) / wall
print(f"{sys.argv[2]:<10} {sys.argv[3]:<9} {t['events_per_s']:10.1f} {t['event_p50_ms']:12.3f} "
      f"{t['round_trip_p50_ms']:12.3f} {progress:14.2f} {job:12.2f}")
PY
  done
done
