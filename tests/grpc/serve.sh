#!/usr/bin/env bash
# The gRPC service without mpirun: offload-serve, and offload-run --transport grpc --connect as
# plain processes.
#  1. two transmitter processes at once, each with --connect to two offload-serve --peers 2:
#     every event validated, both services served requests and exit by themselves after their
#     2 sessions;
#  2. the service is SIGKILLed while a transmitter runs, then restarted on its port: the
#     transmitter learns it from the closed stream, falls back at once, reconnects once the
#     service is back and completes every event with the digest of a local run;
#  3. a transmitter started 1 s before its service: fallback, then remote, same digest;
#  4. a transmitter pointed at a port where nothing listens completes on the CPU, saying why;
#     with --require-receivers it fails its handshake, saying so.
#   serve.sh OFFLOAD_SERVE OFFLOAD_RUN
set -u
serve=$1
run=$2
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
start_service() {  # start_service NAME ARGS...: starts offload-serve on a free port, sets $port and $service
  local name=$1; shift
  rm -f "$tmp/$name.port"
  "$serve" --listen 127.0.0.1:0 --port-file "$tmp/$name.port" "$@" >"$tmp/$name.log" 2>&1 &  # (ctest times it out)
  service=$!
  pids+=("$service")
  for _ in $(seq 100); do [ -s "$tmp/$name.port" ] && break; sleep 0.1; done
  [ -s "$tmp/$name.port" ] || fail "$name: offload-serve wrote no port file"
  port=$(cat "$tmp/$name.port")
}
digest() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['total']['digest'])" "$1"; }

# 1. two transmitters, each connected to two services, no mpirun
start_service one --peers 2
service_one=$service port_one=$port
start_service two --peers 2
service_two=$service port_two=$port
for i in 1 2; do
  timeout -s KILL 120 "$run" --transport grpc --connect "127.0.0.1:$port_one,127.0.0.1:$port_two" --kernel mlp \
    --events 150 --seed "$i" --validate --quiet >"$tmp/tx$i.log" 2>&1 &
  pids+=("$!")
  eval "tx$i=$!"
done
wait "$tx1" || fail "transmitter 1 exited $?"
wait "$tx2" || fail "transmitter 2 exited $?"
for i in 1 2; do
  grep -qE "all +150 .* 150 +0 +0$" "$tmp/tx$i.log" && grep -q "^status: ok" "$tmp/tx$i.log" ||
    fail "transmitter $i did not get 150 validated remote results"
done
wait "$service_one" || fail "offload-serve one exited $? after its sessions"
wait "$service_two" || fail "offload-serve two exited $? after its sessions"
total=0
for name in one two; do
  line=$(grep -o "served every session .*requests [0-9]*, replies [0-9]*, .*peers_finished 2, peers_dropped 0, .*error_replies 0," \
    "$tmp/$name.log") || fail "offload-serve $name's summary is not 2 sessions without errors"
  requests=$(echo "$line" | sed -E 's/.*requests ([0-9]+),.*/\1/')
  [ "$requests" -gt 0 ] || fail "offload-serve $name served no request"
  total=$((total + requests))
done
[ "$total" -eq 300 ] || fail "the two services served $total requests, not 300"
echo "ok: 2 transmitter processes x 2 services, 300 validated remote results, both services exited after 2 sessions"

# 2. the service is killed mid-run and restarted on its port
pace=(--kernel synthetic --size 4096 --work 3000 --events 500 --cpu-before-ms 20 --cpu-work emulated --threads 2
  --inflight 4 --quiet)
"$run" --transport grpc --mode local "${pace[@]}" --json "$tmp/local.json" >"$tmp/local.log" 2>&1 ||
  fail "the local run failed"
paced_transmitter() {  # paced_transmitter NAME: the paced run against 127.0.0.1:$port in the background, sets $tx
  timeout -s KILL 120 "$run" --transport grpc --connect "127.0.0.1:$port" "${pace[@]}" --json "$tmp/$1.json" \
    >"$tmp/$1.log" 2>&1 &
  tx=$!
  pids+=("$tx")
}
serve_on_port() {  # serve_on_port NAME: offload-serve on $port for one session in the background, sets $service
  timeout -s KILL 60 "$serve" --listen "127.0.0.1:$port" --peers 1 >"$tmp/$1.log" 2>&1 &
  service=$!
  pids+=("$service")
}
start_service killed --peers 1
paced_transmitter killed
sleep 1
kill -9 "$service"
sleep 1
serve_on_port restarted
restarted=$service
wait "$tx" || fail "the transmitter exited $? after its service was killed and restarted"
grep -q "^status: ok" "$tmp/killed.log" || fail "the transmitter's run is not ok after its service was killed"
wait "$restarted" || fail "the restarted offload-serve exited $? (it ends after its one session; 137: it got none)"
served=$(grep -o "served every session .*requests [0-9]*," "$tmp/restarted.log" | sed -E 's/.*requests ([0-9]+),.*/\1/')
[ "${served:-0}" -gt 0 ] || fail "the restarted service served no request"
python3 - "$tmp/killed.json" "$tmp/local.json" "$served" <<'PY' || fail "the run's counts or digest are wrong"
import json, sys
d = json.load(open(sys.argv[1]))
k = d["total"]
events, remote, fallbacks = k["events"], k["remote"], k["fallbacks"]
reconnects = sum(r.get("reconnects", 0) for r in d["ranks"])
print(f"killed and restarted service: events {events}, remote {remote} ({sys.argv[3]} by the restarted one), "
      f"fallbacks {fallbacks} (error {k['faults_fallback_error']}, no receiver {k['faults_fallback_no_receiver']}), "
      f"sessions lost {k['faults_sessions_lost']}, reconnects {reconnects}")
local = json.load(open(sys.argv[2]))["total"]
assert k["digest"] == local["digest"], f"digest {k['digest']}, the local run's {local['digest']}"
assert events == 500 and remote + fallbacks == 500 and remote > int(sys.argv[3]) and fallbacks > 0, \
    "not remote, then fallback, then remote again"
assert k["faults_sessions_lost"] == 1, "the lost session is not counted"
assert reconnects == 1, "the reconnect is not counted"
PY
echo "ok: the transmitter finished every event after its service was killed, and used it again once restarted"

# 3. the service is down when the transmitter starts, and comes up 1 s later
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
paced_transmitter late
sleep 1
serve_on_port late_service
late=$service
wait "$tx" || fail "the transmitter started before its service exited $?"
grep -q "^status: ok" "$tmp/late.log" || fail "the run of the transmitter started before its service is not ok"
grep -q "cannot reach receiver 127.0.0.1:$port: gRPC stream to 127.0.0.1:$port failed.*until it is in session" \
  "$tmp/late.log" || fail "no warning that the receiver could not be reached at start"
wait "$late" || fail "the late offload-serve exited $? (137: it got no session)"
python3 - "$tmp/late.json" "$tmp/local.json" <<'PY' || fail "the late service's run counts or digest are wrong"
import json, sys
k = json.load(open(sys.argv[1]))["total"]
print(f"service 1 s late: events {k['events']}, fallbacks {k['fallbacks']} (no receiver "
      f"{k['faults_fallback_no_receiver']}), then remote {k['remote']}")
assert k["digest"] == json.load(open(sys.argv[2]))["total"]["digest"], "digest differs from the local run's"
assert k["events"] == 500 and k["faults_fallback_no_receiver"] > 0 and k["remote"] > 0, "not fallback, then remote"
PY
echo "ok: a transmitter started before its service falls back, then uses the service once it is up"

# 4. nothing listens: the run completes on the CPU, saying why; with --require-receivers it fails
timeout -s KILL 60 "$run" --transport grpc --connect 127.0.0.1:9 --kernel echo --events 10 --validate --quiet \
  >"$tmp/nobody.log" 2>&1 || fail "a run against a port where nothing listens exited $?"
grep -qE "all +10 .* 0 +10 +0$" "$tmp/nobody.log" || fail "the run against nothing did not fall back for all 10 events"
grep -q "cannot reach receiver 127.0.0.1:9: gRPC stream to 127.0.0.1:9 failed" "$tmp/nobody.log" ||
  fail "no clear warning for a receiver that cannot be reached"
timeout -s KILL 60 "$run" --transport grpc --connect 127.0.0.1:9 --kernel echo --events 10 --quiet \
  --require-receivers >"$tmp/strict.log" 2>&1 && fail "--require-receivers against nothing exited 0"
grep -q "handshake failed: cannot reach receiver 127.0.0.1:9: gRPC stream to 127.0.0.1:9 failed" "$tmp/strict.log" ||
  fail "no clear error for a receiver that cannot be reached under --require-receivers"
echo "ok: $(grep -o 'handshake failed: .*' "$tmp/strict.log" | head -1)"
echo "PASS: gRPC service"
