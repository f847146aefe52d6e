#!/usr/bin/python3
"""Plots offload-sim plan's saturation sweep (its --csv): for each model alone on one GPU, the
jobs' events/s against the same jobs with a GPU each, and the GPU's busy fraction, over the
client cores per GPU. The figure is labelled SIMULATED.

usage: plan_plot.py PLAN.csv OUT.png [--title TEXT] [--slowdown 0.05]
"""
import argparse
import csv
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("out")
    ap.add_argument("--title", default="")
    ap.add_argument("--slowdown", type=float, default=0.05)
    a = ap.parse_args()
    points = defaultdict(list)
    for r in csv.DictReader(open(a.csv)):
        points[r["model"]].append(r)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for model, rows in points.items():
        rows.sort(key=lambda r: int(r["cores"]))
        cores = [int(r["cores"]) for r in rows]
        rel = [float(r["events_per_s_per_job"]) / float(r["own_gpu_events_per_s_per_job"]) for r in rows]
        top.plot(cores, rel, marker="o", label=model)
        bottom.plot(cores, [float(r["busy"]) for r in rows], marker="o", label=model)
    top.axhline(1 - a.slowdown, color="grey", linestyle="--", linewidth=1, label=f"{a.slowdown:.0%} slower")
    top.set_ylabel("events/s per job, one GPU\nover a GPU per job")
    bottom.set_ylabel("GPU busy fraction")
    bottom.set_xlabel("client cores per GPU (jobs x threads)")
    for ax in (top, bottom):
        ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
    top.legend(fontsize=8)
    top.set_title(("SIMULATED (offload-sim plan): " + a.title).strip(), fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)


if __name__ == "__main__":
    main()
