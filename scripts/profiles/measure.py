#!/usr/bin/python3
"""Measures a device profile (docs/emulated-device.md) of a receiver backend from real runs,
then checks the emulated device against the real one.

  scripts/profiles/measure.py --backend cuda --kernel mlp --out profiles/measured-h200.json
  scripts/profiles/measure.py --backend cpu --kernel mlp --out /tmp/cpu.json --check

For each batch size B (--batches), one offload-run with --max-batch B and enough requests in
flight to fill batches: the profile's row is (mean requests per batch, mean kernel stage in ms)
of that run, the kernel stage being what a batch takes on the backend, copies included. Rows
whose batch does not grow, or whose time falls below the previous row's (noise), are left out
and said so in the profile's source. --check then runs one configuration (--check-batch) with
the real backend and with --backend emulated --profile OUT, and prints events/s and the round
trip p50 of both and their ratios: how well the emulation stands for the backend it measured."""
import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(a, extra, path):
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(a.transmitters + 1),
           os.path.join(a.build, "apps", "offload-run"), "--kernel", a.kernel, "--events", str(a.events),
           "--threads", "2", "--inflight", str(a.inflight), "--quiet", "--json", path] + a.flags.split() + extra
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    with open(path) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--backend", default="cuda")
    p.add_argument("--kernel", default="mlp")
    p.add_argument("--batches", default="1,2,4,8,16,32")
    p.add_argument("--transmitters", type=int, default=3)
    p.add_argument("--inflight", type=int, default=32)
    p.add_argument("--events", type=int, default=400)
    p.add_argument("--flags", default="", help="more offload-run flags for every run (quoted)")
    p.add_argument("--out", required=True)
    p.add_argument("--check", action="store_true")
    p.add_argument("--check-batch", type=int, default=8)
    a = p.parse_args()
    tmp = tempfile.mkdtemp()
    rows, dropped, device = [], [], a.backend
    for b in [int(x) for x in a.batches.split(",")]:
        r = run(a, ["--backend", a.backend, "--max-batch", str(b)], os.path.join(tmp, f"b{b}.json"))
        rx = next(x for x in r["ranks"] if x["role"] == "receiver")
        device = rx.get("backend_description") or rx.get("backend")
        size, ms = r["total"]["mean_batch_requests"], r["stages"]["kernel"]["mean_ms"]
        if rows and (size <= rows[-1][0] + 1e-9 or ms < rows[-1][1]):
            dropped.append(f"max-batch {b}: {size:.2f} requests in {ms:.4f} ms")
            continue
        rows.append([round(size, 3), round(ms, 4)])
        print(f"max-batch {b:>3}: mean batch {size:6.2f} requests, kernel {ms:8.4f} ms", file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = (f"scripts/profiles/measure.py on {socket.gethostname()} ({device}), {when}, commit {commit}: "
              f"offload-run --backend {a.backend} --kernel {a.kernel}, {a.transmitters} transmitters x 2 threads, "
              f"{a.inflight} in flight; mean kernel stage per batch" +
              (f"; left out (batch did not grow or time fell): {'; '.join(dropped)}" if dropped else ""))
    profile = {
        "device": f"{a.backend}: {device}", "source": source,
        "concurrency": {"value": 1, "source": "one receiver kernel thread in every measured run"},
        "host_device": {"bandwidth_gbytes_per_s": 12.0, "latency_us": 10, "included_in_tables": True,
                        "source": "the kernel stage includes the backend's copies; the figures here are unused"},
        "models": {a.kernel: {"source": source + " (batch in requests)", "table": rows}},
    }
    with open(a.out, "w") as f:
        json.dump(profile, f, indent=1)
        f.write("\n")
    print(f"wrote {a.out}: {a.kernel} {rows}")
    if not a.check:
        return
    b = ["--max-batch", str(a.check_batch)]
    real = run(a, ["--backend", a.backend] + b, os.path.join(tmp, "real.json"))
    emu = run(a, ["--backend", "emulated", "--profile", a.out] + b, os.path.join(tmp, "emulated.json"))
    print(f"{'backend':<40} {'events/s':>9} {'round_trip_p50_ms':>18} {'kernel_mean_ms':>15} {'batch':>6}")
    for name, r in ((a.backend, real), (emu["total"]["device"], emu)):
        t = r["total"]
        print(f"{name[:40]:<40} {t['events_per_s']:>9.1f} {t['round_trip_p50_ms']:>18.3f} "
              f"{r['stages']['kernel']['mean_ms']:>15.4f} {t['mean_batch_requests']:>6.2f}")
    rt, et = real["total"], emu["total"]
    print(f"emulated/real: events/s {et['events_per_s'] / rt['events_per_s']:.3f}, round trip p50 "
          f"{et['round_trip_p50_ms'] / rt['round_trip_p50_ms']:.3f}")


if __name__ == "__main__":
    main()
