#!/usr/bin/env bash
# MPI against gRPC: the same workload (the echo kernel, so the transport is all there is) on
# the same machine in one run, through offload-run with one receiver rank:
#   - round trip p50/p99 by payload size, 1 -> 1, one request at a time;
#   - throughput 1 -> 1 and 7 -> 1 (2 threads, 16 events in flight, 16 credits per transmitter),
#     at 64 B and 64 KiB;
#   - CPU time per request of each side (process CPU over requests: the receiver's, and the
#     transmitters' together).
# Over two links:
#   loopback: mpi (Open MPI's default: shared memory on one node), mpi-tcp (Open MPI's TCP
#             BTL over lo, what gRPC uses too) and grpc;
#   netns:    the two-namespace link of scripts/netns (real TCP over a veth pair) with DELAY ms
#             added to every packet on arrival in each namespace; the receiver alone in one
#             namespace, its transmitters in the other: mpi (TCP BTL, 64 KiB eager limit),
#             mpi-eager2m (eager limit raised to 2 MiB, results/README.md) and grpc. Needs root;
#             left out, saying why, otherwise.
# Writes OUT/compare.csv (one row per measurement) and OUT/compare.png, and prints the table.
#   scripts/compare_transports.sh [--out DIR (results/transports)] [--delay-ms D (1)] [--quick]
#                                 [--build DIR (build, built first; another DIR is used as it is)]
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/transports
delay=1
quick=0
build=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --delay-ms) delay=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    *) echo "compare_transports.sh: unknown argument $1 (see the header)" >&2; exit 2 ;;
  esac
done
if [ -z "$build" ]; then
  scripts/build.sh >/dev/null
  build=$PWD/build
fi
source scripts/env.sh
run=$build/apps/offload-run
netdelay=$build/scripts/netns/offload-netdelay
[ -x "$run" ] || { echo "compare_transports.sh: $run is missing" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${netns_up:-}" ] && scripts/netns/teardown.sh' EXIT
rows=$tmp/rows.jsonl

sizes="64 1024 16384 262144 1048576"
lat_events=1000 tput_events=3000
if [ "$quick" = 1 ]; then sizes="64 65536"; lat_events=100 tput_events=500; fi

# How each transport is launched on each link: sets the arrays `launcher` (mpirun and its
# options) and `extra` (offload-run options).
setup_transport() {  # setup_transport LINK TRANSPORT
  local eager=(env OMPI_MCA_btl_tcp_eager_limit=2097152 OMPI_MCA_btl_tcp_rndv_eager_limit=2097152
               OMPI_MCA_btl_tcp_max_send_size=2097152)
  case "$1/$2" in
    loopback/mpi) launcher=(mpirun); extra=() ;;
    loopback/mpi-tcp) launcher=(mpirun --mca btl self,tcp --mca btl_tcp_if_include lo); extra=() ;;
    loopback/grpc) launcher=(mpirun); extra=(--transport grpc --listen 127.0.0.1:0) ;;
    # MPI as results/overhead.md advises over a long TCP link: eager-size messages received blocking.
    netns/mpi) launcher=(scripts/netns/mpirun.sh); extra=(--blocking-receive-below 65536) ;;
    netns/mpi-eager2m) launcher=("${eager[@]}" scripts/netns/mpirun.sh); extra=(--blocking-receive-below 2097152) ;;
    netns/grpc) launcher=(scripts/netns/mpirun.sh); extra=(--transport grpc --listen "$ADDR_A:$GRPC_PORT") ;;
  esac
}

# measure LINK TRANSPORT TEST SIZE TRANSMITTERS offload-run args...: one run, one row.
measure() {
  local link=$1 transport=$2 test=$3 size=$4 tx=$5
  shift 5
  setup_transport "$link" "$transport"
  if ! timeout -s KILL 300 "${launcher[@]}" -np $((tx + 1)) "$run" --receivers 1 --kernel echo --size "$size" \
       --quiet --json "$tmp/run.json" "${extra[@]}" "$@" >"$tmp/run.log" 2>&1 ||
     ! grep -q "^status: ok" "$tmp/run.log"; then
    echo "compare_transports.sh: $link $transport $test size $size ${tx}->1 failed:" >&2
    cat "$tmp/run.log" >&2
    exit 1
  fi
  python3 - "$tmp/run.json" "$link" "$transport" "$test" "$size" "$tx" >>"$rows" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["total"]
rx = [r for r in d["ranks"] if r["role"] == "receiver"][0]
txs = [r for r in d["ranks"] if r["role"] == "transmitter"]
tx_requests = sum(r["submitted"] for r in txs)
print(json.dumps({
    "link": sys.argv[2], "transport": sys.argv[3], "test": sys.argv[4], "payload_bytes": int(sys.argv[5]),
    "transmitters": int(sys.argv[6]), "requests": t["requests"], "remote": t["remote"],
    "rtt_p50_us": 1e3 * t["round_trip_p50_ms"], "rtt_p99_us": 1e3 * t["round_trip_p99_ms"],
    "requests_per_s": t["requests_per_s"],
    "rx_cpu_us_per_request": 1e6 * rx["cpu"]["process_s"] / max(rx["requests"], 1),
    "tx_cpu_us_per_request": 1e6 * sum(r["cpu"]["process_s"] for r in txs) / max(tx_requests, 1),
}))
PY
  tail -n 1 "$rows" | python3 -c "import json, sys; r = json.loads(sys.stdin.read()); print(f\"{r['link']:<9} {r['transport']:<12} {r['test']:<11} {r['payload_bytes']:>8} {r['transmitters']}->1  p50 {r['rtt_p50_us']:9.1f} us  p99 {r['rtt_p99_us']:9.1f} us  {r['requests_per_s']:9.0f} req/s  cpu/req tx {r['tx_cpu_us_per_request']:7.1f} us rx {r['rx_cpu_us_per_request']:7.1f} us\")"
}

# suite LINK TRANSPORTS...: every point, each run for every transport back to back (so that
# the machine's drift over the run touches them alike).
suite() {
  local link=$1
  shift
  local t size n
  for size in $sizes; do
    n=$lat_events
    [ "$size" -ge 262144 ] && n=$((lat_events / 4))
    for t in "$@"; do
      measure "$link" "$t" latency "$size" 1 --events "$n" --warmup-events 100 --threads 1 --inflight 1
    done
  done
  for size in 64 65536; do
    for t in "$@"; do
      measure "$link" "$t" throughput "$size" 1 --events "$tput_events" --warmup-events 200 --threads 2 \
        --inflight 16 --credits 16
    done
    for t in "$@"; do
      measure "$link" "$t" throughput "$size" 7 --events $((tput_events / 4)) --warmup-events 50 --threads 2 \
        --inflight 16 --credits 16
    done
  done
}

echo "== loopback (one host) =="
suite loopback mpi mpi-tcp grpc

echo "== netns: two namespaces, ${delay} ms added per packet in each direction =="
netns_skip=""
if [ "$(id -u)" -ne 0 ]; then netns_skip="needs root"
elif ! command -v iptables >/dev/null; then netns_skip="iptables is missing"
elif [ ! -x "$netdelay" ]; then netns_skip="no delay tool at $netdelay (libnetfilter-queue-dev)"
fi
if [ -z "$netns_skip" ]; then
  source scripts/netns/common.sh
  scripts/netns/setup.sh "$delay" "$netdelay"
  netns_up=1
  export OFFLOAD_NETNS_LAYOUT=first-on-a
  suite netns mpi mpi-eager2m grpc
else
  echo "left out: $netns_skip"
fi

python3 - "$rows" "$out/compare.csv" "$delay" <<'PY'
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    r["netns_delay_ms"] = float(sys.argv[3]) if r["link"] == "netns" else 0.0
with open(sys.argv[2], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
# The ratios the question is about: gRPC over MPI on the same link (MPI: the default path).
def pick(link, transport, test, size, tx):
    for r in rows:
        if (r["link"], r["transport"], r["test"], r["payload_bytes"], r["transmitters"]) == (link, transport, test, size, tx):
            return r
print("\nratios, gRPC / MPI on the same link (p50 round trip: >1 means MPI is faster; throughput: <1 means MPI is faster)")
for link in ("loopback", "netns"):
    for mpi in ("mpi", "mpi-tcp", "mpi-eager2m"):
        for test, size, tx, key in [("latency", s["payload_bytes"], 1, "rtt_p50_us") for s in rows
                                    if s["link"] == link and s["transport"] == "grpc" and s["test"] == "latency"] + \
                                   [("throughput", s, n, "requests_per_s") for s in (64, 65536) for n in (1, 7)]:
            a, b = pick(link, "grpc", test, size, tx), pick(link, mpi, test, size, tx)
            if a and b:
                print(f"  {link:<9} grpc/{mpi:<8} {test:<11} {size:>8} B {tx}->1 {key:<15} {a[key] / b[key]:6.2f}")
PY
/usr/bin/python3 scripts/plot_transports.py "$out/compare.csv" -o "$out/compare.png"
echo "wrote $out/compare.csv and $out/compare.png"
