#!/usr/bin/env bash
# Faults injected into real runs; every event must still complete with the right result (the
# digest of a --mode local run of the same events, and --validate), each fault counted.
#   faults.sh OFFLOAD_RUN MPIEXEC [MPIEXEC ARGS...]
# 1. stopped receiver: one of two receivers gets SIGSTOP mid-run and SIGCONT 2 s later.
# 2. stopped sole receiver: the only receiver is stopped; events go to the CPU fallback.
# 3. killed receiver service (only with OFFLOAD_FAULTS_KILL_SERVICE=1, not in CI): the receivers
#    run as a separate job (--serve) that is killed (SIGKILL) mid-run; the transmitter job must
#    complete and report every event. With Open MPI 4.1 this does not always hold: in 2 of 6
#    runs here the transmitter job hung after its TCP BTL failed to connect to the dead job
#    (once after its report, once before it): results/reliability.md.
# 4. killed transmitter job: a transmitter of a job connected to a receiver service is killed
#    (SIGKILL; its mpirun then ends the whole job); the service drops the job's ranks after its
#    idle timeout, reclaims their credits, and serves the next job. The job is killed between
#    requests (said hello, then in CPU work): killed with messages in flight, Open MPI 4.1's TCP
#    BTL can deadlock the service on its own endpoint lock, with or without our code
#    (scripts/repro/ompi_service.sh killed: 2 hangs in 10 for Open MPI alone; results/reliability.md).
# Prints "FAULTS: ..." lines with the counts (results/reliability.md quotes them).
set -u
run=$1
shift
mpiexec=("$@")
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
here=$(dirname "$0")
# The events of every case: about 5 s of work per transmitter rank, so a fault lands mid-run.
events=(--kernel mlp --events 500 --threads 2 --inflight 4 --cpu-before-ms 5 --seed 11 --quiet)

source "$here/rank_pid.sh"  # rank_pid JOB RANK: the pid of offload-run rank RANK under the process JOB

# local_digest TRANSMITTERS: the digest of the same events run inline by as many ranks.
local_digest() {
  timeout -s KILL 120 "${mpiexec[@]}" -np "$1" "$run" --mode local "${events[@]}" 2>&1 |
    sed -n 's/^digest: //p'
}

# check NAME JSON DIGEST EXPECTED_EVENTS EXPR...: status ok, no errors, the local digest, every
# event, and each EXPR.
check() {
  local name=$1 json=$2 digest=$3 expected=$4
  shift 4
  [ -s "$json" ] || { bad "$name: no report"; return; }
  python3 "$here/json_check.py" "$json" "d['total']['status'] == 'ok'" "d['total']['errors'] == 0" \
    "d['total']['digest'] == '$digest'" "d['total']['events'] == $expected" "$@" || bad "$name: a check failed"
  python3 - "$json" "$name" "$expected" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); t = d['total']; f = {k[7:]: v for k, v in t.items() if k.startswith('faults_')}
print(f"FAULTS: {sys.argv[2]}: events {t['events']}, remote {t['remote']}, fallbacks {t['fallbacks']} "
      f"(timeout {f['fallback_timeout']}, error {f['fallback_error']}, no receiver {f['fallback_no_receiver']}), "
      f"late replies {f['late_replies']}, receivers set aside {f['suspensions']}, errors {t['errors']}, "
      f"lost {int(sys.argv[3]) - t['remote'] - t['fallbacks'] + t['errors']}")
EOF
}

# ---- 1 and 2: SIGSTOP / SIGCONT of a receiver in one job ----
stop_case() {  # stop_case NAME NP RECEIVERS
  local name=$1 np=$2 receivers=$3
  local want
  want=$(local_digest $((np - receivers)))
  [ -n "$want" ] || { bad "$name: the local run failed"; return; }
  timeout -s KILL 150 "${mpiexec[@]}" -np "$np" "$run" --receivers "$receivers" "${events[@]}" --validate \
    --timeout-ms 300 --json "$tmp/$name.json" >"$tmp/$name.log" 2>&1 &
  local job=$!
  local victim
  victim=$(rank_pid $job $((receivers - 1))) || { bad "$name: receiver rank $((receivers - 1)) not found"; wait $job; return; }
  pids+=("$victim")
  sleep 1.5  # let the run get going: the fault must land mid-run
  kill -STOP "$victim" && echo "$name: SIGSTOP receiver rank $((receivers - 1)) (pid $victim)"
  sleep 2
  kill -CONT "$victim" && echo "$name: SIGCONT"
  wait $job
  local rc=$?
  grep -vE "CUDA|did not answer" "$tmp/$name.log" | tail -n 4
  [ $rc -eq 0 ] || { bad "$name: exited $rc"; cat "$tmp/$name.log"; return; }
  check "$name" "$tmp/$name.json" "$want" $(((np - receivers) * 500)) "d['total']['faults_suspensions'] >= 1" \
    "d['total']['faults_fallback_timeout'] + d['total']['faults_fallback_no_receiver'] >= 1"
}
stop_case stopped_receiver 4 2
python3 "$here/json_check.py" "$tmp/stopped_receiver.json" "d['ranks'][0]['requests'] > d['ranks'][1]['requests']" ||
  bad "stopped_receiver: the running receiver did not take over"
stop_case stopped_sole_receiver 3 1

# ---- 3: the receiver service (a separate job) is killed ----
ompi-server --no-daemonize --report-uri "$tmp/uri" >"$tmp/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -s "$tmp/uri" ] && break; sleep 0.1; done
mpi=("${mpiexec[@]}" --ompi-server "file:$tmp/uri")
if [ "${OFFLOAD_FAULTS_KILL_SERVICE:-0}" != 1 ]; then
  echo "killed_service: not run (set OFFLOAD_FAULTS_KILL_SERVICE=1: Open MPI 4.1 sometimes hangs there)"
else
  "${mpi[@]}" -np 1 "$run" --serve --port-file "$tmp/port" >"$tmp/rx.log" 2>&1 &
  rx_job=$!
  for _ in $(seq 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  [ -s "$tmp/port" ] || bad "killed_service: the receiver service wrote no port file: $(cat "$tmp/rx.log")"
  want=$(local_digest 2)
  timeout -s KILL 150 "${mpi[@]}" -np 2 "$run" --connect --port-file "$tmp/port" "${events[@]}" --validate \
    --timeout-ms 300 --json "$tmp/killed.json" >"$tmp/killed.log" 2>&1 &
  tx_job=$!
  victim=$(rank_pid $rx_job 0)
  sleep 1.5
  kill -KILL "$victim" && echo "killed_service: SIGKILL the receiver service (pid $victim)"
  # Every event must complete and be reported. The job's exit may then hang in Open MPI's
  # teardown (MPI_Comm_disconnect/MPI_Finalize wait for a send to the dead job that never
  # completes; seen in 1 of 4 runs here, results/reliability.md): give it 30 s after the report.
  for _ in $(seq 1200); do [ -s "$tmp/killed.json" ] || ! kill -0 $tx_job 2>/dev/null && break; sleep 0.1; done
  for _ in $(seq 300); do kill -0 $tx_job 2>/dev/null || break; sleep 0.1; done
  if kill -0 $tx_job 2>/dev/null; then
    echo "killed_service: NOTE: the transmitter job wrote its report but hung in MPI teardown; ending it"
    kill -TERM $tx_job  # timeout passes it to mpirun, which ends its ranks
  fi
  wait $tx_job
  rc=$?
  wait $rx_job 2>/dev/null
  grep -vE "CUDA|did not answer" "$tmp/killed.log" | tail -n 4
  if [ ! -s "$tmp/killed.json" ]; then
    bad "killed_service: the transmitter job exited $rc without a report"
    cat "$tmp/killed.log"
  else
    [ $rc -eq 0 ] || echo "killed_service: the transmitter job exited $rc after its report"
    check killed_service "$tmp/killed.json" "$want" 1000 "d['total']['fallbacks'] >= 1"
  fi
fi

# ---- 4: a transmitter job connected to the service is killed ----
"${mpi[@]}" -np 1 "$run" --serve --port-file "$tmp/port4" --idle-timeout-ms 2000 >"$tmp/rx4.log" 2>&1 &
rx_job=$!
for _ in $(seq 300); do [ -s "$tmp/port4" ] && break; sleep 0.1; done
timeout -s KILL 150 "${mpi[@]}" -np 2 "$run" --connect --port-file "$tmp/port4" --kernel echo --size 1000 \
  --events 2 --threads 1 --cpu-before-ms 60000 --quiet >"$tmp/doomed.log" 2>&1 &
doomed=$!
victim=$(rank_pid $doomed 0)
# Connected and handshaken (the service logs the session), then in its first event's 60 s of CPU work.
for _ in $(seq 100); do grep -q "session 1:" "$tmp/rx4.log" && break; sleep 0.1; done
sleep 0.5
kill -KILL "$victim" && echo "killed_transmitter: SIGKILL transmitter rank 0 (pid $victim)"
wait $doomed
out=$(timeout -s KILL 120 "${mpi[@]}" -np 2 "$run" --connect --port-file "$tmp/port4" --kernel mlp --events 100 \
  --validate --quiet 2>&1)
echo "$out" | grep -E "^ +all|^status" | sed "s/^/killed_transmitter: next job: /"
echo "$out" | grep -Eq "^ +all +200 .* 200 +0 +0$" || bad "killed_transmitter: the next job was not served: $out"
timeout -s KILL 60 "${mpi[@]}" -np 1 "$run" --stop --port-file "$tmp/port4" >/dev/null 2>&1 || bad "killed_transmitter: --stop failed"
wait $rx_job || bad "killed_transmitter: the service exited $?"
grep -E "dropping it|session [0-9]+ .* done|served" "$tmp/rx4.log" | sed "s/^/killed_transmitter: /"
dropped=$(grep -c "dropping it" "$tmp/rx4.log")
[ "$dropped" -eq 2 ] || bad "killed_transmitter: the service dropped $dropped transmitters, expected 2"
grep -q "served 2 session(s)" "$tmp/rx4.log" || bad "killed_transmitter: the service did not serve 2 sessions"
echo "FAULTS: killed_transmitter: $dropped transmitter ranks dropped after the idle timeout, the service served the next job"

[ $fail -eq 0 ] && echo "PASS: every event completed correctly through every fault"
exit $fail
