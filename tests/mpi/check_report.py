#!/usr/bin/env python3
"""Checks the --json and --csv files of offload-run runs.

check_report.py RUN.json RUN.csv ROWS
  - the JSON parses and carries the metadata the issue names (argv, git commit and dirty flag,
    date, per-rank host, role, binding and CPU (with minor page faults), hwloc summary per host, MPI library, compiler, CUDA
    fields, the OMPI_* environment), the configuration and the totals;
  - the CSV parses, has ROWS rows (one per run appended), its header is the JSON's "total" keys
    and every column name that is a measure carries its unit;
  - the last CSV row equals the JSON totals;
  - the stage means add up to the mean round trip.
Prints what it checked; exits 1 at the first failure.
"""
import csv
import json
import math
import sys


def fail(msg):
    print(f"check_report: FAIL: {msg}")
    sys.exit(1)


def need(obj, keys, where):
    for k in keys:
        if k not in obj:
            fail(f"{where} lacks '{k}' (has {sorted(obj)})")


def main():
    if len(sys.argv) != 4:
        fail("usage: check_report.py RUN.json RUN.csv ROWS")
    json_path, csv_path, rows_expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(json_path) as f:
        rep = json.load(f)
    need(rep, ["metadata", "config", "ranks", "modules", "stages", "total"], "report")
    md = rep["metadata"]
    need(md, ["argv", "date", "git_commit", "git_dirty", "compiler", "build_type", "cuda_compiler",
              "cuda", "cuda_devices", "mpi_library", "environment", "hosts"], "metadata")
    if not md["argv"] or "offload-run" not in md["argv"][0]:
        fail(f"argv does not start with offload-run: {md['argv']}")
    if not isinstance(md["git_dirty"], bool):
        fail("git_dirty is not a boolean")
    if "Open MPI" not in md["mpi_library"]:
        fail(f"mpi_library does not name Open MPI: {md['mpi_library']!r}")
    if not any(k.startswith("OMPI_") for k in md["environment"]):
        fail("no OMPI_* variable in the environment")
    for host, topo in md["hosts"].items():
        need(topo, ["packages", "numa_nodes", "cores", "pus", "cpu_model", "memory_bytes", "hwloc"], f"host {host}")
        if topo["cores"] < 1 or topo["pus"] < topo["cores"]:
            fail(f"host {host}: implausible topology {topo}")
    ranks = rep["ranks"]
    if len(ranks) != rep["config"]["ranks"]:
        fail(f"{len(ranks)} rank entries for {rep['config']['ranks']} ranks")
    for r in ranks:
        need(r, ["rank", "role", "host", "pid", "binding", "cpu", "wall_s"], f"rank {r.get('rank')}")
        need(r["binding"], ["bound", "process", "progress_thread"], f"rank {r['rank']} binding")
        need(r["cpu"], ["process_s", "progress_thread_s", "minor_faults"], f"rank {r['rank']} cpu")
        if not isinstance(r["cpu"]["minor_faults"], int) or r["cpu"]["minor_faults"] < 0:
            fail(f"rank {r['rank']}: minor_faults {r['cpu']['minor_faults']!r} is not a count")
        if r["host"] not in md["hosts"]:
            fail(f"rank {r['rank']} host {r['host']} has no topology entry")
        if r["role"] == "transmitter":
            need(r, ["events", "submitted", "remote", "fallbacks", "digest", "event_time", "events_per_s",
                     "requests_per_s", "mb_per_s"], f"transmitter {r['rank']}")
            if len(r["binding"]["workers"]) != rep["config"]["threads"]:
                fail(f"rank {r['rank']}: {len(r['binding']['workers'])} worker bindings for "
                     f"{rep['config']['threads']} threads")
        elif r["role"] == "receiver":
            need(r, ["requests", "replies", "backend", "requests_per_s", "mb_per_s"], f"receiver {r['rank']}")
        else:
            fail(f"rank {r['rank']} has role {r['role']!r}")

    total = rep["total"]
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) != rows_expected + 1:
        fail(f"{csv_path}: {len(rows) - 1} rows, expected {rows_expected}")
    header = rows[0]
    if header != list(total):
        fail(f"CSV header {header} differs from the JSON totals {list(total)}")
    units = ("_s", "_ms", "_per_s", "_us")
    measures = ["wall_s", "events_per_s", "requests_per_s", "mb_per_s", "event_p50_ms", "round_trip_mean_ms"]
    for m in measures:
        if m not in header or not m.endswith(units):
            fail(f"column {m} missing or without a unit")
    for row in rows[1:]:
        if len(row) != len(header):
            fail(f"a row has {len(row)} cells for {len(header)} columns")
    last = dict(zip(header, rows[-1]))
    for k, v in total.items():
        got = last[k]
        if isinstance(v, bool):
            ok = got == ("true" if v else "false")
        elif isinstance(v, (int, float)):
            ok = math.isclose(float(got), float(v), rel_tol=1e-9, abs_tol=1e-12)
        else:
            ok = got == v
        if not ok:
            fail(f"CSV {k}={got!r} but JSON total {k}={v!r}")

    st = rep["stages"]
    if st["round_trip"]["count"] > 0:
        parts = sum(st[s]["mean_ms"] for s in ["tx_queue", "net_out", "rx_queue", "kernel", "net_back"])
        if not math.isclose(parts, st["round_trip"]["mean_ms"], rel_tol=1e-9, abs_tol=1e-9):
            fail(f"stage means add up to {parts} ms, the round trip mean is {st['round_trip']['mean_ms']} ms")
    if st["not_adding_up"] != 0:
        fail(f"{st['not_adding_up']} requests whose stages do not add up")
    print(f"check_report: OK: {len(ranks)} ranks, {len(header)} CSV columns, {rows_expected} rows, "
          f"{len(md['environment'])} OMPI/UCX variables, digest {total['digest']}")


if __name__ == "__main__":
    main()
