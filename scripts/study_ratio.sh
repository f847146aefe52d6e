#!/usr/bin/env bash
# The ratio study: how many CPU threads one emulated GPU serves. miniaod (or --workload) with
# emulated client CPU (--cpu-work emulated: each job's worker threads are held for the event's
# CPU time, so one machine hosts hundreds of client threads) and an emulated device (--backend
# emulated --profile), N jobs of T threads against one receiver (one device), for each N. Each
# point runs twice, the same events: remote, and --mode local (the CPU-only baseline: every
# model inline). Rows go to OUT.csv (offload-run's CSV, with the profile, flags and commit),
# and a table to stdout: events/s per job, gain over CPU-only, device busy fraction, mean
# batch, round trip p50, MB/s into the device's site.
#
# Usage: scripts/study_ratio.sh [-b build] [-o OUT.csv] [-j "1 10 50 100"] [-p PROFILE (t4)]
#                               [-m all|pn_ak4|pn_ak8|deepmet|deeptau] [offload-run flags, e.g. --distance far-dc --events 12]
# -m MODEL: only that model is offloaded (a workload made from miniaod.json, the other models'
#           CPU cost moved into the "after" CPU work): where THAT model's GPU saturates.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build out=results/ratio-study.csv jobs="1 10 25 50 100" model=all profile=t4
while [ $# -gt 0 ]; do
  case $1 in
    -b) build=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    -m) model=$2; shift 2 ;;
    -p) profile=$2; shift 2 ;;
    *) break ;;
  esac
done
source scripts/env.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
workload=workloads/miniaod.json
if [ "$model" != all ]; then
  workload=$tmp/miniaod-$model-only.json
  python3 - "$model" "$workload" <<'PY'
import json, sys
w = json.load(open("workloads/miniaod.json"))
keep = [m for m in w["modules"] if m["model"] == sys.argv[1]]
if not keep:
    sys.exit(f"study_ratio: miniaod has no model {sys.argv[1]}")
w["cpu_ms_after"] += sum(m["cpu_ms"] for m in w["modules"] if m["model"] != sys.argv[1])
w["name"] = f"miniaod-{sys.argv[1]}-only"
w["source"] += f"; only {sys.argv[1]} offloaded, the other models' CPU cost moved to the after work"
w["modules"] = keep
json.dump(w, open(sys.argv[2], "w"), indent=1)
PY
fi
run=$build/apps/offload-run
common=(--workload "$workload" --cpu-work emulated --threads 4 --inflight 8 --wait-policy block --quiet)
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty) on $(hostname -s), $(nproc) cores"
echo "# workload $workload, profile $profile, jobs of 4 threads, 8 events in flight, client CPU EMULATED; flags: $*"
printf '%5s %8s %10s %10s %7s %6s %9s %9s %12s %9s\n' jobs threads remote/job local/job gain busy batch_it \
  queue rt_p50_ms MB/s_in
for n in $jobs; do
  mpirun --oversubscribe --bind-to none -np "$n" "$run" "${common[@]}" --mode local --json "$tmp/local.json" \
    --csv "$out" "$@" >/dev/null
  mpirun --oversubscribe --bind-to none -np $((n + 1)) "$run" "${common[@]}" --backend emulated --profile "$profile" \
    --max-batch 64 --json "$tmp/remote.json" --csv "$out" "$@" >/dev/null
  python3 - "$n" "$tmp/local.json" "$tmp/remote.json" <<'PY'
import json, sys
n = int(sys.argv[1])
local, remote = (json.load(open(p)) for p in sys.argv[2:4])
l, r = local["total"], remote["total"]
rx = next(x for x in remote["ranks"] if x["role"] == "receiver")
mb_in = rx["bytes_in"] / 1e6 / rx["wall_s"]
print(f"{n:>5} {4 * n:>8} {r['steady_events_per_s'] / n:>10.3f} {l['steady_events_per_s'] / n:>10.3f} "
      f"{r['steady_events_per_s'] / l['steady_events_per_s']:>7.3f} {r['device_busy_fraction']:>6.3f} {r['mean_batch_items']:>9.1f} "
      f"{r['mean_queue_requests']:>9.2f} {r['round_trip_p50_ms']:>12.3f} {mb_in:>9.1f}"
      + ("" if r["fallbacks"] == 0 and r["errors"] == 0 else f"  fallbacks {r['fallbacks']} errors {r['errors']}"))
PY
done
echo "# events/s per job: steady rate (events done between the 10th and 90th percentile of completion times,"
echo "# over that time; summed over jobs, divided by jobs); gain: remote over local, the same jobs and events;"
echo "# busy: share of the run with a"
echo "# batch on the emulated device; batch_it: mean items (jets, taus, events) per batch; queue: mean requests"
echo "# waiting at the receiver; rt_p50: request round trip; MB/s_in: request bytes into the receiver"
