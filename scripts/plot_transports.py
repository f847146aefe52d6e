#!/usr/bin/python3
"""Plots scripts/compare_transports.sh's CSV: MPI against gRPC and KServe v2.

  scripts/plot_transports.py compare.csv -o compare.png

Four panels: p50 round trip against payload size on loopback, the same over the delayed
two-namespace link (error bars up to p99), throughput of small and 64 KiB requests 1->1 and 7->1,
and CPU time per request on each side.
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"mpi": "tab:blue", "mpi-tcp": "tab:cyan", "mpi-eager2m": "tab:purple", "grpc": "tab:red",
          "grpc-serve": "tab:orange", "kserve": "tab:green"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    with open(a.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    links = [l for l in ("loopback", "netns") if any(r["link"] == l for r in rows)]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    for ax, link in zip(axes[0], links + [None] * (2 - len(links))):
        if link is None:
            ax.set_axis_off()
            continue
        delay = next(float(r["netns_delay_ms"]) for r in rows if r["link"] == link)
        for t in COLORS:
            pts = sorted((int(r["payload_bytes"]), float(r["rtt_p50_us"]), float(r["rtt_p99_us"]))
                         for r in rows if r["link"] == link and r["transport"] == t and r["test"] == "latency")
            if not pts:
                continue
            x, p50, p99 = zip(*pts)
            ax.errorbar(x, p50, yerr=[[0] * len(p50), [b - m for m, b in zip(p50, p99)]], marker="o", capsize=3,
                        color=COLORS[t], label=t)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("payload (bytes, each way)")
        ax.set_ylabel("round trip p50 (us), bar to p99")
        ax.set_title(f"{link}" + (f": {delay:g} ms added per direction" if link == "netns" else ": one host"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    # throughput bars
    ax = axes[1][0]
    groups = [(l, s, n) for l in links for s in (64, 65536) for n in (1, 7)]
    width = 0.8 / len(COLORS)
    for i, t in enumerate(COLORS):
        vals = []
        for l, s, n in groups:
            v = [float(r["requests_per_s"]) for r in rows if (r["link"], r["transport"], r["test"]) ==
                 (l, t, "throughput") and int(r["payload_bytes"]) == s and int(r["transmitters"]) == n]
            vals.append(v[0] if v else 0.0)
        ax.bar([g + i * width for g in range(len(groups))], vals, width, color=COLORS[t], label=t)
    ax.set_xticks([g + width for g in range(len(groups))])
    ax.set_xticklabels([f"{l}\n{'64 B' if s == 64 else '64 KiB'}\n{n}->1" for l, s, n in groups], fontsize=7)
    ax.set_ylabel("requests/s")
    ax.set_title("throughput (2 threads x 16 in flight per transmitter)")
    ax.legend()
    # CPU per request, small-payload 7->1 throughput runs
    ax = axes[1][1]
    labels, tx_cpu, rx_cpu, colors = [], [], [], []
    for l in links:
        for t in COLORS:
            v = [r for r in rows if (r["link"], r["transport"], r["test"]) == (l, t, "throughput")
                 and int(r["payload_bytes"]) == 64 and int(r["transmitters"]) == 1]
            if v:
                labels.append(f"{l}\n{t}")
                tx_cpu.append(float(v[0]["tx_cpu_us_per_request"]))
                rx_cpu.append(float(v[0]["rx_cpu_us_per_request"]))
                colors.append(COLORS[t])
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], tx_cpu, 0.4, color=colors, alpha=0.55, label="transmitter")
    ax.bar([x + 0.2 for x in xs], rx_cpu, 0.4, color=colors, hatch="//", label="receiver")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("process CPU per request (us)")
    ax.set_title("process CPU per request, 64 B, 1->1 throughput\n(plain: transmitter, hatched: receiver)")
    fig.suptitle("MPI against gRPC and KServe v2, echo kernel, one run of scripts/compare_transports.sh")
    fig.tight_layout()
    fig.savefig(a.output, dpi=110)


if __name__ == "__main__":
    main()
