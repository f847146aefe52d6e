#!/usr/bin/env bash
# A long-running gRPC receiver service (offload-serve --peers 0, CPU backend, 1 kernel thread)
# against an outside client (tests/grpc/service_client.cpp): what a shared service costs and
# what a misbehaving client can cost others.
#  1. session churn: SESSIONS sessions of each kind (clean: hello, request, goodbye; cancelled
#     after the hello; silent: a stream that sends nothing), then SESSIONS mixed: the service's
#     resident memory after warm-up (the first tenth) and at the end, bytes per session;
#  2. oversize: one message of 1 GiB + 1 byte against the default limit of 1 GiB, and one of
#     256 MiB against --max-message-bytes 16 MiB: how it is refused, the service's peak and
#     its memory once back within 1 MiB of its level before (or at 1 s);
#  3. fairness: a burst of 8 synthetic requests (about 0.25 s each) from one client, then one
#     echo from another: how long the echo waits and how many of the burst ran first; the same
#     burst cancelled at once: how long the next echo waits;
#  4. logs: 2000 malformed messages from one client: the lines the service wrote.
#   scripts/bench_service.sh [SESSIONS (6000)] [OFFLOAD_SERVE (build-cpu/apps/offload-serve)]
# (another offload-serve, e.g. an older commit's, measures that one with this client)
# Every figure is one run on this machine; quote them with the machine and the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-6000}
serve=${2:-build-cpu/apps/offload-serve}
client=build-cpu/tests/test_grpc_service_client
[ -x "$serve" ] && [ -x "$client" ] || { echo "bench_service: build $serve and $client first"; exit 2; }
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
start() {  # start ARGS...: offload-serve --peers 0 on a free port; sets $pid and $address
  rm -f "$tmp/port"
  "$serve" --listen 127.0.0.1:0 --port-file "$tmp/port" --backend cpu "$@" >"$tmp/serve.out" 2>"$tmp/serve.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  address=127.0.0.1:$(cat "$tmp/port")
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }

echo "# bench_service: $(git rev-parse --short HEAD 2>/dev/null), $(nproc) cores, $(date -u +%F)"
start
for kind in clean cancelled silent mixed; do
  "$client" churn "$address" "$pid" "$kind" "$sessions" --slack-kib 1000000 | grep '^churn' || true
done
stop
start
"$client" oversize "$address" "$pid" $(((1 << 30) + 1)) --settle-ms 1000 --slack-kib 1024 | grep '^oversize' || true
stop
start --max-message-bytes $((16 << 20))
"$client" oversize "$address" "$pid" $((256 << 20)) --settle-ms 1000 --slack-kib 1024 | grep '^oversize' || true
stop
start
"$client" fairness "$address" 1000 100000 8 | grep '^fairness' || true
"$client" cancel "$address" 1000 100000 8 | grep '^cancel' || true
"$client" junk "$address" 2000 | grep '^junk' || true
stop
echo "log: after 2000 junk messages: $(wc -l <"$tmp/serve.out") lines on stdout, $(wc -l <"$tmp/serve.err") on stderr"
grep -E "served|stopped" "$tmp/serve.out" || true
