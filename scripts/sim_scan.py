#!/usr/bin/python3
"""Check 4 (results/planning.md): the published one-model saturation scans (CMS-MLG-23-001
[P-data], shared/facts/sonic-miniaod-t4.md) beside offload-sim. For each model: N 4-thread jobs,
4 events in flight, that model alone on one T4 and the other models on each job's own CPU (as
the published scans), the same N jobs CPU-only; events/s per job. Saturation, two ways: where
the rate falls below the run's CPU-only rate (the published criterion), and where it falls 2.5%
below its own rate at the lowest N (the published curves' drop from their plateau to CPU-only).
Writes a CSV and a plot labelled SIMULATED.

usage: sim_scan.py [--sim build-cpu/apps/offload-sim] [--profile t4] [--csv OUT.csv] [--png OUT.png]
                   [-- extra offload-sim arguments]
"""
import argparse
import csv
import re
import subprocess

# Median events/s per 4-thread job against jobs on one T4 [P-data]; CPU-only 3.88.
PUBLISHED = {
    "pn_ak4": [(60, 3.97), (100, 4.00), (120, 3.96), (148, 3.95), (180, 3.77)],
    "deeptau": [(51, 3.98), (64, 3.94), (66, 3.83), (68, 3.77)],
}
PUBLISHED_CPU_ONLY = 3.88
JOBS = {
    "pn_ak4": [40, 60, 80, 100, 120, 140, 148, 160, 170, 180, 200, 240],
    "deeptau": [30, 40, 51, 58, 64, 68, 75, 85, 100, 120, 140, 160],
}
MODELS = ["pn_ak4", "pn_ak8", "deepmet", "deeptau"]


def run(sim, profile, model, jobs, extra):
    cmd = [sim, "run", "--workload", "miniaod", "--profile", profile, "--calibration",
           "results/planning/calibration-same-node.json", "--threads", "4", "--inflight", "4",
           "--gpus", f"{model}=1", "--local-models", ",".join(m for m in MODELS if m != model),
           "--max-batch", "64", "--jobs", str(jobs), "--seconds", "120", "--warmup", "30"] + extra
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"events/s per job: ([0-9.]+) with the GPUs, ([0-9.]+) CPU-only", out)
    busy = re.search(rf"GPU group {model}: 1 GPUs, busy ([0-9.]+)(?:, front end busy ([0-9.]+))?", out)
    return float(m.group(1)), float(m.group(2)), float(busy.group(1)), float(busy.group(2) or 0)


def crossing(points, threshold):
    """The first N where the rate falls below threshold, linearly between points."""
    for (n0, r0), (n1, r1) in zip(points, points[1:]):
        if r0 >= threshold > r1:
            return n0 + (r0 - threshold) / (r0 - r1) * (n1 - n0)
    return None if points[-1][1] >= threshold else points[0][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sim", default="build-cpu/apps/offload-sim")
    ap.add_argument("--profile", default="t4")
    ap.add_argument("--csv", default="")
    ap.add_argument("--png", default="")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    rows, curves = [], {}
    for model, jobs in JOBS.items():
        pts = []
        for n in jobs:
            rate, cpu, busy, fe = run(a.sim, a.profile, model, n, a.extra)
            rows.append({"model": model, "jobs": n, "events_per_s_per_job": rate, "cpu_only": cpu,
                         "gpu_busy": busy, "front_end_busy": fe})
            pts.append((n, rate, cpu))
        curves[model] = pts
        cpu = sum(p[2] for p in pts) / len(pts)
        below_cpu = crossing([(n, r) for n, r, _ in pts], cpu)
        below_plateau = crossing([(n, r) for n, r, _ in pts], 0.975 * pts[0][1])
        pub = PUBLISHED[model]
        pub_cross = crossing(pub, PUBLISHED_CPU_ONLY)
        print(f"{model}: SIMULATED saturation {fmt(below_cpu)} jobs (below CPU-only {cpu:.3f}), "
              f"{fmt(below_plateau)} jobs (2.5% below its rate at {pts[0][0]} jobs, {pts[0][1]:.3f}); "
              f"published {fmt(pub_cross)} jobs (below {PUBLISHED_CPU_ONLY})")
        for n, r, c in pts:
            row = next(x for x in rows if x["model"] == model and x["jobs"] == n)
            print(f"  {n:5d} jobs  {r:.4f} events/s/job  gain {r / c:.4f}  GPU busy {row['gpu_busy']:.3f}"
                  f"  front end busy {row['front_end_busy']:.3f}")
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if a.png:
        plot(curves, a.png, a.profile)


def fmt(x):
    return "none" if x is None else f"{x:.0f}"


def plot(curves, out, profile):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (model, pts) in zip(axes, curves.items()):
        cpu = pts[0][2]
        ax.plot([p[0] for p in pts], [p[1] / cpu for p in pts], marker="o", label="SIMULATED / its CPU-only")
        pub = PUBLISHED[model]
        ax.plot([p[0] for p in pub], [p[1] / PUBLISHED_CPU_ONLY for p in pub], marker="s",
                label="published [P-data] / 3.88")
        ax.axhline(1, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{model} alone on one T4", fontsize=9)
        ax.set_xlabel("4-thread jobs on the GPU")
        ax.set_ylabel("events/s per job over CPU-only")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"SIMULATED (offload-sim run, profile {profile}) beside CMS-MLG-23-001's saturation scans",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
