#!/usr/bin/python3
"""Plots sweep CSVs (scripts/sweep.py) as PNGs.

  scripts/plot.py rtt         SWEEP.csv -o out.png   throughput against round-trip time, one curve per
                                                     events-in-flight depth (x: emulated RTT, or the
                                                     netns delay x 2)
  scripts/plot.py ratio       SWEEP.csv -o out.png   throughput against CPU threads per receiver
                                                     (transmitters x threads / receivers)
  scripts/plot.py latency     SWEEP.csv -o out.png   p99 event latency against throughput
  scripts/plot.py breakdown   SWEEP.csv -o out.png   stacked mean round-trip stages per point
Every plot marks points that never settled (stable=false) with open symbols and skips failed
ones, saying so. --title sets the title; --group-by COLUMN draws one curve per value of COLUMN
(default: inflight for rtt, threads for ratio, distance for latency).
"""
import argparse
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STAGES = [("tx_queue_mean_ms", "transmitter queue"), ("net_out_mean_ms", "network out"),
          ("rx_queue_mean_ms", "receiver queue"), ("kernel_mean_ms", "kernel"),
          ("net_back_mean_ms", "network back")]


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ok = [r for r in rows if r.get("status") == "ok"]
    if len(ok) < len(rows):
        print(f"plot.py: {len(rows) - len(ok)} failed point(s) in {path} left out", file=sys.stderr)
    if not ok:
        sys.exit(f"plot.py: no successful point in {path}")
    return ok


def num(r, key, default=0.0):
    try:
        return float(r[key])
    except (KeyError, ValueError):
        return default


def rtt_ms(r):
    if r.get("netns_delay_ms"):
        return 2 * num(r, "netns_delay_ms")
    return 2 * num(r, "inject_latency_ms")


def threads_per_receiver(r):
    return num(r, "transmitters") * num(r, "threads") / max(1.0, num(r, "receivers"))


def curves(rows, group, x, y):
    out = {}
    for r in rows:
        out.setdefault(r.get(group, ""), []).append((x(r), y(r), r.get("stable") == "true"))
    def order(k):
        try:
            return (0, float(k))
        except ValueError:
            return (1, k)
    return [(k, sorted(out[k])) for k in sorted(out, key=order)]


def line_plot(ax, rows, group, x, y):
    for name, pts in curves(rows, group, x, y):
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        (line,) = ax.plot(xs, ys, "-", label=f"{group} {name}")
        for px, py, stable in pts:
            ax.plot(px, py, "o", color=line.get_color(), markerfacecolor=line.get_color() if stable else "none")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["rtt", "ratio", "latency", "breakdown"])
    p.add_argument("csv")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--title", default="")
    p.add_argument("--group-by")
    a = p.parse_args()
    rows = load(a.csv)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if a.kind == "rtt":
        line_plot(ax, rows, a.group_by or "inflight", rtt_ms, lambda r: num(r, "events_per_s"))
        ax.set_xlabel("round-trip time added (ms)")
        ax.set_ylabel("events/s")
    elif a.kind == "ratio":
        line_plot(ax, rows, a.group_by or "threads", threads_per_receiver, lambda r: num(r, "events_per_s"))
        ax.set_xlabel("CPU threads per receiver")
        ax.set_ylabel("events/s")
    elif a.kind == "latency":
        line_plot(ax, rows, a.group_by or "distance", lambda r: num(r, "events_per_s"),
                  lambda r: num(r, "event_p99_ms"))
        ax.set_xlabel("events/s")
        ax.set_ylabel("p99 event time (ms)")
    else:
        labels = []
        bottom = [0.0] * len(rows)
        for key, name in STAGES:
            vals = [num(r, key) for r in rows]
            ax.bar(range(len(rows)), vals, bottom=bottom, label=name)
            bottom = [b + v for b, v in zip(bottom, vals)]
        group = a.group_by
        for r in rows:
            labels.append(r.get(group, "") if group else " ".join(
                f"{k}={r[k]}" for k in r if k in ("distance", "inflight", "transmitters", "threads", "netns_delay_ms")
                and r[k] != ""))
        ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("mean round trip (ms)")
        ax.legend(fontsize=8)
    host = rows[0].get("host", "")
    ax.set_title(a.title or f"{a.kind} ({host}, {rows[0].get('git_commit', '')[:7]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"plot.py: wrote {a.out} ({len(rows)} points)")


if __name__ == "__main__":
    main()
