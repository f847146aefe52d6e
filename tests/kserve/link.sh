#!/usr/bin/env bash
# The transmitter's KServe v2 transport (offload-run --transport kserve) against offload-serve
# --kserve, without mpirun:
#  1. every built-in kernel, and the test plugin's "tensors" and "halves" (every dtype, shapes
#     of rank 1 to 3 both ways), validated, with the digest of a local run;
#  2. the service is SIGKILLed mid-run and restarted on its port: the transmitter falls back,
#     reconnects once it is back, and every event completes with the local run's digest;
#  3. a service 1 s late: fallback, then remote, same digest;
#  4. nothing listens: the run completes on the CPU, saying why;
#  5. a service without the transmitter's model: its kernel falls back, and both say why.
#   link.sh OFFLOAD_SERVE OFFLOAD_RUN TENSORS_PLUGIN
set -u
serve=$1
run=$2
plugin=(--plugin "$3")
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
serve_on() {  # serve_on NAME PORT ARGS...: offload-serve --kserve on PORT (0: a free one) in the background
  local name=$1 p=$2; shift 2
  rm -f "$tmp/$name.port"
  "$serve" --kserve "127.0.0.1:$p" --port-file "$tmp/$name.port" "$@" >"$tmp/$name.log" 2>&1 &  # (ctest times it out)
  service=$!
  pids+=("$service")
  for _ in $(seq 100); do [ -s "$tmp/$name.port" ] && break; sleep 0.1; done
  [ -s "$tmp/$name.port" ] || fail "$name: offload-serve wrote no port file"
  port=$(cat "$tmp/$name.port")
}
digest() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['total']['digest'])" "$1"; }

# 1. every built-in kernel and every dtype, against the local run's digest
serve_on all 0 "${plugin[@]}"
for k in clustering echo mlp synthetic tensors halves; do
  "$run" --mode local "${plugin[@]}" --kernel "$k" --events 60 --quiet --json "$tmp/$k-local.json" \
    >"$tmp/$k-local.log" 2>&1 || fail "$k: the local run failed"
  timeout -s KILL 60 "$run" --transport kserve --connect "127.0.0.1:$port" "${plugin[@]}" --kernel "$k" --events 60 --validate \
    --quiet --json "$tmp/$k.json" >"$tmp/$k.log" 2>&1 || fail "$k over KServe exited $?"
  grep -qE "all +60 .* 60 +0 +0$" "$tmp/$k.log" && grep -q "^status: ok" "$tmp/$k.log" ||
    fail "$k over KServe: not 60 validated remote results"
  [ "$(digest "$tmp/$k.json")" = "$(digest "$tmp/$k-local.json")" ] || fail "$k over KServe: digest differs"
done
kill -TERM "$service"
wait "$service" || fail "offload-serve exited $? on SIGTERM"
echo "ok: clustering, echo, mlp, synthetic, tensors, halves over KServe v2: 60 validated remote results each, the local run's digest"

# 2. the service is killed mid-run and restarted on its port
pace=(--kernel synthetic --size 4096 --work 3000 --events 500 --cpu-before-ms 20 --cpu-work emulated --threads 2
  --inflight 4 --quiet)
"$run" --mode local "${pace[@]}" --json "$tmp/local.json" >"$tmp/local.log" 2>&1 || fail "the local run failed"
paced_transmitter() {  # paced_transmitter NAME: the paced run against 127.0.0.1:$port in the background, sets $tx
  timeout -s KILL 120 "$run" --transport kserve --connect "127.0.0.1:$port" "${pace[@]}" --json "$tmp/$1.json" \
    >"$tmp/$1.log" 2>&1 &
  tx=$!
  pids+=("$tx")
}
serve_on killed 0
paced_transmitter killed
sleep 1
kill -9 "$service"
sleep 1
serve_on restarted "$port"
wait "$tx" || fail "the transmitter exited $? after its service was killed and restarted"
grep -q "^status: ok" "$tmp/killed.log" || fail "the transmitter's run is not ok after its service was killed"
kill -TERM "$service"
wait "$service" || fail "the restarted offload-serve exited $?"
served=$(grep -oE "(stopped by a signal|drained) .*requests [0-9]*," "$tmp/restarted.log" | sed -E 's/.*requests ([0-9]+),.*/\1/')
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
assert k["digest"] == json.load(open(sys.argv[2]))["total"]["digest"], "digest differs from the local run's"
assert events == 500 and remote + fallbacks == 500 and remote > int(sys.argv[3]) and fallbacks > 0, \
    "not remote, then fallback, then remote again"
assert k["faults_sessions_lost"] >= 1 and reconnects >= 1, "the lost session or the reconnect is not counted"
PY
echo "ok: every event completed after the KServe service was killed, and it was used again once restarted"

# 3. the service is down when the transmitter starts, and comes up 1 s later
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
paced_transmitter late
sleep 1
serve_on late "$port"
wait "$tx" || fail "the transmitter started before its service exited $?"
grep -q "^status: ok" "$tmp/late.log" || fail "the run of the transmitter started before its service is not ok"
kill -TERM "$service"
python3 - "$tmp/late.json" "$tmp/local.json" <<'PY' || fail "the late service's run counts or digest are wrong"
import json, sys
k = json.load(open(sys.argv[1]))["total"]
print(f"service 1 s late: events {k['events']}, fallbacks {k['fallbacks']} (no receiver "
      f"{k['faults_fallback_no_receiver']}), then remote {k['remote']}")
assert k["digest"] == json.load(open(sys.argv[2]))["total"]["digest"], "digest differs from the local run's"
assert k["events"] == 500 and k["faults_fallback_no_receiver"] > 0 and k["remote"] > 0, "not fallback, then remote"
PY
echo "ok: a transmitter started before its KServe service falls back, then uses it once it is up"

# 4. nothing listens: the run completes on the CPU, saying why
timeout -s KILL 60 "$run" --transport kserve --connect 127.0.0.1:9 --kernel echo --events 10 --validate --quiet \
  >"$tmp/nobody.log" 2>&1 || fail "a run against a port where nothing listens exited $?"
grep -qE "all +10 .* 0 +10 +0$" "$tmp/nobody.log" || fail "the run against nothing did not fall back for all 10 events"
grep -q "cannot reach receiver KServe v2 server 127.0.0.1:9: RepositoryIndex: " "$tmp/nobody.log" ||
  fail "no clear warning for a KServe server that cannot be reached"
echo "ok: $(grep -o 'cannot reach receiver KServe v2 server 127.0.0.1:9: .*' "$tmp/nobody.log" | head -1)"

# 5. a service without the transmitter's model
serve_on echo_only 0 --kernel-set echo
timeout -s KILL 60 "$run" --transport kserve --connect "127.0.0.1:$port" --kernel mlp --events 20 --validate \
  >"$tmp/no_model.log" 2>&1 || fail "a run against a service without its model exited $?"
grep -qE "all +20 .* 0 +20 +0$" "$tmp/no_model.log" || fail "the run without a served model did not fall back"
grep -q "has none of this transmitter's kernels: kernel 'mlp': only on this transmitter" "$tmp/no_model.log" ||
  fail "no clear warning that the server lacks the model"
kill -TERM "$service"
echo "ok: a KServe server without the model: every event on the CPU, and the transmitter says which model is missing"
echo "PASS: the KServe v2 transport"
