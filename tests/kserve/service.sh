#!/usr/bin/env bash
# offload-serve --kserve as a long-running shared service (docs/reliability.md, "A shared
# service"): churn.py's session churn (streams, connections, cancelled streams), a client that
# does not read, and the service still serving after them; then it stops on SIGTERM having
# dropped no work it owed.
#   service.sh OFFLOAD_SERVE PROTO_DIR PYTHON [asan]
set -u
serve=$1
proto=$2
python=$3
# Under ASan the allocator keeps freed memory in its caches: a looser bound, which still
# catches a kilobyte per session (as tests/grpc/service.sh).
slack=1536
[ "${4:-}" = asan ] && slack=16384
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; tail -30 "$f"; done; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
make_stubs "$tmp" "$proto" "$python"
# An idle timeout of 800 ms: a connection's session ends after 200 ms without requests.
"$serve" --kserve 127.0.0.1:0 --port-file "$tmp/port" --backend cpu --receiver-threads 1 --idle-timeout-ms 800 \
  >"$tmp/serve.log" 2>"$tmp/serve.err.log" &
service=$!
pids+=("$service")
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || fail "offload-serve wrote no port file"
timeout -s KILL 240 "$python" "$here/churn.py" --address "127.0.0.1:$(cat "$tmp/port")" --stubs "$tmp" \
  --pid "$service" --slack-kib "$slack" >"$tmp/churn.log" 2>&1
rc=$?
cat "$tmp/churn.log"
[ $rc -eq 0 ] || fail "the churn's checks failed (exit $rc)"
kill -TERM "$service"
wait "$service" || fail "offload-serve exited $? on SIGTERM"
grep -qE "stopped by a signal|drained after" "$tmp/serve.log" || fail "offload-serve printed no summary"
grep -oE "(stopped by a signal|drained after).*" "$tmp/serve.log"
echo "PASS: the KServe v2 service"
