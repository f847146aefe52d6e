#!/usr/bin/python3
"""Markdown table of a ratio study's CSV (scripts/study_ratio.sh, study_scale_slice.sh): each
remote run beside the local (CPU-only) run of the same jobs and events.

  scripts/ratio_table.py results/ratio/ratio-all-same-node.csv [more.csv ...]

Columns: jobs and client threads; events/s per job, remote and local, over the whole run
(events / wall time, ramp and tail included) and their ratio (the gain); the gain in the steady
window (events completed from 15% to 75% of the run); the device busy fraction; mean batch in
items; mean receiver queue; request round trip p50; MB/s through the transmitters (both ways);
fallbacks. The conditions (workload, device, CPU work, distance, time scale, commit) head each file."""
import csv
import sys

for path in sys.argv[1:]:
    rows = list(csv.DictReader(open(path)))
    local = {(r["workload"], r["transmitters"]): r for r in rows if r["mode"] == "local"}
    remote = [r for r in rows if r["mode"] == "remote"]
    if not remote:
        continue
    r0 = remote[0]
    print(f"`{path}`: device {r0['device']}, cpu work {r0['cpu_work']}, distance "
          f"{r0['distance']} (network {r0['network']}), time scale {r0['time_scale']}, {r0['threads']} threads and "
          f"{r0['inflight']} events in flight per job, max batch {r0['max_batch']} requests, commit "
          f"{r0['git_commit']}{'-dirty' if r0['git_dirty'] == 'true' else ''}, {r0['date']}\n")
    print("| workload | jobs | threads | remote ev/s/job | local ev/s/job | gain | gain (steady) | device busy | batch items "
          "| queue | round trip p50 ms | MB/s | fallbacks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in remote:
        n = int(r["transmitters"])
        l = local.get((r["workload"], r["transmitters"]))
        if l is None:
            continue
        rr, lr = float(r["events_per_s"]) / n, float(l["events_per_s"]) / n
        rs, ls = float(r["steady_events_per_s"]), float(l["steady_events_per_s"])
        print(f"| {r['workload']} | {n} | {n * int(r['threads'])} | {rr:.3f} | {lr:.3f} | {rr / lr:.3f} | {rs / ls:.3f} | "
              f"{float(r['device_busy_fraction']):.2f} | {float(r['mean_batch_items']):.1f} | "
              f"{float(r['mean_queue_requests']):.1f} | {float(r['round_trip_p50_ms']):.1f} | "
              f"{float(r['mb_per_s']):.0f} | {r['fallbacks']} |")
    print()
