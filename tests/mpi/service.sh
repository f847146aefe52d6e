#!/usr/bin/env bash
# Receivers as a service, transmitters as separate jobs: one receiver job (--serve, with a port
# file and a published name), then two transmitter jobs one after the other (by port file, then
# by name), each validated; the receiver must still be up after each; then a --stop job, after
# which the receiver job ends cleanly, having served both sessions. Every mpirun gets the same
# ompi-server, which Open MPI needs to connect jobs of different mpiruns.
#   service.sh OFFLOAD_RUN MPIEXEC [ARGS...]
set -u
run=$1
shift
mpiexec=("$@")
tmp=$(mktemp -d)
server_pid="" rx_pid=""
cleanup() {
  [ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/rx.log" ] && { echo "--- receiver job:"; cat "$tmp/rx.log"; }; exit 1; }
wait_for() {  # wait_for FILE SECONDS
  for _ in $(seq $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done
  return 1
}

ompi-server --no-daemonize --report-uri "$tmp/uri" >"$tmp/server.log" 2>&1 &
server_pid=$!
wait_for "$tmp/uri" 20 || fail "ompi-server did not start: $(cat "$tmp/server.log")"
mpi=("${mpiexec[@]}" --ompi-server "file:$tmp/uri")

"${mpi[@]}" -np 1 "$run" --serve --port-file "$tmp/port" --service-name offload-test-service --metrics 127.0.0.1:0 \
  >"$tmp/rx.log" 2>&1 &
rx_pid=$!
wait_for "$tmp/port" 30 || fail "the receiver service wrote no port file"
echo "receiver service up: $(head -c 60 "$tmp/port")..."

job() {  # job NAME NP EXPECT_ALL args...: a transmitter job that must validate every event
  local name=$1 np=$2 expect=$3
  shift 3
  local out
  out=$(timeout -s KILL 120 "${mpi[@]}" -np "$np" "$run" --connect "$@" --validate --quiet 2>&1)
  local rc=$?
  echo "$out" | grep -E "^ +all|^status|receiver|error" | sed "s/^/$name: /"
  [ $rc -eq 0 ] || fail "$name exited $rc: $out"
  echo "$out" | grep -Eq "^ +all +$expect .* $expect +0 +0$" || fail "$name: not every event came back validated"
  kill -0 "$rx_pid" 2>/dev/null || fail "the receiver service died during $name"
}
job "job 1 (port file)" 2 200 --port-file "$tmp/port" --kernel mlp --events 100
job "job 2 (name server)" 3 150 --service-name offload-test-service --kernel clustering --events 50

# --metrics: scraped now, equal to the receiver's summary at exit (Debian's python3 has the parser)
metrics_url=$(sed -n 's/^receiver rank 0: metrics and health on \(http:[^ ]*\)$/\1/p' "$tmp/rx.log")
[ -n "$metrics_url" ] || fail "the receiver rank did not say where its metrics are"
python3 -c "import sys, urllib.request; open(sys.argv[2], 'w').write(urllib.request.urlopen(sys.argv[1]).read().decode())" \
  "$metrics_url" "$tmp/metrics.txt" || fail "no /metrics at $metrics_url"
timeout -s KILL 60 "${mpi[@]}" -np 1 "$run" --stop --port-file "$tmp/port" || fail "the stop job failed"
for _ in $(seq 300); do kill -0 "$rx_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$rx_pid" 2>/dev/null && fail "the receiver service did not stop"
wait "$rx_pid"
rc=$?
rx_pid=""
cat "$tmp/rx.log"
[ $rc -eq 0 ] || fail "the receiver job exited $rc"
grep -q "session 1 (2 transmitter(s)) done: requests 200, replies 200, .*error_replies 0," "$tmp/rx.log" ||
  fail "session 1 not served as expected"
grep -q "session 2 (3 transmitter(s)) done: requests 150, replies 150, .*error_replies 0," "$tmp/rx.log" ||
  fail "session 2 not served as expected"
grep -q "served 2 session(s)" "$tmp/rx.log" || fail "the receiver did not report 2 sessions"
[ ! -e "$tmp/port" ] || fail "the port file was left behind"
if /usr/bin/python3 -c "import prometheus_client" 2>/dev/null; then
  /usr/bin/python3 "$(dirname "$0")/../grpc/check_metrics.py" "$tmp/metrics.txt" "$tmp/rx.log" ||
    fail "the receiver's /metrics do not match its summary"
else
  echo "metrics: not compared (no prometheus_client in /usr/bin/python3: apt-get install python3-prometheus-client)"
fi
echo "PASS: receiver service served 2 transmitter jobs and stopped"
