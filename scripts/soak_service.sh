#!/usr/bin/env bash
# Session soak of a gRPC receiver service: SESSIONS sessions (clean, cancelled after the hello,
# silent, in turn) against one offload-serve --peers 0, one after another from an outside
# client (tests/grpc/service_client.cpp), sampling the service's resident memory; fails when
# it grew more than SLACK_KIB after the first tenth. A benchmark, not in CI (10^6 sessions take
# about 15 minutes here); grpc.service runs 6000 the same way.
#   scripts/soak_service.sh [SESSIONS (1000000)] [SLACK_KIB (2048)]
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-1000000}
slack=${2:-2048}
serve=build-cpu/apps/offload-serve
client=build-cpu/tests/test_grpc_service_client
[ -x "$serve" ] && [ -x "$client" ] || { echo "soak_service: build the cpu preset first (cmake --preset cpu && cmake --build build-cpu)"; exit 2; }
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
"$serve" --listen 127.0.0.1:0 --port-file "$tmp/port" --backend cpu >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
echo "# soak_service: $(git rev-parse --short HEAD 2>/dev/null), $(nproc) cores, $(date -u +%F), $sessions sessions"
"$client" churn "127.0.0.1:$(cat "$tmp/port")" "$pid" mixed "$sessions" --slack-kib "$slack"
kill -TERM "$pid"
wait "$pid" || true
grep -E "stopped by a signal|drained after" "$tmp/out"
