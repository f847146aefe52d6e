#!/usr/bin/env python3
"""Check 1 of docs/planning.md: offload-sim beside measured offload-run points.

For every remote row of an offload-run CSV (scripts/study_ratio.sh writes them, with the
CPU-only row of the same jobs before it), runs `offload-sim run` with the same workload,
profile, jobs, threads, events in flight, max batch and round trip (2 x the injected one-way
latency), the given calibration file, and prints both side by side as a Markdown table:
events/s per job (the steady rate) with the GPUs and CPU-only, the round trip's p50 and the
event time's p50. A point is within tolerance when the simulated events/s are within 10% and the p50 within 20%.

Rows with a CPU receiver (backend cpu) are modelled with the workload's model costs on the
receiver's CPU, or, for the single workload's kernel, with --cpu-profile; rows without a
CPU-only twin show nan there.

usage: sim_check_real.py CSV CALIBRATION [--build build-cpu] [--seconds 200] [--eager-limit-kib 0]
                         [--cpu-profile results/ratio/profile-measured-cpu-mlp.json]
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
    ap.add_argument("--host-cores", type=float, default=0,
                    help="the machine the points ran on (its cores shared by every rank); 0: each job its own cores")
    ap.add_argument("--cpu-profile", help="device profile of a CPU receiver's kernel (rows of the single workload)")
    ap.add_argument("--eager-limit-kib", type=float, default=0,
                    help="0 for latency injected in the transport (no rendezvous); 64 for real TCP")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.csv)))
    local = {}
    out = []
    misses = 0
    print(f"| jobs | threads | in flight | rtt ms | measured events/s/job | simulated | ratio | measured CPU-only | simulated | ratio "
          f"| measured rt p50 ms | simulated | ratio | measured event p50 ms | simulated | within |")
    print("|" + "---|" * 16)
    for r in rows:
        n = int(r["transmitters"])
        if r["mode"] == "local":
            local[n] = float(r["steady_events_per_s"]) / n
            continue
        extra = []
        if r.get("device", "real").startswith("EMULATED"):
            profile = r["device"].split(", ")[1]
        elif r.get("backend") == "cpu" and r["workload"] != "single":
            profile, extra = "t4", ["--backend", "cpu"]  # the models' CPU cost, from the workload
        elif r.get("backend") == "cpu" and a.cpu_profile:
            profile, extra = a.cpu_profile, ["--backend", "cpu", "--kernel", r["kernels"]]
        else:
            sys.exit(f"{a.csv}: row of {n} jobs: no device to model (device {r.get('device')!r}, backend "
                     f"{r.get('backend')!r}; a CPU receiver's kernel needs --cpu-profile)")
        rtt_ms = 2 * float(r["inject_latency_ms"])
        with tempfile.TemporaryDirectory() as tmp:
            js = os.path.join(tmp, "sim.json")
            cmd = [f"{a.build}/apps/offload-sim", "run", "--workload", r["workload"], "--profile", profile,
                   "--calibration", a.calibration, "--jobs", str(n), "--threads", r["threads"], "--inflight",
                   r["inflight"], "--max-batch", r["max_batch"], "--rtt-ms", str(rtt_ms), "--eager-limit-kib",
                   str(a.eager_limit_kib), "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--json", js,
                   "--time-scale", r.get("time_scale", "1"), "--credits", r.get("credits", "0"), "--host-cores", str(a.host_cores)] + extra
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            s = json.load(open(js))
        # the steady rate where offload-run reports it, else events over the whole run
        m_rate = float(r.get("steady_events_per_s") or r["events_per_s"]) / n
        s_rate = s["remote"]["events_per_s_per_job"]
        s_local = s["cpu_only"]["events_per_s_per_job"]
        m_p50 = float(r["round_trip_p50_ms"])
        s_p50 = s["remote"]["stages"]["round_trip"]["p50_ms"]
        m_event = float(r["event_p50_ms"])
        s_event = s["remote"]["event_time"]["p50_ms"]
        ok = abs(s_rate / m_rate - 1) <= 0.10 and abs(s_p50 / m_p50 - 1) <= 0.20
        misses += 0 if ok else 1
        m_local = local.get(n, float("nan"))
        print(f"| {n} | {n * int(r['threads'])} | {r['inflight']} | {rtt_ms:g} | {m_rate:.3f} | {s_rate:.3f} | {s_rate / m_rate:.3f} "
              f"| {m_local:.3f} | {s_local:.3f} | {s_local / m_local:.3f} | {m_p50:.1f} | {s_p50:.1f} "
              f"| {s_p50 / m_p50:.3f} | {m_event:.0f} | {s_event:.0f} | {'yes' if ok else 'NO'} |")
    print(f"\n{misses} point(s) outside 10% (events/s) or 20% (round trip p50)")


if __name__ == "__main__":
    main()
