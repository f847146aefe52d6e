#!/usr/bin/python3
"""Sweeps offload-run over the cartesian product of axes; one CSV row per point.

  scripts/sweep.py --out results/sweep.csv \\
      --axis distance=same-node,far-dc --axis inflight=1,4,16 \\
      --transmitters 1 --receivers 1 -- --workload miniaod --time-scale 0.1 --events 40

Axes (--axis NAME=V1,V2,...), any number:
  transmitters   transmitter ranks (the job has transmitters + receivers ranks)
  receivers      receiver ranks
  netns_delay_ms real TCP between two network namespaces with this delay per direction
                 (scripts/netns/setup.sh; root). Without it, ranks share memory on this host.
  anything else  passed to offload-run as --NAME V (distance, inflight, threads, kernel,
                 workload, size, max-batch, inject-latency, time-scale, ...)
Flags after "--" go to every offload-run.

Per point: a warm-up inside each run (--warmup-events), then measurement windows (separate
runs) until the last three agree within --tolerance on events/s, or --max-windows; a point that
never settles is written with stable=false, never dropped. The row holds the axes, the median
window's offload-run totals (its CSV row: configuration, throughput, latency, stages,
metadata), the window count, every window's events/s and their spread. Points already in --out
are skipped, so an interrupted sweep resumes where it stopped. A failed point is written with
status=failed and the sweep goes on; the exit status is then 1.
"""
import argparse
import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPECIAL = ("transmitters", "receivers", "netns_delay_ms")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="CSV file (created, or resumed)")
    p.add_argument("--only", type=int, metavar="I", help="measure only point I (0-based, in product order): for job arrays")
    p.add_argument("--count", action="store_true", help="print the number of points and exit")
    p.add_argument("--merge", nargs="+", metavar="CSV", help="merge these sweep CSVs into --out and exit")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=V1,V2", help="a sweep axis")
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory")
    p.add_argument("--transmitters", type=int, default=1, help="transmitter ranks, unless an axis")
    p.add_argument("--receivers", type=int, default=1, help="receiver ranks, unless an axis")
    p.add_argument("--warmup-events", type=int, default=10, help="per transmitter, per run")
    p.add_argument("--min-windows", type=int, default=3)
    p.add_argument("--max-windows", type=int, default=6)
    p.add_argument("--tolerance", type=float, default=0.10, help="spread allowed among the last 3 windows")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run")
    p.add_argument("--label", default="", help="free text written into every row (e.g. the question)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="-- then flags for every offload-run")
    a = p.parse_args()
    if a.rest and a.rest[0] == "--":
        a.rest = a.rest[1:]
    axes = []
    for spec in a.axis:
        name, sep, values = spec.partition("=")
        if not sep or not name or not values:
            p.error(f"--axis {spec!r}: expected NAME=V1,V2,...")
        vals = [v for v in values.split(",") if v != ""]
        if not vals:
            p.error(f"--axis {spec!r}: no values")
        if name in [n for n, _ in axes]:
            p.error(f"--axis {name} given twice")
        axes.append((name, vals))
    for name in ("transmitters", "receivers"):
        for n, vals in axes:
            if n == name and not all(v.isdigit() for v in vals):
                p.error(f"--axis {name}: values must be whole numbers, got {vals}")
    if not a.count and not a.out:
        p.error("--out is required")
    if a.merge or a.count:
        return a, axes
    if a.min_windows < 3 or a.max_windows < a.min_windows:
        p.error("need 3 <= --min-windows <= --max-windows")
    if not os.access(os.path.join(a.build, "apps", "offload-run"), os.X_OK):
        p.error(f"no offload-run in {a.build}/apps (build first: scripts/build.sh)")
    return a, axes


def point_key(point):
    return tuple(sorted(point.items()))


def read_done(path, axis_names):
    """The points already in the CSV (any status), and its header."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return set(), None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        f.seek(0)
        header = next(csv.reader(f))
    missing = [n for n in axis_names if n not in header]
    if missing:
        sys.exit(f"sweep.py: {path} has no column for axis {missing}: it is another sweep; use another --out")
    return {point_key({n: r[n] for n in axis_names}) for r in rows}, header


class Progress:
    def __init__(self, total, done):
        self.total, self.done, self.t0 = total, done, time.time()
        self.tty = sys.stderr.isatty()

    def show(self, what):
        n, t = self.done, self.total
        width = 30
        filled = int(width * n / t) if t else width
        elapsed = time.time() - self.t0
        line = f"[{'#' * filled}{'.' * (width - filled)}] {n}/{t} points, {elapsed:.0f} s, {what}"
        print(("\r" + line + "\x1b[K") if self.tty else line, end="" if self.tty else "\n", file=sys.stderr,
              flush=True)

    def finish(self):
        if self.tty:
            print(file=sys.stderr)


def command_for(args, point, json_path):
    tx = int(point.get("transmitters", args.transmitters))
    rx = int(point.get("receivers", args.receivers))
    run = os.path.join(args.build, "apps", "offload-run")
    flags = []
    for name, value in point.items():
        if name not in SPECIAL:
            flags += [f"--{name.replace('_', '-')}", value]
    tail = ["-np", str(tx + rx), run, "--receivers", str(rx), "--quiet", "--json", json_path,
            "--warmup-events", str(args.warmup_events)] + flags + args.rest
    if "netns_delay_ms" in point:
        return [os.path.join(HERE, "netns", "mpirun.sh")] + tail
    return ["mpirun", "--oversubscribe"] + tail


def run_window(args, point, workdir):
    json_path = os.path.join(workdir, "run.json")
    if os.path.exists(json_path):
        os.remove(json_path)
    cmd = command_for(args, point, json_path)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_hwloc_base_binding_policy="none")
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {args.timeout} s: {' '.join(cmd)}"
    if r.returncode != 0 or not os.path.exists(json_path):
        lines = (r.stdout + "\n" + r.stderr).strip().splitlines()
        said = [ln for ln in lines if "offload-run:" in ln or "[error]" in ln or "[critical]" in ln]
        why = said[:5] or lines[-8:]
        return None, f"exit {r.returncode}: {' '.join(cmd)}\n  " + "\n  ".join(why)
    with open(json_path) as f:
        return json.load(f), None


def measure(args, point, workdir):
    """Windows until the last three agree; returns (report of the median window, rates, stable, error)."""
    reports, rates = [], []
    for _ in range(args.max_windows):
        rep, err = run_window(args, point, workdir)
        if err:
            return None, rates, False, err
        reports.append(rep)
        rates.append(rep["total"]["events_per_s"])
        if len(rates) >= args.min_windows:
            last = rates[-3:]
            if max(last) <= (1 + args.tolerance) * min(last):
                break
    last = list(zip(rates[-3:], reports[-3:]))
    last.sort(key=lambda x: x[0])
    stable = max(rates[-3:]) <= (1 + args.tolerance) * min(rates[-3:])
    return last[1][1], rates, stable, None


def netns_setup(delay):
    tool = os.path.join(ROOT, "build", "scripts", "netns", "offload-netdelay")
    r = subprocess.run([os.path.join(HERE, "netns", "setup.sh"), str(delay), tool], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"sweep.py: netns set-up failed: {r.stderr.strip()}")


def netns_teardown():
    subprocess.run([os.path.join(HERE, "netns", "teardown.sh")], capture_output=True)


def main():
    args, axes = parse_args()
    names = [n for n, _ in axes]
    points = [dict(zip(names, combo)) for combo in itertools.product(*[v for _, v in axes])]
    if args.count:
        print(len(points))
        return 0
    if args.merge:
        return merge(args.merge, args.out)
    if args.only is not None:
        if not 0 <= args.only < len(points):
            sys.exit(f"sweep.py: --only {args.only}: there are {len(points)} points (0..{len(points) - 1})")
        points = [points[args.only]]
    # netns points grouped by delay, so that each delay is set up once.
    if "netns_delay_ms" in names:
        points.sort(key=lambda p: float(p["netns_delay_ms"]))
    done, header = read_done(args.out, names)
    todo = [p for p in points if point_key(p) not in done]
    progress = Progress(len(points), len(points) - len(todo))
    if not todo:
        print(f"sweep.py: all {len(points)} points are already in {args.out}", file=sys.stderr)
        return 0
    failed = 0
    workdir = tempfile.mkdtemp(prefix="sweep.")
    current_delay = None
    try:
        for point in todo:
            desc = " ".join(f"{k}={v}" for k, v in point.items())
            progress.show(desc)
            if "netns_delay_ms" in point and point["netns_delay_ms"] != current_delay:
                netns_setup(point["netns_delay_ms"])
                current_delay = point["netns_delay_ms"]
            rep, rates, stable, err = measure(args, point, workdir)
            row = dict(point)
            row.update({"label": args.label, "status": "ok" if err is None else "failed",
                        "windows": len(rates), "stable": stable,
                        "window_events_per_s": " ".join(f"{r:.3f}" for r in rates),
                        "spread": (max(rates[-3:]) / min(rates[-3:]) - 1) if len(rates) >= 3 else "",
                        "error": err or ""})
            if rep is not None:
                total = rep["total"]
                row["host"] = next(iter(rep["metadata"]["hosts"]))
                row["flags"] = " ".join(rep["metadata"]["argv"][1:])
                for k, v in total.items():
                    row.setdefault(k, v)
            else:
                failed += 1
                print(f"\nsweep.py: point {desc} failed: {err}", file=sys.stderr)
            write_row(args.out, row, names)
            progress.done += 1
        progress.show("done")
    finally:
        progress.finish()
        shutil.rmtree(workdir, ignore_errors=True)
        if current_delay is not None:
            netns_teardown()
    if failed:
        print(f"sweep.py: {failed} point(s) failed; the others are in {args.out}", file=sys.stderr)
        return 1
    return 0


def merge(parts, out):
    """Concatenates sweep CSVs (e.g. a job array's parts) into `out`, with the union of their columns."""
    rows, header = [], []
    for part in parts:
        with open(part, newline="") as f:
            r = csv.DictReader(f)
            header += [c for c in (r.fieldnames or []) if c not in header]
            rows += list(r)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    print(f"sweep.py: merged {len(rows)} rows from {len(parts)} file(s) into {out}", file=sys.stderr)
    return 0


def write_row(path, row, axis_names):
    """Appends `row`; the header is fixed by the first row written (missing cells stay empty)."""
    exists = os.path.exists(path) and os.path.getsize(path) > 0
    if exists:
        with open(path, newline="") as f:
            header = next(csv.reader(f))
    else:
        header = list(axis_names) + [k for k in row if k not in axis_names]
    extra = [k for k in row if k not in header]
    if extra and exists:
        # A failed first row lacks offload-run's columns: rewrite the file with the wider header.
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        header += extra
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header)
            w.writeheader()
            w.writerows(rows)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        if not exists:
            w.writeheader()
        w.writerow({k: ("true" if v is True else "false" if v is False else v) for k, v in row.items()})


if __name__ == "__main__":
    sys.exit(main())
