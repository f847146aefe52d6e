#!/usr/bin/env bash
# The MPI receiver service under the two conditions where it misbehaved (issue 31,
# results/reliability.md §7 and "What is known not to survive"), run either by Open MPI alone
# (scripts/repro/ompi_service.cpp: the MPI calls of our service and nothing else) or by
# offload-run, the same way, so that what Open MPI 4.1 does is told from what we do. Not part of
# the suite.
#   ompi_service.sh growth JOBS [OFFLOAD_RUN]    one service, JOBS client jobs of 2 ranks x 20
#       echoes of 64 KiB one after another; the service's resident memory per job
#   ompi_service.sh killed TRIALS [OFFLOAD_RUN]  TRIALS times: a fresh service (idle drop 2 s), a
#       client job of 2 ranks sending 1 MB echoes whose rank 0 is SIGKILLed after 1.5 s (its
#       mpirun then ends the other), then a next job and a stop (tests/mpi/faults.sh case 4);
#       KILLED_BYTES sets the echoes' size (default 1000000); KILLED_QUIET=1 kills it while
#       nothing is in flight instead (connected, then waiting: offload-run in 60 s of CPU work
#       before its first request, the harness in a receive nobody sends to). A service that hangs has its
#       threads' stacks taken with gdb (when there) before it is killed: the frames of Open
#       MPI's TCP BTL are printed.
# Without OFFLOAD_RUN the harness is built with mpicxx into a temporary folder.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../tests/mpi/rank_pid.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'pkill -KILL -P $$ 2>/dev/null; rm -rf "$tmp"' EXIT
mode=${1:-}
count=${2:-}
run=${3:-}
if [ -n "$run" ]; then
  [ -x "$run" ] || { echo "ompi_service.sh: $run is not an executable" >&2; exit 2; }
  what="offload-run ($run)"
  name=$(basename "$run")
  serve() { echo "$run" --serve --port-file "$1/port" --idle-timeout-ms 2000; }
  client() {
    if [ "$2" -lt 0 ]; then
      echo "$run" --connect --port-file "$1/port" --kernel echo --size 1000 --events 2 --threads 1 --cpu-before-ms 60000 --quiet
    else
      echo "$run" --connect --port-file "$1/port" --kernel echo --size "$3" --events "$2" --quiet
    fi
  }
  stop() { echo "$run" --stop --port-file "$1/port"; }
else
  name=ompi_service
  bin=$tmp/$name
  mpicxx -DOMPI_SKIP_MPICXX=1 -std=c++20 -O2 -o "$bin" "$here/ompi_service.cpp" || exit 2
  what="Open MPI alone (scripts/repro/ompi_service.cpp)"
  serve() { echo "$bin" serve "$1/port" 2000; }
  client() { echo "$bin" client "$1/port" "$2" "$3"; }
  stop() { echo "$bin" stop "$1/port"; }
fi
mpirun=(mpirun --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo)

start_service() {  # start_service DIR: ompi-server and the service in DIR; the service's rank pid
  ompi-server --no-daemonize --report-uri "$1/uri" >"$1/ompi-server.log" 2>&1 &
  echo $! >"$1/ompi-server.pid"
  for _ in $(seq 100); do [ -s "$1/uri" ] && break; sleep 0.1; done
  # shellcheck disable=SC2046
  "${mpirun[@]}" --ompi-server "file:$1/uri" -np 1 $(serve "$1") >"$1/serve.log" 2>&1 &
  echo $! >"$1/serve.pid"
  for _ in $(seq 300); do [ -s "$1/port" ] && break; sleep 0.1; done
  rank_pid "$(cat "$1/serve.pid")" 0 "$name" >"$1/rank.pid"
}
job() {  # job DIR SECONDS NP MESSAGES BYTES: one client job under a timeout
  # shellcheck disable=SC2046
  timeout -s KILL "$2" "${mpirun[@]}" --ompi-server "file:$1/uri" -np "$3" $(client "$1" "$4" "$5")
}
finish() {  # finish DIR: stop the service (30 s at most), wait 10 s for it; its status in $status
  local pid result=0
  # shellcheck disable=SC2046
  timeout -s KILL 30 "${mpirun[@]}" --ompi-server "file:$1/uri" -np 1 $(stop "$1") >"$1/stop.log" 2>&1 || result=stop
  pid=$(cat "$1/serve.pid")
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    if command -v gdb >/dev/null; then
      gdb -p "$(cat "$1/rank.pid")" -batch -ex "thread apply all bt 20" >"$1/stacks" 2>/dev/null
      # The thread inside the TCP BTL, innermost frames first: what it waits for and how it got there.
      awk -v RS= '/mca_btl_tcp/' "$1/stacks" |
        grep -oE "(__GI___lll_lock_wait|pthread_mutex_lock|mca_[a-z_0-9]+|opal_progress|ompi_request_[a-z_]+|PMPI_[A-Za-z_]+|offload::[A-Za-z_:]+|serve_job)" |
        awk '!seen[$0]++' | paste -sd' ' | sed 's/^/    hung thread: /' >"$1/hung"
    fi
    kill -KILL "$pid"
    result=hung
  fi
  wait "$pid" 2>/dev/null
  local rc=$?
  [ "$result" = 0 ] && result=$rc
  kill "$(cat "$1/ompi-server.pid")" 2>/dev/null
  status=$result
}

case $mode in
growth)
  jobs=${count:-200}
  start_service "$tmp"
  pid=$(cat "$tmp/rank.pid")
  : >"$tmp/rss"
  for j in $(seq "$jobs"); do
    job "$tmp" 60 2 20 65536 >>"$tmp/clients.log" 2>&1 || { echo "growth: client job $j failed"; tail "$tmp/clients.log"; exit 1; }
    echo "$j $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")" >>"$tmp/rss"
  done
  finish "$tmp"
  python3 - "$tmp/rss" "$what" "$status" <<'PY'
import sys
rss = dict(tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 2)
n = max(rss); first = max(1, n // 10)
marks = " ".join(f"{rss[j]}" for j in sorted({first, n // 4, n // 2, 3 * n // 4, n}))
print(f"growth: {sys.argv[2]}, {n} jobs of 2 ranks x 20 echoes of 64 KiB: service RSS {rss[1]} KiB after job 1; "
      f"after jobs {first}, {n // 4}, {n // 2}, {3 * n // 4}, {n}: {marks} KiB; "
      f"{(rss[n] - rss[first]) / (n - first):.1f} KiB per job after job {first}; service exit: {sys.argv[3]}")
PY
  ;;
killed)
  trials=${count:-10}
  declare -A outcome
  for t in $(seq "$trials"); do
    d=$tmp/$t
    mkdir -p "$d"
    start_service "$d"
    if [ "${KILLED_QUIET:-0}" = 1 ]; then
      job "$d" 120 2 -1 0 >"$d/doomed.log" 2>&1 &
    else
      job "$d" 120 2 100000 "${KILLED_BYTES:-1000000}" >"$d/doomed.log" 2>&1 &
    fi
    doomed=$!
    victim=$(rank_pid $doomed 0 "$name")
    sleep 1.5  # mid-run: the fault must land while messages are in flight
    kill -KILL "$victim"
    wait $doomed
    result=ok
    job "$d" 60 2 10 1000 >"$d/next.log" 2>&1 || result="next job failed ($?)"
    finish "$d"
    [ "$status" = 0 ] || result="$result; service: $status"
    [ "$result" = "ok; service: 0" ] && result=ok
    note=$(grep -m1 -E "show_help|ORTE_ERROR" "$d/serve.log")
    echo "killed: trial $t: $result; $(grep -c "dropping it" "$d/serve.log") rank(s) dropped${note:+; $note}"
    [ -s "$d/hung" ] && cat "$d/hung"
    outcome[$result]=$((${outcome[$result]:-0} + 1))
  done
  for k in "${!outcome[@]}"; do
    echo "killed: $what, $(if [ "${KILLED_QUIET:-0}" = 1 ]; then echo "killed while quiet"; else
      echo "killed mid-run, echoes of ${KILLED_BYTES:-1000000} B"; fi): ${outcome[$k]} of $trials: $k"
  done
  ;;
*)
  echo "usage: ompi_service.sh growth JOBS [OFFLOAD_RUN] | killed TRIALS [OFFLOAD_RUN]" >&2
  exit 2
  ;;
esac
