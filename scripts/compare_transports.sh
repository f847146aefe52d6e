#!/usr/bin/env bash
# MPI against gRPC and KServe v2: the same workload (the echo kernel, so the transport is all
# there is) on the same machine in one run, through offload-run with one receiver:
#   - round trip p50/p99 by payload size, 1 -> 1, one request at a time;
#   - throughput 1 -> 1 and 7 -> 1 (2 threads, 16 events in flight, 16 credits per transmitter),
#     at 64 B and 64 KiB;
#   - CPU time per request of each side (process CPU over requests: the receiver's, and the
#     transmitters' together).
# The receiver is a rank of the same job (mpi, mpi-tcp, grpc), or one offload-serve with --listen
# and --kserve that offload-run's transmitters reach with --connect: grpc-serve (our protocol over
# gRPC) and kserve (KServe v2's ModelInfer, protobuf-encoded), the same receiver process, so that
# the two differ only in the protocol; its CPU is read from /proc over the transmitters' run.
# Over two links:
#   loopback: mpi (Open MPI's default: shared memory on one node), mpi-tcp (Open MPI's TCP
#             BTL over lo, what gRPC uses too), grpc, grpc-serve and kserve;
#   netns:    the two-namespace link of scripts/netns (real TCP over a veth pair) with DELAY ms
#             added to every packet on arrival in each namespace; the receiver alone in one
#             namespace, its transmitters in the other: mpi (TCP BTL, 64 KiB eager limit),
#             mpi-eager2m (eager limit raised to 2 MiB, results/README.md), grpc, grpc-serve and
#             kserve (the service in the receiver's namespace). Needs root; left out, saying why,
#             otherwise.
# Writes OUT/compare.csv (one row per measurement) and OUT/compare.png, and prints the table.
#   scripts/compare_transports.sh [--out DIR (results/transports)] [--delay-ms D (1)] [--quick]
#                                 [--build DIR (build, built first; another DIR is used as it is)]
#                                 [--sizes "B B ..." (latency payloads; default 64 1024 16384 262144 1048576)]
#                                 [--netns-events-divisor K (1): K times fewer events over the delayed link]
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/transports
delay=1
quick=0
build=
sizes_arg=
divisor=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --delay-ms) delay=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --sizes) sizes_arg=$2; shift 2 ;;
    --netns-events-divisor) divisor=$2; shift 2 ;;
    *) echo "compare_transports.sh: unknown argument $1 (see the header)" >&2; exit 2 ;;
  esac
done
if [ -z "$build" ]; then
  scripts/build.sh >/dev/null
  build=$PWD/build
fi
source scripts/env.sh
run=$build/apps/offload-run
serve=$build/apps/offload-serve
netdelay=$build/scripts/netns/offload-netdelay
[ -x "$run" ] || { echo "compare_transports.sh: $run is missing" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${netns_up:-}" ] && scripts/netns/teardown.sh' EXIT
rows=$tmp/rows.jsonl

sizes="64 1024 16384 262144 1048576"
lat_events=1000 tput_events=3000
if [ "$quick" = 1 ]; then sizes="64 65536"; lat_events=100 tput_events=500; fi
[ -n "$sizes_arg" ] && sizes=$sizes_arg

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
    # (the two namespaces' private veth link: plaintext, said with --insecure)
    netns/grpc) launcher=(scripts/netns/mpirun.sh); extra=(--transport grpc --listen "$ADDR_A:$GRPC_PORT" --insecure) ;;
  esac
}

# The receiver service of grpc-serve and kserve: offload-serve with --listen and --kserve, in the
# receiver's namespace on the netns link; sets service_pid, listen_at, kserve_at.
start_service() {  # start_service LINK CREDITS
  local ns=() host=127.0.0.1 lport=0 kport=0 plain=()
  if [ "$1" = netns ]; then
    ns=(ip netns exec "$NS_A") host=$ADDR_A lport=$GRPC_PORT kport=$((GRPC_PORT - 1))
    plain=(--insecure)  # (the namespaces' private veth link)
  fi
  rm -f "$tmp/ports"
  "${ns[@]}" "$serve" --listen "$host:$lport" --kserve "$host:$kport" --port-file "$tmp/ports" --credits "$2" \
    "${plain[@]}" >"$tmp/serve.log" 2>&1 &
  service_pid=$!
  for _ in $(seq 100); do [ -s "$tmp/ports" ] && [ "$(wc -l <"$tmp/ports")" -ge 1 ] && break; sleep 0.1; done
  [ -s "$tmp/ports" ] || { echo "compare_transports.sh: offload-serve did not start:" >&2; cat "$tmp/serve.log" >&2; exit 1; }
  listen_at=$host:$(sed -n 1p "$tmp/ports") kserve_at=$host:$(sed -n 2p "$tmp/ports")
}
stop_service() { kill -TERM "$service_pid" 2>/dev/null; wait "$service_pid" 2>/dev/null || true; }
# CPU seconds of a process, every thread (schedstat: nanoseconds on a CPU).
cpu_seconds() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%.6f", ns / 1e9}'; }

# measure LINK TRANSPORT TEST SIZE TRANSMITTERS offload-run args...: one run, one row.
measure() {
  local link=$1 transport=$2 test=$3 size=$4 tx=$5
  shift 5
  local service_cpu=""
  if [ "$transport" = grpc-serve ] || [ "$transport" = kserve ]; then
    local credits=8 a
    for a in "$@"; do [ "${prev:-}" = --credits ] && credits=$a; prev=$a; done
    prev=
    start_service "$link" "$credits"
    launcher=(mpirun)
    [ "$link" = netns ] && launcher=(ip netns exec "$NS_B" mpirun)
    if [ "$transport" = kserve ]; then extra=(--transport kserve --connect "$kserve_at")
    else extra=(--transport grpc --connect "$listen_at"); fi
    local cpu0
    cpu0=$(cpu_seconds "$service_pid")
    if ! timeout -s KILL 300 "${launcher[@]}" -np "$tx" "$run" --kernel echo --size "$size" --quiet \
         --json "$tmp/run.json" "${extra[@]}" "$@" >"$tmp/run.log" 2>&1 || ! grep -q "^status: ok" "$tmp/run.log"; then
      echo "compare_transports.sh: $link $transport $test size $size ${tx}->1 failed:" >&2
      cat "$tmp/run.log" "$tmp/serve.log" >&2
      stop_service
      exit 1
    fi
    service_cpu=$(python3 -c "print($(cpu_seconds "$service_pid") - $cpu0)")
    stop_service
    requests=$(grep -o "requests [0-9]*" "$tmp/serve.log" | tail -1 | cut -d' ' -f2)
    service_cpu="$service_cpu ${requests:-0}"
  else
    setup_transport "$link" "$transport"
  fi
  if [ -z "$service_cpu" ] && { ! timeout -s KILL 300 "${launcher[@]}" -np $((tx + 1)) "$run" --receivers 1 --kernel echo --size "$size" \
       --quiet --json "$tmp/run.json" "${extra[@]}" "$@" >"$tmp/run.log" 2>&1 ||
     ! grep -q "^status: ok" "$tmp/run.log"; }; then
    echo "compare_transports.sh: $link $transport $test size $size ${tx}->1 failed:" >&2
    cat "$tmp/run.log" >&2
    exit 1
  fi
  python3 - "$tmp/run.json" "$link" "$transport" "$test" "$size" "$tx" $service_cpu >>"$rows" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = d["total"]
if len(sys.argv) > 7:  # the service's CPU over the run, and the requests it served (warm-up included)
    rx_cpu, rx_requests = float(sys.argv[7]), int(sys.argv[8])
else:
    rx = [r for r in d["ranks"] if r["role"] == "receiver"][0]
    rx_cpu, rx_requests = rx["cpu"]["process_s"], rx["requests"]
txs = [r for r in d["ranks"] if r["role"] == "transmitter"]
tx_requests = sum(r["submitted"] for r in txs)
print(json.dumps({
    "link": sys.argv[2], "transport": sys.argv[3], "test": sys.argv[4], "payload_bytes": int(sys.argv[5]),
    "transmitters": int(sys.argv[6]), "requests": t["requests"], "remote": t["remote"],
    "rtt_p50_us": 1e3 * t["round_trip_p50_ms"], "rtt_p99_us": 1e3 * t["round_trip_p99_ms"],
    "requests_per_s": t["requests_per_s"],
    "rx_cpu_us_per_request": 1e6 * rx_cpu / max(rx_requests, 1),
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
    [ "$size" -ge 4194304 ] && n=$((lat_events / 20))
    [ "$n" -ge 20 ] || n=20
    for t in "$@"; do
      measure "$link" "$t" latency "$size" 1 --events "$n" --warmup-events $((n < 100 ? n : 100)) --threads 1 --inflight 1
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
suite loopback mpi mpi-tcp grpc grpc-serve kserve

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
  lat_events=$((lat_events / divisor)) tput_events=$((tput_events / divisor))
  suite netns mpi mpi-eager2m grpc grpc-serve kserve
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
print("\nratios, X / MPI on the same link (p50 round trip: >1 means MPI is faster; throughput: <1 means MPI is faster)")
cases = [("latency", s["payload_bytes"], 1, "rtt_p50_us") for s in rows if s["link"] == "loopback" and
         s["transport"] == "mpi" and s["test"] == "latency"] + \
        [("throughput", s, n, "requests_per_s") for s in (64, 65536) for n in (1, 7)]
for link in ("loopback", "netns"):
    for x in ("grpc", "kserve"):
        for mpi in ("mpi", "mpi-tcp", "mpi-eager2m"):
            for test, size, tx, key in cases:
                a, b = pick(link, x, test, size, tx), pick(link, mpi, test, size, tx)
                if a and b:
                    print(f"  {link:<9} {x}/{mpi:<8} {test:<11} {size:>8} B {tx}->1 {key:<15} {a[key] / b[key]:6.2f}")
print("\nwhat the protobuf encoding costs: kserve / grpc-serve (the same offload-serve; p50 round trip and CPU per request)")
for link in ("loopback", "netns"):
    for r in rows:
        if r["link"] != link or r["transport"] != "kserve":
            continue
        g = pick(link, "grpc-serve", r["test"], r["payload_bytes"], r["transmitters"])
        if g:
            print(f"  {link:<9} {r['test']:<11} {r['payload_bytes']:>8} B {r['transmitters']}->1  p50 x{r['rtt_p50_us'] / g['rtt_p50_us']:5.2f}"
                  f"  req/s x{r['requests_per_s'] / g['requests_per_s']:5.2f}"
                  f"  tx cpu x{r['tx_cpu_us_per_request'] / g['tx_cpu_us_per_request']:5.2f}"
                  f"  rx cpu x{r['rx_cpu_us_per_request'] / max(g['rx_cpu_us_per_request'], 1e-9):5.2f}")
PY
/usr/bin/python3 scripts/plot_transports.py "$out/compare.csv" -o "$out/compare.png"
echo "wrote $out/compare.csv and $out/compare.png"
