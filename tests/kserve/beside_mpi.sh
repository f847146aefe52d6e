#!/usr/bin/env bash
# One receiver rank of an MPI job serves its job's MPI transmitters and, beside them, a KServe
# v2 client (offload-run --transport kserve, another process): both validated, one scheduler.
#   beside_mpi.sh OFFLOAD_RUN MPIEXEC [MPIEXEC ARGS...]
set -u
run=$1
shift
mpiexec=("$@")
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; tail -30 "$f"; done; exit 1; }
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
# The job: 1 receiver rank, 2 transmitter ranks, paced so that it outlasts the KServe client.
"${mpiexec[@]}" -np 3 "$run" --receivers 1 --kserve "127.0.0.1:$port" --kernel mlp --events 2000 --cpu-before-ms 10 \
  --cpu-work emulated --validate --json "$tmp/job.json" >"$tmp/job.log" 2>&1 &
job=$!
pids+=("$job")
for _ in $(seq 300); do grep -q "serving KServe v2 clients on 127.0.0.1:$port" "$tmp/job.log" && break; sleep 0.1; done
grep -q "serving KServe v2 clients on 127.0.0.1:$port" "$tmp/job.log" || fail "the receiver rank did not say it serves KServe"
timeout -s KILL 120 "$run" --transport kserve --connect "127.0.0.1:$port" --kernel mlp --events 200 --validate \
  >"$tmp/client.log" 2>&1 || fail "the KServe client exited $?"
grep -qE "all +200 .* 200 +0 +0$" "$tmp/client.log" && grep -q "^status: ok" "$tmp/client.log" ||
  fail "the KServe client did not get 200 validated remote results"
kill -0 "$job" 2>/dev/null || fail "the job ended before the KServe client was done (the check needs them together)"
wait "$job" || fail "the MPI job exited $?"
grep -qE "all +4000 .* 4000 +0 +0$" "$tmp/job.log" && grep -q "^status: ok" "$tmp/job.log" ||
  fail "the job's transmitters did not get 4000 validated remote results"
python3 - "$tmp/job.json" <<'PY' || fail "the receiver did not serve both"
import json, sys
rx = [r for r in json.load(open(sys.argv[1]))["ranks"] if r["role"] == "receiver"][0]
print(f"receiver rank: {rx['requests']} requests (4000 of its job's MPI transmitters, 200 of the KServe client)")
assert rx["requests"] >= 4200, rx["requests"]
PY
echo "PASS: a KServe client beside MPI transmitters on one receiver"
