#!/usr/bin/env bash
# The KServe v2 front end, without mpirun: one offload-serve with --listen and --kserve, so
# that one receiver serves a KServe v2 client and an mpi-offload transmitter at once.
#  1. Python stubs made from our .proto (protoc, grpc_python_plugin) and the client written from
#     the specification (client_test.py) run against --kserve while offload-run --transport grpc
#     sends validated events to --listen;
#  2. the service then stops on SIGTERM, reporting both kinds of sessions.
#  The service also loads the test plugin with the models "tensors" and "halves" (every dtype).
#   kserve.sh OFFLOAD_SERVE OFFLOAD_RUN PROTO_DIR PYTHON TENSORS_PLUGIN
set -u
serve=$1
run=$2
proto=$3
python=$4
tensors=$5
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)

source "$here/common.sh"
make_stubs "$tmp" "$proto" "$python"

"$serve" --listen 127.0.0.1:0 --kserve 127.0.0.1:0 --port-file "$tmp/ports" --max-message-bytes 1048576 --plugin "$tensors" \
  >"$tmp/serve.log" 2>&1 &
service=$!
pids+=("$service")
for _ in $(seq 100); do [ -s "$tmp/ports" ] && [ "$(wc -l <"$tmp/ports")" -ge 1 ] && break; sleep 0.1; done
listen_port=$(sed -n 1p "$tmp/ports")
kserve_port=$(sed -n 2p "$tmp/ports")
[ -n "$listen_port" ] && [ -n "$kserve_port" ] || fail "offload-serve wrote no two ports"
grep -q "listening for transmitters on 127.0.0.1:$listen_port and KServe v2 on 127.0.0.1:$kserve_port" "$tmp/serve.log" ||
  fail "offload-serve's first line does not name both listeners"

timeout -s KILL 120 "$run" --transport grpc --connect "127.0.0.1:$listen_port" --kernel mlp --events 400 --validate \
  --quiet >"$tmp/tx.log" 2>&1 &
tx=$!
pids+=("$tx")
timeout -s KILL 120 "$python" "$here/client_test.py" --address "127.0.0.1:$kserve_port" --stubs "$tmp" \
  --max-message-bytes 1048576 --tensors >"$tmp/client.log" 2>&1
rc=$?
cat "$tmp/client.log"
[ $rc -eq 0 ] || fail "the KServe client's checks failed (exit $rc)"
wait "$tx" || fail "the transmitter beside it exited $?"
grep -qE "all +400 .* 400 +0 +0$" "$tmp/tx.log" && grep -q "^status: ok" "$tmp/tx.log" ||
  fail "the transmitter beside the KServe client did not get 400 validated remote results"
kill -TERM "$service"
wait "$service" || fail "offload-serve exited $? on SIGTERM"
grep -qE "(stopped by a signal|drained) .*peers_dropped 0, replies_discarded 0, work_dropped 0" "$tmp/serve.log" ||
  fail "offload-serve's summary shows dropped peers or work"
echo "PASS: the KServe v2 client and a transmitter on one receiver"
