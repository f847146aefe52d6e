#!/usr/bin/env bash
# A long-running gRPC receiver service (offload-serve --peers 0, one kernel thread) against an
# outside client (service_client.cpp), checking what docs/design.md ("What a service promises")
# says it does:
#  1. session churn: 6000 sessions (clean, cancelled after the hello, silent, in turn): the
#     service's RSS after the last is within 1.5 MiB of what it was after the first 600;
#  2. junk: 2000 malformed messages from one client are each answered, but logged 5 times,
#     then counted; nothing of the log on stdout; a client that sends junk without reading the
#     answers is cut off, not queued for without end;
#  3. oversize: 256 MiB against a 16 MiB limit: refused (too_large), RSS back within 8 MiB of
#     its level before in 1 s; with --grpc-memory 64 MiB the peak stays within that bound;
#  4. fairness: a burst of 8 slow requests from one client delays another's echo by at most
#     the request running; the same burst cancelled at once is dropped (work_dropped), not run;
#  5. --max-work: a request declaring more work is refused (too_large), saying so;
#  6. --peers 1: a client that fails the handshake, one that leaves after its hello and one
#     that sends nothing do not use up the session; a served one does, and the service exits.
#   service.sh OFFLOAD_SERVE SERVICE_CLIENT [asan]
set -u
serve=$1
client=$2
# Under ASan the allocator keeps freed memory in its own caches (and glibc's malloc_trim has
# nothing to give back; measured: the 256 MiB message's memory stays): there the churn's RSS is
# held to a loose bound, which still catches kilobytes per session, and the oversized
# message's return is not checked (its refusal and the service after it are). The plain
# builds hold the churn to 1.5 MiB over 5400 sessions and the return of the 256 MiB message to
# 8 MiB in 1 s (usually +0.5 to +1.9 MiB; one CI run with a build beside it held +4.8 MiB: the
# check is against the +198 to +711 MiB held before the receiver trimmed, results/reliability.md).
# The quota's peak: 64 MiB and 8 for the rest; under ASan also its shadow (1/8) and redzones.
churn_slack=1536 return_slack=8192 quota_peak=$(((64 + 8) << 10))
[ "${3:-}" = asan ] && churn_slack=16384 return_slack=1000000 quota_peak=$(((64 + 32) << 10))
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.out "$tmp"/*.err; do echo "--- $f"; tail -20 "$f"; done; exit 1; }
start() {  # start NAME ARGS...: offload-serve on a free port; sets $pid and $address
  local name=$1; shift
  rm -f "$tmp/port"
  "$serve" --listen 127.0.0.1:0 --port-file "$tmp/port" --backend cpu --receiver-threads 1 "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  [ -s "$tmp/port" ] || fail "$name: offload-serve wrote no port file"
  address=127.0.0.1:$(cat "$tmp/port")
}
stop() { kill -TERM "$pid" && wait "$pid"; }
run() { "$client" "$@" >"$tmp/client.log" 2>&1 || { cat "$tmp/client.log"; fail "service_client $1"; }; grep -v '^PASS' "$tmp/client.log"; }

# 1-5: one service, as a site would run it
start main --peers 0 --max-work 1e9 --max-message-bytes $((16 << 20))
run churn "$address" "$pid" mixed 6000 --slack-kib "$churn_slack"
run junk "$address" 2000
run noread "$address" 50000
run oversize "$address" "$pid" $((256 << 20)) --settle-ms 1000 --slack-kib "$return_slack"
run fairness "$address" 1000 100000 8
run cancel "$address" 1000 100000 8
run work "$address" 1000 1000000
grep -q "work: error reply too_large: kernel 'synthetic': the request's declared work of 2e+09 flops exceeds this receiver's maximum of 1e+09" \
  "$tmp/client.log" || fail "a request over --max-work was not refused as it should"
stop || fail "offload-serve exited $? after SIGTERM"
summary=$(grep -E "stopped by a signal|drained after" "$tmp/main.out") || fail "no summary on stdout"
echo "$summary"
grep -q "\[warning\]\|\[info\]" "$tmp/main.out" && fail "log lines on stdout"
dropped=$(echo "$summary" | sed -E 's/.*work_dropped ([0-9]+).*/\1/')
[ "$dropped" -ge 6 ] || fail "work_dropped $dropped: the cancelled burst's queued requests were not dropped"
junk_lines=$(grep "peer 6000 " "$tmp/main.err" | grep -v "more warning" | grep -c "malformed message from")
held=$(grep -c "more warning(s) about" "$tmp/main.err")
echo "junk: $junk_lines malformed messages logged one by one, $held count line(s), $(wc -l <"$tmp/main.err") lines on stderr in all"
[ "$junk_lines" -le 5 ] || fail "$junk_lines warnings logged for one client's junk (at most 5, then counted)"
[ "$held" -ge 1 ] || fail "the warnings held back were not reported"

# 3b. gRPC's memory bound
start quota --peers 0 --max-message-bytes $((16 << 20)) --grpc-memory $((64 << 20))
run oversize "$address" "$pid" $((256 << 20)) --settle-ms 1000 --slack-kib 1000000 --peak-kib "$quota_peak"
stop || fail "offload-serve (quota) exited $? after SIGTERM"

# 6. --peers counts served sessions only
start peers --peers 1
for kind in badhello cancelled silent; do
  run session "$address" "$kind"
  sleep 0.3
  kill -0 "$pid" 2>/dev/null || fail "a $kind session used up --peers 1: the service exited"
done
run session "$address" clean
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the service did not exit after its one served session"
wait "$pid" || fail "offload-serve --peers 1 exited $?"
grep -q "served every session .*handshake_failures 1, .*peers_finished 1," "$tmp/peers.out" ||
  fail "the --peers 1 summary is not 1 session served and 1 handshake failure"
echo "ok: --peers 1 outlived a failed handshake, a session cancelled after its hello and a silent stream"
echo "PASS: receiver service"
