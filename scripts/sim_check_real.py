#!/usr/bin/env python3
"""Check 1 of docs/planning.md: offload-sim beside measured offload-run points.

For every remote row of an offload-run CSV (scripts/study_ratio.sh writes them, with the
CPU-only row of the same jobs before it), runs `offload-sim run` with the same workload,
profile, jobs, threads, events in flight, max batch and round trip (2 x the injected one-way
latency), the given calibration file, and prints both side by side as a Markdown table:
events/s per job (the steady rate) with the GPUs and CPU-only, the round trip's p50 and the
event time's p50. A point is within tolerance when the simulated events/s are within 10% and the p50 within 20%.

usage: sim_check_real.py CSV CALIBRATION [--build build-cpu] [--seconds 200] [--eager-limit-kib 0]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("calibration")
    ap.add_argument("--build", default="build-cpu")
    ap.add_argument("--seconds", type=float, default=200)
    ap.add_argument("--warmup", type=float, default=30)
    ap.add_argument("--eager-limit-kib", type=float, default=0,
                    help="0 for latency injected in the transport (no rendezvous); 64 for real TCP")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.csv)))
    local = {}
    out = []
    misses = 0
    print(f"| jobs | threads | rtt ms | measured events/s/job | simulated | ratio | measured CPU-only | simulated | ratio "
          f"| measured rt p50 ms | simulated | ratio | measured event p50 ms | simulated | within |")
    print("|" + "---|" * 15)
    for r in rows:
        n = int(r["transmitters"])
        if r["mode"] == "local":
            local[n] = float(r["steady_events_per_s"]) / n
            continue
        profile = r["device"].split(", ")[1] if r["device"].startswith("EMULATED") else None
        if profile is None:
            sys.exit(f"{a.csv}: row of {n} jobs has no emulated device profile (device {r['device']!r})")
        rtt_ms = 2 * float(r["inject_latency_ms"])
        with tempfile.TemporaryDirectory() as tmp:
            js = os.path.join(tmp, "sim.json")
            cmd = [f"{a.build}/apps/offload-sim", "run", "--workload", r["workload"], "--profile", profile,
                   "--calibration", a.calibration, "--jobs", str(n), "--threads", r["threads"], "--inflight",
                   r["inflight"], "--max-batch", r["max_batch"], "--rtt-ms", str(rtt_ms), "--eager-limit-kib",
                   str(a.eager_limit_kib), "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--json", js]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            s = json.load(open(js))
        m_rate = float(r["steady_events_per_s"]) / n
        s_rate = s["remote"]["events_per_s_per_job"]
        s_local = s["cpu_only"]["events_per_s_per_job"]
        m_p50 = float(r["round_trip_p50_ms"])
        s_p50 = s["remote"]["stages"]["round_trip"]["p50_ms"]
        m_event = float(r["event_p50_ms"])
        s_event = s["remote"]["event_time"]["p50_ms"]
        ok = abs(s_rate / m_rate - 1) <= 0.10 and abs(s_p50 / m_p50 - 1) <= 0.20
        misses += 0 if ok else 1
        m_local = local.get(n, float("nan"))
        print(f"| {n} | {n * int(r['threads'])} | {rtt_ms:g} | {m_rate:.3f} | {s_rate:.3f} | {s_rate / m_rate:.3f} "
              f"| {m_local:.3f} | {s_local:.3f} | {s_local / m_local:.3f} | {m_p50:.1f} | {s_p50:.1f} "
              f"| {s_p50 / m_p50:.3f} | {m_event:.0f} | {s_event:.0f} | {'yes' if ok else 'NO'} |")
    print(f"\n{misses} point(s) outside 10% (events/s) or 20% (round trip p50)")


if __name__ == "__main__":
    main()
