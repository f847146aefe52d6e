#!/usr/bin/env bash
# The Python layer against the C++ API (results/python.md): one offload-serve on loopback gRPC
# (echo, CPU backend), then, interleaved, offload-run (C++) and mpi_offload (Python) on the same
# requests: latency per request at 8 B and 64 KiB with one request in flight, requests/s from
# one and four threads, CPU per request (the whole client process: user + system time).
# First, what the Python layer adds over the C++ API on the same transmitter: submit-to-result()
# from Python against the C++ API's submit-and-future.get() loop (Transmitter._cpp_round_trips),
# interleaved, with no receiver (the fallback runs echo on the CPU) and against the service
# (a future's result does not depend on the deliver setting: it is handed to result()). Python's own overhead is also measured per request: its
# submit-to-result() wall time minus the library's round trip (result.timing.round_trip).
#   scripts/bench_python.sh [BUILD_DIR]   (default build-cpu; REQUESTS=N, default 5000; ROUNDS=N, default 2;
#   DELIVER=thread or inline: the Transmitter's deliver setting, default thread)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build-cpu}" && pwd)
python=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'kill "$serve_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$build/apps/offload-serve" --listen 127.0.0.1:0 --port-file "$tmp/port" --peers 0 --backend cpu --credits 64 \
  >"$tmp/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
export OFFLOAD_ADDRESS="127.0.0.1:$(cat "$tmp/port")" OFFLOAD_RUN="$build/apps/offload-run"
export PYTHONPATH="$build/python${PYTHONPATH:+:$PYTHONPATH}" REQUESTS=${REQUESTS:-5000} ROUNDS=${ROUNDS:-2}
exec "$python" - <<'PY'
import json, os, resource, subprocess, sys, tempfile, threading, time
from collections import deque

import numpy as np
import mpi_offload as mo

address, run, n, rounds = os.environ["OFFLOAD_ADDRESS"], os.environ["OFFLOAD_RUN"], int(os.environ["REQUESTS"]), int(os.environ["ROUNDS"])
mo.set_log_level("warn")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpp(size, threads, inflight):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cpu0 = children_cpu()
        subprocess.run([run, "--transport", "grpc", "--connect", address, "--kernel", "echo", "--size", str(size),
                        "--events", str(n), "--threads", str(threads), "--inflight", str(inflight), "--credits", "64",
                        "--quiet", "--json", f.name], check=True, capture_output=True)
        cpu = children_cpu() - cpu0
        t = json.load(open(f.name))["total"]
    return {"req_s": t["requests_per_s"], "p50_us": t["round_trip_p50_ms"] * 1e3, "event_p50_us": t["event_p50_ms"] * 1e3,
            "cpu_us": cpu / n * 1e6}


def py_latency(tx, size):
    x = np.zeros(size, np.uint8)
    for _ in range(200):  # warm-up
        tx.submit("echo", {"payload": x}).result()
    wall, lib = [], []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        r = tx.submit("echo", {"payload": x}).result()
        wall.append(time.perf_counter() - t0)
        lib.append(r.timing.round_trip)
        assert r.receiver == 0
    cpu = time.process_time() - cpu0
    wall, lib = np.array(wall), np.array(lib)
    return {"p50_us": np.median(wall) * 1e6, "lib_p50_us": np.median(lib) * 1e6,
            "added_p50_us": np.median(wall - lib) * 1e6, "cpu_us": cpu / n * 1e6}


def py_rate(tx, size, threads, inflight):
    x = np.zeros(size, np.uint8)
    per = n // threads

    def worker():
        window = deque()
        for _ in range(per):
            if len(window) == inflight:
                window.popleft().result()
            window.append(tx.submit("echo", {"payload": x}))
        for f in window:
            f.result()

    cpu0, t0 = time.process_time(), time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"req_s": per * threads / wall, "cpu_us": cpu / (per * threads) * 1e6}


rt = mo.Runtime(mpi=False)


def over_cpp(rounds_over):
    """Python's submit-to-result() against the C++ API's submit-and-get on one transmitter, request
    by request in turn (so that the machine's drift hits both alike), the receivers and sizes
    interleaved round by round: per round and case, the p50 of each and the p50 of their paired
    differences."""
    cases = [(where, size) for where in ("none (CPU fallback)", "service") for size in (8, 65536)]
    txs = {where: mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([address] if where == "service" else []),
                                 credits=64, handshake_timeout=5.0) for where, _ in cases}
    out = {c: [] for c in cases}
    for where, size in cases:
        for _ in range(500):
            txs[where].submit("echo", {"payload": np.zeros(size, np.uint8)}).result()
    for _ in range(rounds_over):
        for where, size in cases:
            t, inputs = txs[where], {"payload": np.zeros(size, np.uint8)}
            py, cc = np.empty(n), np.empty(n)
            for i in range(n):
                t0 = time.perf_counter()
                t.submit("echo", inputs).result()
                py[i] = time.perf_counter() - t0
                cc[i] = t._cpp_round_trips("echo", inputs, 1)[0]
            out[(where, size)].append((np.median(py) * 1e6, np.median(cc) * 1e6, np.median(py - cc) * 1e6))
    for where, t in txs.items():
        assert (t.stats()["remote"] > 0) == (where == "service"), where
        t.close()
    return out


rounds_over = max(rounds, 5)
print(f"Python over the C++ API, same transmitter: {n} echo requests each per round, one in flight, Python's and the C++ API's in turn, "
      f"{rounds_over} rounds, cases interleaved")
print("  receiver               size  median over rounds of p50 (Python - C++)  rounds: Python p50 / C++ p50 / p50 of (Python - C++), us")
for (where, size), cells in over_cpp(rounds_over).items():
    text = "   ".join(f"{a:6.1f} /{b:6.1f} /{c:6.1f}" for a, b, c in cells)
    print(f"  {where:20} {size:6}  {np.median([c for _, _, c in cells]):6.1f} us   {text}")
tx = mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([address]), credits=64, deliver=os.environ.get("DELIVER", "thread"))
rows = []
for rnd in range(rounds):  # interleaved: the machine drifts from minute to minute
    for size in (8, 65536):
        c, p = cpp(size, 1, 1), py_latency(tx, size)
        rows.append(("latency", rnd, size, c, p))
    for threads, inflight in ((1, 8), (4, 32)):
        c, p = cpp(8, threads, inflight), py_rate(tx, 8, threads, inflight // threads)
        rows.append(("rate", rnd, threads, c, p))
tx.close()
print(f"{n} requests per run, echo over loopback gRPC to one offload-serve (CPU backend), {rounds} rounds interleaved, Python deliver={os.environ.get('DELIVER', 'thread')}")
print("latency, 1 in flight   size  C++ round trip p50  C++ event p50  Python result() p50  its library round trip p50  Python added p50  CPU/req C++  CPU/req Python")
for kind, rnd, size, c, p in rows:
    if kind == "latency":
        print(f"  round {rnd}            {size:>6}  {c['p50_us']:12.1f} us  {c['event_p50_us']:9.1f} us  {p['p50_us']:14.1f} us  "
              f"{p['lib_p50_us']:20.1f} us  {p['added_p50_us']:11.1f} us  {c['cpu_us']:7.1f} us  {p['cpu_us']:9.1f} us")
print("requests/s, 8 B        threads  C++ req/s  Python req/s  CPU/req C++  CPU/req Python")
for kind, rnd, threads, c, p in rows:
    if kind == "rate":
        print(f"  round {rnd}            {threads:>7}  {c['req_s']:9.0f}  {p['req_s']:12.0f}  {c['cpu_us']:8.1f} us  {p['cpu_us']:10.1f} us")
PY
