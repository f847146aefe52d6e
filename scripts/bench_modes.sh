#!/usr/bin/env bash
# Remote against local, in ONE run: the same events of the same workload, once with every
# module inline on the event's thread (--mode local, T transmitter ranks) and once offloaded
# (--mode remote, R receivers + the same T transmitter ranks). Prints both rows, the
# remote/local throughput ratio, and whether the output digests agree.
# Usage: scripts/bench_modes.sh [-b build-dir] [-t transmitters] [-r receivers] [offload-run flags...]
#   e.g. scripts/bench_modes.sh -t 2 -r 1 --workload miniaod --time-scale 0.05 --events 40
set -euo pipefail
cd "$(dirname "$0")/.."
build=build transmitters=2 receivers=1
while [ $# -gt 0 ]; do
  case $1 in
    -b) build=$2; shift 2 ;;
    -t) transmitters=$2; shift 2 ;;
    -r) receivers=$2; shift 2 ;;
    *) break ;;
  esac
done
source scripts/env.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=$build/apps/offload-run
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty) on $(hostname -s), $(nproc) cores"
echo "# flags: $*"
mpirun -np "$transmitters" "$run" --mode local --quiet --json "$tmp/local.json" "$@" >/dev/null
# The remote run repeats the local run's calibration, so that both do exactly the same work.
read -r ns work < <(python3 -c "import json, sys; c = json.load(open(sys.argv[1]))['config']
print(c['ns_per_iteration'], ','.join(str(m['work']) for m in c['modules']))" "$tmp/local.json")
echo "# calibration of the local run, repeated by the remote run: --ns-per-iteration $ns --module-work $work"
mpirun -np $((transmitters + receivers)) "$run" --mode remote --receivers "$receivers" --ns-per-iteration "$ns" \
  --module-work "$work" --quiet --json "$tmp/remote.json" "$@" >/dev/null
python3 - "$tmp/local.json" "$tmp/remote.json" <<'PY'
import json, sys
rows = [json.load(open(p)) for p in sys.argv[1:]]
print(f"{'mode':<8} {'ranks':>5} {'events':>7} {'wall_s':>8} {'events/s':>9} {'event_p50_ms':>13} {'event_p99_ms':>13} "
      f"{'cpu_ms/event':>12} {'remote':>7} {'fallbacks':>9}  digest")
for d in rows:
    t = d["total"]
    cpu = sum(r["cpu"]["process_s"] for r in d["ranks"]) / t["events"]  # every rank's CPU
    print(f"{t['mode']:<8} {t['ranks']:>5} {t['events']:>7} {t['wall_s']:>8.3f} {t['events_per_s']:>9.2f} "
          f"{t['event_p50_ms']:>13.3f} {t['event_p99_ms']:>13.3f} {1e3 * cpu:>12.2f} {t['remote']:>7} "
          f"{t['fallbacks']:>9}  {t['digest']}")
local, remote = (d["total"] for d in rows)
print(f"remote/local throughput: {remote['events_per_s'] / local['events_per_s']:.3f}; "
      f"outputs {'identical' if local['digest'] == remote['digest'] else 'DIFFERENT'}")
for m in rows[1]["modules"]:
    print(f"  remote {m['name']:<8} round trip p50 {m['latency']['p50_ms']:.3f} ms")
for m in rows[0]["modules"]:
    print(f"  local  {m['name']:<8} kernel p50 {m['latency']['p50_ms']:.3f} ms")
PY
