#!/usr/bin/env bash
# What deadlines save: a receiver slowed past its transmitters' timeout, with and without
# deadlines in the requests (protocol 5). Every transmitter offers more synthetic requests than
# the receiver's one kernel thread can run in time, so requests wait, time out and fall back to
# the transmitters' CPUs. Without deadlines (--no-deadlines) the receiver still runs them: device
# time for events that fell back already. With deadlines it answers them `expired` unrun.
# Runs both, interleaved, REPEATS times, and prints per run and the medians: the receiver's busy
# seconds, the transmitters' late replies and their kernel seconds (the wasted device time),
# expired answers, remote results and events/s.
# Usage: scripts/bench_deadlines.sh [-b build-dir] [offload-run flags...]
#   default: 3 transmitters x 2 threads x 4 in flight (24 requests offered at once to one kernel
#   thread), synthetic --size 1000 --work 1500 (about 10 ms per request on this VM: 7 ns per
#   iteration), --timeout-ms 40, 200 events each: the first few requests of a queue are answered
#   in time, the rest wait past the timeout
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [ "${1:-}" = -b ]; then
  build=$2
  shift 2
fi
repeats=${REPEATS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # $1: label, rest: extra flags
  local label=$1
  shift
  timeout 300 mpiexec --oversubscribe --mca btl self,vader,tcp -np 4 "$build/apps/offload-run" --receivers 1 \
    --backend cpu --receiver-threads 1 --kernel synthetic --size 1000 --work 1500 --threads 2 --inflight 4 \
    --events 200 --warmup-events 0 --timeout-ms 40 --credits 8 --quiet --json "$tmp/$label.json" "$@" >/dev/null 2>"$tmp/$label.log"
}
for i in $(seq 1 "$repeats"); do
  run "on-$i" "$@"
  run "off-$i" --no-deadlines "$@"
done
python3 - "$tmp" "$repeats" <<'PY'
import json, statistics, sys
tmp, repeats = sys.argv[1], int(sys.argv[2])
def figures(path):
    j = json.load(open(path))
    ranks = j["ranks"]
    rx = [r for r in ranks if r["role"] == "receiver"]
    tx = [r for r in ranks if r["role"] != "receiver"]
    t = j["total"]
    return {
        "receiver busy s": sum(r.get("busy_s", 0) for r in rx),
        "receiver runs": sum(sum(r.get("batch_sizes", {}).values()) for r in rx),
        "late replies": t["faults_late_replies"],
        "late kernel s": t["faults_late_kernel_ns"] / 1e9,
        "expired": sum(r.get("expired", 0) for r in rx),
        "remote": t["remote"],
        "events/s": t["events_per_s"],
    }
keys = ["receiver busy s", "receiver runs", "late replies", "late kernel s", "expired", "remote", "events/s"]
rows = {"deadlines": [], "no deadlines": []}
for i in range(1, repeats + 1):
    rows["deadlines"].append(figures(f"{tmp}/on-{i}.json"))
    rows["no deadlines"].append(figures(f"{tmp}/off-{i}.json"))
print("| run | " + " | ".join(keys) + " |")
print("|---|" + "---|" * len(keys))
for label, runs in rows.items():
    for i, r in enumerate(runs, 1):
        print(f"| {label} #{i} | " + " | ".join(f"{r[k]:.3g}" for k in keys) + " |")
for label, runs in rows.items():
    print(f"| **{label}, median** | " + " | ".join(f"{statistics.median(r[k] for r in runs):.3g}" for k in keys) + " |")
on = statistics.median(r["late kernel s"] for r in rows["deadlines"])
off = statistics.median(r["late kernel s"] for r in rows["no deadlines"])
busy_on = statistics.median(r["receiver busy s"] for r in rows["deadlines"])
busy_off = statistics.median(r["receiver busy s"] for r in rows["no deadlines"])
print(f"device time on events that had fallen back: {off:.3f} s without deadlines, {on:.3f} s with "
      f"({(1 - on / off) * 100 if off > 0 else 0:.0f}% saved); receiver busy {busy_off:.2f} s -> {busy_on:.2f} s")
PY
