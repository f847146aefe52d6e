#!/usr/bin/env bash
# What the library adds to raw MPI, measured in one sitting on this machine: offload-pingpong (raw)
# and offload-run --kernel echo at the same sizes and rank counts.
#   round trip: raw = 2 x the ping-pong's one-way time as Intel's IMB PingPong measures it
#               (offload-pingpong --pattern latency: separate warmed send and receive buffers,
#               blocking send/receive, IMB's repetitions, loop time / repetitions / 2);
#               library = the p50 of submit -> result of echo with 1 request in flight
#               (1 transmitter, 1 receiver)
#   bandwidth kept: raw round trip / library round trip (the same bytes go both ways)
#   many-to-one: 7 transmitters -> 1 receiver, 64 KiB echo, 8 in flight each, against the raw
#               request/reply rate with 64 KiB requests and 64 KiB replies
#   receiver CPU: the receiver rank's process CPU and its progress thread's CPU over the requests
#               it served, in us per request, for every run above, and for 64 B echo 1 -> 1 at
#               2 threads x 16 in flight (results/transports.md's CPU-per-request test; 30000
#               events, about 0.3 s: a 3000-event run lasts 30 ms and its rate is bimodal). Over a
#               busy run it bounds how many requests per second one receiver core can take; note
#               that a progress thread that spins while idle counts its spin.
#   page faults: minor page faults (getrusage, the whole process, over offload-run's measured
#               window) per request, transmitter side (all transmitters' faults over their
#               requests) and receiver side; a process that reuses its memory makes close to 0.
#               Every run first does untimed warm-up events (--warmup-events: 200, 20 from 1 MiB,
#               300 for 7 -> 1, 2000 for the receiver-CPU run), as the raw ping-pong warms up: without
#               them a transmitter's window held its pool's first blocks (8.5 faults per 1 MiB
#               request over 100 events, 0.04 after 20 warm-up events). A receiver's window is its
#               whole serving, warm-up included.
# Usage: [REPEATS=3] scripts/bench_overhead.sh [build-dir] [extra offload-run flags...]; prints the
# tables. Every figure is "median [min, max]" over REPEATS rounds (the rounds interleave the
# measurements, since single runs on this VM are bimodal minute to minute); a derived figure
# (added, kept) is computed per round from that round's raw and library runs, then summarised.
# The 2-rank runs bind each rank to its own core (--bind-to core), raw and library alike: a
# latency measured with both ranks floating over 2 cores is bimodal (13 or 70 us at 8 B).
# Plausibility: each round also measures, with the same binding, the one-way time of a cache line
# handed between the two ranks through shared memory without MPI (no message can be faster) and
# rank 0's memcpy rate at each size (vader's single-copy CMA copies each message once, so no
# message can move faster). A raw figure beyond either bound, in any round, means the baseline
# measured something else (a broken clock, a dropped loop, a wrong divisor). And the library
# sends the same bytes over the same MPI plus its own work, so a median raw round trip more than
# 25% slower than the library's at the same size (or a raw 7 -> 1 rate 25% below the library's)
# means the raw runs were disturbed or hit a slow phase (noise here is +-20%). In either case
# the script prints which figure and why, prints no table, and exits 3 asking for a rerun.
# Targets (issue 28, default fresh inputs, default preset; reported, not asserted): 8 B added
# <= 5 us; kept >= 85% at 64 KiB, 1 MiB and 16 MiB; 7 -> 1 at 64 KiB >= 60% of raw; receiver CPU
# per 64 B request at 2 x 16 in flight <= 6 us; minor faults per request near 0 in steady state.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
source scripts/env.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=$build/apps/offload-run
pingpong=$build/apps/offload-pingpong
endpoint=$build/tests/test_mpi_endpoint_pingpong
# json_value FILE EXPR: a value of offload-run's or offload-pingpong's --json output, e.g. d["total"]["wall_s"]

repeats=${REPEATS:-3}
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty) on $(hostname -s), $(nproc) cores;" \
  "$build; median [min, max] of $repeats runs of each measurement, interleaved"
for r in $(seq "$repeats"); do
  mpirun --bind-to core -np 2 "$pingpong" --pattern memcpy,cache-line,latency,probe-latency --min-bytes 8 \
    --max-bytes $((16 << 20)) --json "$tmp/raw.$r.json" >/dev/null
  # The same ping-pong shaped as an event loop and an echo service: rank 0 writes each request
  # afresh, rank 1 answers from where the request arrived (MPI alone; see kept_echo below).
  mpirun --bind-to core -np 2 "$pingpong" --pattern latency --rewrite --echo --min-bytes 8 --max-bytes $((16 << 20)) \
    --json "$tmp/raw_echo.$r.json" >/dev/null
  # The transport alone (mpi_endpoint and its pool, no transmitter or receiver), when built.
  if [ -x "$endpoint" ]; then
    mpirun --bind-to core -np 2 "$endpoint" 8 1024 65536 1048576 16777216 >"$tmp/endpoint.$r.txt"
  fi
  for bytes in 8 1024 65536 1048576 16777216; do
    events=$(( bytes >= 1048576 ? 100 : 2000 )) warmup=$(( bytes >= 1048576 ? 20 : 200 ))
    mpirun --bind-to core -np 2 "$run" --receivers 1 --backend cpu --kernel echo --size "$bytes" --events "$events" \
      --warmup-events "$warmup" \
      --threads 1 --inflight 1 --quiet --json "$tmp/echo.$bytes.$r.json" "$@" >/dev/null
  done
  # 1 MiB again with progress threads that poll when idle instead of sleeping: how much of the
  # round trip is the ranks' wake-ups (offload-run writes 1 MiB of fresh inputs per event, 1 to
  # 2.5 ms here, so requests come further apart than the adaptive policy polls for).
  mpirun --bind-to core -np 2 "$run" --receivers 1 --backend cpu --kernel echo --size 1048576 --events 100 --warmup-events 20 \
    --threads 1 --inflight 1 --quiet --json "$tmp/echo_yield.1048576.$r.json" "$@" --wait-policy yield >/dev/null
  mpirun -np 8 "$pingpong" --pattern many-to-one --mr-bytes 65536 --mr-reply-bytes 65536 --json "$tmp/mr.$r.json" >/dev/null
  mpirun -np 8 "$run" --receivers 1 --backend cpu --kernel echo --size 65536 --events 3000 --warmup-events 300 --threads 2 --inflight 8 \
    --quiet --json "$tmp/mr_echo.$r.json" "$@" >/dev/null
  mpirun -np 2 "$run" --receivers 1 --backend cpu --kernel echo --size 64 --events 30000 --warmup-events 2000 --threads 2 \
    --inflight 16 --credits 16 --quiet --json "$tmp/tput.$r.json" "$@" >/dev/null
done

python3 - "$tmp" "$repeats" "$(nproc)" <<'PY'
import json, os, statistics, sys
tmp, repeats, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load = lambda name: [json.load(open(f"{tmp}/{name}.{r}.json")) for r in range(1, repeats + 1)]
sizes = (8, 1024, 65536, 1048576, 16777216)
def size_name(b):
    return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB" if b >= 1024 else f"{b} B"
def spread(values, width, prec):  # "median [min, max]" over the rounds
    v = list(values)
    cell = f"{statistics.median(v):.{prec}f} [{min(v):.{prec}f}, {max(v):.{prec}f}]"
    return f"{cell:>{width}}"
def row_value(d, pattern, b=None):
    return next(x["value"] for x in d["rows"] if x["pattern"] == pattern and (b is None or x["bytes"] == b))
def ranks(d, role):
    return [r for r in d["ranks"] if r["role"] == role]
def rx_cpu(d):  # the receiver rank's process and progress-thread CPU per request it served, us
    rx = ranks(d, "receiver")[0]
    n = max(rx["requests"], 1)
    return 1e6 * rx["cpu"]["process_s"] / n, 1e6 * rx["cpu"]["progress_thread_s"] / n
def faults(d):  # minor page faults per request: all transmitters together, and the receiver
    tx, rx = ranks(d, "transmitter"), ranks(d, "receiver")[0]
    tx_n = max(sum(r["submitted"] for r in tx), 1)
    return (sum(r["cpu"]["minor_faults"] for r in tx) / tx_n, rx["cpu"]["minor_faults"] / max(rx["requests"], 1))

raws, mrs, raw_echoes = load("raw"), load("mr"), load("raw_echo")
# Refuse raw figures no transport between these two cores can give (see the header).
problems = []
for r, (d, mr) in enumerate(zip(raws, mrs), 1):
    line = row_value(d, "cache-line")
    for b in sizes:
        one_way, copy = row_value(d, "latency", b), row_value(d, "memcpy", b)
        if one_way < line:
            problems.append(f"round {r}: raw one-way at {b} B is {one_way:.3f} us, below the {line:.3f} us a cache "
                            "line takes between the same two cores in the same round")
        if b / one_way > copy:
            problems.append(f"round {r}: raw one-way at {b} B moves {b / one_way:.0f} MB/s, above rank 0's memcpy "
                            f"of that size in the same round ({copy:.0f} MB/s), which a single-copy transfer cannot beat")
    mr_rate = row_value(mr, "many-to-one")
    mr_req = next(x for x in mr["rows"] if x["pattern"] == "many-to-one")["bytes"]
    moved = mr_rate * 2 * mr_req / 1e6  # MB/s, requests and replies of the same size
    if moved > cores * row_value(d, "memcpy", 65536):
        problems.append(f"round {r}: raw many-to-one moves {moved:.0f} MB/s, above {cores} cores x rank 0's 64 KiB "
                        f"memcpy ({row_value(d, 'memcpy', 65536):.0f} MB/s)")
# The library sends the same bytes over the same MPI as the raw loop, plus its own work: a median
# library round trip or many-to-one rate more than 25% better than raw (noise here is +-20%) means
# the raw baseline ran in a slow phase or was disturbed, which would flatter "kept".
for b in sizes:
    raw = statistics.median(2 * row_value(d, "latency", b) for d in raws)
    lib = statistics.median(1000 * d["modules"][0]["latency"]["p50_ms"] for d in load(f"echo.{b}"))
    if lib * 1.25 < raw:
        problems.append(f"raw round trip at {b} B (median {raw:.2f} us) is more than 25% slower than the library's "
                        f"({lib:.2f} us) over the same transport: the raw baseline was disturbed")
raw_mr = statistics.median(row_value(d, "many-to-one") for d in mrs)
lib_mr = statistics.median(d["total"]["events_per_s"] for d in load("mr_echo"))
if lib_mr > 1.25 * raw_mr:
    problems.append(f"raw many-to-one (median {raw_mr:.0f} req/s) is more than 25% below the library's "
                    f"({lib_mr:.0f}/s) over the same transport: the raw baseline was disturbed")
if problems:
    print("REFUSED: raw figures that no transport on this machine can give, or a raw baseline slower than the library")
    print("it is the baseline of; nothing reported. Rerun on a quiet machine (a bound measured while disturbed can also")
    print("be the cause; if it persists, see that offload-pingpong's loop, clock and divisor are what this script assumes):")
    for p in problems:
        print("  " + p)
    sys.exit(3)

print(f"bounds (each round, same binding): cache line one way {spread((row_value(d, 'cache-line') for d in raws), 0, 3)} us; "
      + "; ".join(f"memcpy {size_name(b)} {spread((row_value(d, 'memcpy', b) / 1e3 for d in raws), 0, 1)} GB/s"
                  for b in sizes[2:]))
W = 26
# kept_echo_%: the library's round trip against MPI's own when shaped like the library's run
# (offload-pingpong --rewrite --echo: fresh requests, replies sent from where the requests
# arrived, so each copy reads lines another core has just written). The targets are on kept_%.
print(f"\n{'bytes':>10} {'raw_rtt_us':>{W}} {'offload_rtt_us':>{W}} {'added_us':>{W}} {'kept_%':>{W}} "
      f"{'kept_echo_%':>{W}} {'rx_cpu_us':>{W}} {'rx_prog_us':>{W}} {'tx_faults/req':>{W}} {'rx_faults/req':>{W}}")
results = {}
for b in sizes:
    raw = [2 * row_value(d, "latency", b) for d in raws]
    libs = load(f"echo.{b}")
    lib = [1000 * d["modules"][0]["latency"]["p50_ms"] for d in libs]
    added = [l - r for r, l in zip(raw, lib)]
    kept = [100 * r / l for r, l in zip(raw, lib)]
    kept_echo = [100 * 2 * row_value(d, "latency", b) / l for d, l in zip(raw_echoes, lib)]
    results[b] = (statistics.median(added), statistics.median(kept))
    prec = 2 if b < 1048576 else 1
    print(f"{b:>10} {spread(raw, W, prec)} {spread(lib, W, prec)} {spread(added, W, prec)} {spread(kept, W, 1)} "
          f"{spread(kept_echo, W, 1)} "
          f"{spread((rx_cpu(d)[0] for d in libs), W, 2)} {spread((rx_cpu(d)[1] for d in libs), W, 2)} "
          f"{spread((faults(d)[0] for d in libs), W, 2)} {spread((faults(d)[1] for d in libs), W, 2)}")
mr = load("mr_echo")
raw_rate = [row_value(d, "many-to-one") for d in mrs]
lib_rate = [d["total"]["events_per_s"] for d in mr]
mr_kept = [100 * l / r for r, l in zip(raw_rate, lib_rate)]
print(f"\n{'many-to-one, 64 KiB both ways':<30} {'raw req/s':>{W}} {'offload/s':>{W}} {'kept_%':>{W}} "
      f"{'rx_cpu_us':>{W}} {'rx_prog_us':>{W}} {'tx_faults/req':>{W}} {'rx_faults/req':>{W}}")
print(f"{'7 -> 1':<30} {spread(raw_rate, W, 0)} {spread(lib_rate, W, 0)} {spread(mr_kept, W, 1)} "
      f"{spread((rx_cpu(d)[0] for d in mr), W, 2)} {spread((rx_cpu(d)[1] for d in mr), W, 2)} "
      f"{spread((faults(d)[0] for d in mr), W, 2)} {spread((faults(d)[1] for d in mr), W, 2)}")
# Where each round trip goes (offload-run's stage times, p50 of each stage, median over rounds):
# tx_queue = submit to sent on the transmitter; net_out = sent to whole request received on the
# receiver (the transfer and the receiver's wake-up); rx_queue = received to kernel start; kernel;
# net_back = kernel end to result received (the reply's transfer and the transmitter's wake-up).
# The raw one-way time is what net_out and net_back would be with nothing added; probe_one_way is
# the same ping-pong with the MPI calls the library makes (Isend, Improbe polled, Mrecv/Imrecv):
# where the two agree, what net_out and net_back add is the library's own work, not MPI's method.
# echo_raw_one_way is the ping-pong shaped like the library's run (--rewrite --echo, see kept_echo_%).
# endpoint_one_way is the library's transport alone (tests/mpi/endpoint_pingpong.cpp: mpi_endpoint
# with its pool, gathered requests, replies gathered in place), when that test program is built.
endpoint = {}  # bytes -> one-way us per round
for r in range(1, repeats + 1):
    path = f"{tmp}/endpoint.{r}.txt"
    if os.path.exists(path):
        for line in open(path):
            f = line.split()
            if len(f) == 5 and f[0] == "endpoint-latency":
                endpoint.setdefault(int(f[1]), []).append(float(f[3]))
stage_keys = ("tx_queue", "net_out", "rx_queue", "kernel", "net_back", "round_trip")
def stage_row(label, runs, b):
    cells = " ".join(spread((1000 * d["stages"][k]["p50_ms"] for d in runs), 22, 1) for k in stage_keys)
    ep = spread(endpoint[b], 22, 1) if b in endpoint else f"{'-':>22}"
    print(f"{label:<24} {spread((row_value(d, 'latency', b) for d in raws), 22, 1)} "
          f"{spread((row_value(d, 'probe-latency', b) for d in raws), 22, 1)} "
          f"{spread((row_value(d, 'latency', b) for d in raw_echoes), 22, 1)} {ep} {cells}")
print(f"\n{'stages, p50 us':<24} {'raw_one_way':>22} {'probe_one_way':>22} {'echo_raw_one_way':>22} "
      f"{'endpoint_one_way':>22} "
      + " ".join(f"{k:>22}" for k in stage_keys))
for b in sizes:
    stage_row(f"echo {size_name(b)}", load(f"echo.{b}"), b)
stage_row("echo 1 MiB, yield", load("echo_yield.1048576"), 1048576)
stage_row("7 -> 1, 64 KiB", mr, 65536)

tp = load("tput")
tp_cpu = [rx_cpu(d)[0] for d in tp]
print(f"\n{'receiver CPU, 64 B echo 1 -> 1':<30} {'req/s':>{W}} {'rx_cpu_us':>{W}} {'rx_prog_us':>{W}} "
      f"{'tx_faults/req':>{W}} {'rx_faults/req':>{W}}")
print(f"{'2 threads x 16 in flight':<30} {spread((d['total']['requests_per_s'] for d in tp), W, 0)} "
      f"{spread(tp_cpu, W, 2)} {spread((rx_cpu(d)[1] for d in tp), W, 2)} "
      f"{spread((faults(d)[0] for d in tp), W, 2)} {spread((faults(d)[1] for d in tp), W, 2)}")
verdict = lambda ok: "met" if ok else "MISSED"
targets = [("8 B added <= 5 us", f"{results[8][0]:.2f} us", results[8][0] <= 5)]
targets += [(f"kept at {size_name(b)} >= 85%", f"{results[b][1]:.1f}%", results[b][1] >= 85) for b in sizes[2:]]
targets += [("7 -> 1 >= 60% of raw", f"{statistics.median(mr_kept):.1f}%", statistics.median(mr_kept) >= 60),
            ("rx CPU per 64 B request <= 6 us", f"{statistics.median(tp_cpu):.2f} us", statistics.median(tp_cpu) <= 6)]
print("\ntargets (issue 28, medians; reported, not asserted): "
      + "; ".join(f"{name}: {value} {verdict(ok)}" for name, value, ok in targets))
PY
