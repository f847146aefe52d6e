#!/usr/bin/env bash
# Operating offload-serve: metrics, health, graceful drain.
#  1. /metrics parses as Prometheus text (prometheus_client's parser) and has Triton's
#     nv_inference_* per model and version; after a load of gRPC and KServe transmitters and a
#     refused call (no token), each counter equals the service's exit summary exactly;
#     /v2/health/live and /v2/health/ready answer 200.
#  2. a drain under load: three transmitters (two over our gRPC protocol, one over KServe v2)
#     are running when SIGTERM comes; /v2/health/ready turns 503 at once, the service answers
#     what it has in flight and exits 0 ("drained"), and every event of every transmitter
#     completes with the local run's digest (remote before, fallback after).
#  3. a second SIGTERM while draining stops the service at once (exit 1, saying so).
#   operate.sh OFFLOAD_SERVE OFFLOAD_RUN PYTHON (Debian's python3, with python3-prometheus-client)
set -u
serve=$1
run=$2
python=$3
"$python" -c "import prometheus_client" 2>/dev/null ||
  { echo "SKIP: $python has no prometheus_client (apt-get install python3-prometheus-client)"; exit 77; }
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
here=$(dirname "$0")

start_service() {  # start_service NAME ARGS...: sets $grpc_port, $kserve_port, $metrics_port, $service
  local name=$1; shift
  "$serve" --listen 127.0.0.1:0 --kserve 127.0.0.1:0 --metrics 127.0.0.1:0 --port-file "$tmp/$name.port" "$@" \
    >"$tmp/$name.log" 2>&1 &
  service=$!
  pids+=("$service")
  for _ in $(seq 100); do [ -s "$tmp/$name.port" ] && break; sleep 0.1; done
  [ -s "$tmp/$name.port" ] || fail "$name: offload-serve wrote no port file"
  grpc_port=$(sed -n 1p "$tmp/$name.port") kserve_port=$(sed -n 2p "$tmp/$name.port")
  metrics_port=$(sed -n 3p "$tmp/$name.port")
}
http_status() {  # http_status PATH: the HTTP status of GET PATH, 000 when nothing answers
  python3 -c "
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print('000')" "http://127.0.0.1:$metrics_port$1"; }
events=(--kernel mlp --events 100 --threads 2 --inflight 4 --cpu-before-ms 4 --validate)
tx() {  # tx NAME TRANSPORT PORT SEED ARGS...: a transmitter in the background; its pid in $tx_pid
  local name=$1 transport=$2 port=$3 seed=$4; shift 4
  timeout -s KILL 120 "$run" --transport "$transport" --connect "127.0.0.1:$port" "${events[@]}" --seed "$seed" \
    --json "$tmp/$name.json" "$@" >"$tmp/$name.log" 2>&1 &
  tx_pid=$!
  pids+=("$tx_pid")
}
requests_at_least() {  # requests_at_least N: waits (10 s at most) until the service has accepted N requests
  python3 - "http://127.0.0.1:$metrics_port/metrics" "$1" <<'EOF'
import sys, time, urllib.request
for _ in range(200):
    try:
        text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
    except OSError:
        text = ""
    n = [float(l.split()[1]) for l in text.splitlines() if l.startswith("offload_requests_total ")]
    if n and n[0] >= int(sys.argv[2]):
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
EOF
}
field() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['total'][sys.argv[2]])" "$@"; }
local_digest() { timeout -s KILL 120 "$run" --mode local "${events[@]}" --seed "$1" --json "$tmp/local$1.json" \
  >"$tmp/local$1.log" 2>&1 && field "$tmp/local$1.json" digest; }
complete() {  # complete NAME SEED: exit 0, every event validated, the local digest
  [ "$(field "$tmp/$1.json" status)" = ok ] && [ "$(field "$tmp/$1.json" events)" = 100 ] &&
    [ "$(field "$tmp/$1.json" errors)" = 0 ] && [ "$(field "$tmp/$1.json" digest)" = "$(local_digest "$2")" ] ||
    fail "$1: not every event completed with the local digest"
}

printf 'alice aaaaaaaaaaaaaaaaaaaaaaaa\n' >"$tmp/tokens"
echo aaaaaaaaaaaaaaaaaaaaaaaa >"$tmp/alice.token"
auth=(--token-file "$tmp/alice.token")

# 1. metrics against the exit summary
start_service metrics --tokens "$tmp/tokens"
[ "$(http_status /v2/health/live)" = 200 ] || fail "live is not 200"
[ "$(http_status /v2/health/ready)" = 200 ] || fail "ready is not 200"
[ "$(http_status /nothing)" = 404 ] || fail "an unknown path is not 404"
tx a grpc "$grpc_port" 1 "${auth[@]}"; a=$tx_pid
tx b kserve "$kserve_port" 2 "${auth[@]}"; b=$tx_pid
tx refused grpc "$grpc_port" 3 --require-receivers --handshake-timeout-ms 2000; r=$tx_pid  # no token
wait "$a" || fail "a exited $?"
wait "$b" || fail "b exited $?"
wait "$r"
complete a 1
complete b 2
python3 -c "
import sys, urllib.request
open(sys.argv[2], 'w').write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" \
  "http://127.0.0.1:$metrics_port/metrics" "$tmp/metrics.txt" || fail "no /metrics"
kill -TERM "$service"
wait "$service" || fail "the idle service did not drain and exit 0 at SIGTERM"
grep -q "offload-serve: drained after" "$tmp/metrics.log" || fail "the idle service did not say it drained"
"$python" "$here/check_metrics.py" "$tmp/metrics.txt" "$tmp/metrics.log" --refused || fail "the metrics do not match the summary"

# 2. a drain under load
start_service drain --drain-timeout 60
tx c grpc "$grpc_port" 4; c=$tx_pid
tx d grpc "$grpc_port" 5; d=$tx_pid
tx e kserve "$kserve_port" 6; e=$tx_pid
requests_at_least 20 || fail "the service served no request"
kill -TERM "$service"
for _ in $(seq 40); do [ "$(http_status /v2/health/ready)" = 503 ] && break; sleep 0.05; done
[ "$(http_status /v2/health/ready)" = 503 ] || ! kill -0 "$service" 2>/dev/null ||
  fail "ready is not 503 while draining"
wait "$service" || fail "the service exited $? from its drain"
grep -q "offload-serve: SIGTERM: draining" "$tmp/drain.log" && grep -q "offload-serve: drained after" "$tmp/drain.log" ||
  fail "the service did not drain"
for p in "$c" "$d" "$e"; do wait "$p" || fail "a transmitter exited $? through the drain"; done
complete c 4
complete d 5
complete e 6
remote=$(( $(field "$tmp/c.json" remote) + $(field "$tmp/d.json" remote) + $(field "$tmp/e.json" remote) ))
fallbacks=$(( $(field "$tmp/c.json" fallbacks) + $(field "$tmp/d.json" fallbacks) + $(field "$tmp/e.json" fallbacks) ))
[ "$remote" -gt 0 ] || fail "nothing was remote before the drain"
echo "drain: $remote events remote before it, $fallbacks on the transmitters' CPUs after; every event complete"

# 3. a second SIGTERM stops at once: a request runs for seconds (synthetic, one kernel thread)
slow=(--kernel synthetic --size 4096 --work 300000 --events 1 --threads 1 --inflight 1)
start_service twice --drain-timeout 60 --receiver-threads 1
timeout -s KILL 120 "$run" --transport grpc --connect "127.0.0.1:$grpc_port" "${slow[@]}" --json "$tmp/g.json" \
  >"$tmp/g.log" 2>&1 &
g=$!
pids+=("$g")
requests_at_least 1 || fail "the slow request did not arrive"
kill -TERM "$service"
for _ in $(seq 40); do grep -q "SIGTERM: draining (1 request" "$tmp/twice.log" && break; sleep 0.05; done
grep -q "SIGTERM: draining (1 request" "$tmp/twice.log" || fail "the drain did not begin with 1 request in flight"
kill -TERM "$service"
wait "$service"
rc=$?
[ $rc = 1 ] && grep -q "stopped by a second SIGTERM while draining" "$tmp/twice.log" &&
  grep -q "1 request(s) were still in flight" "$tmp/twice.log" || fail "a second SIGTERM: exit $rc, not stopped at once"
wait "$g" || fail "g exited $?"
# (its one event fell back when the service stopped: computed on its own CPU, the local result)
[ "$(field "$tmp/g.json" status)" = ok ] && [ "$(field "$tmp/g.json" events)" = 1 ] &&
  [ "$(field "$tmp/g.json" errors)" = 0 ] && [ "$(field "$tmp/g.json" fallbacks)" = 1 ] ||
  fail "g: its event did not complete on its CPU after the service stopped"
echo "operate: metrics equal the summary, health, drain under load and a second SIGTERM as expected"
