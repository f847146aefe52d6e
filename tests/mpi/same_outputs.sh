#!/usr/bin/env bash
# The same events give the same outputs whatever runs them: --mode local, --mode remote with
# one receiver, and two receivers with batching and other thread counts must print the same
# digest (a hash of every event's outputs and CPU-work results); another seed must not.
#   same_outputs.sh [--plugin PATH]... [--workload "FLAGS"]... OFFLOAD_RUN MPIEXEC [MPIEXEC ARGS...]
# --workload: the cases to run (default: miniaod, mlp and clustering); --plugin: for every run.
set -u
common=(--ns-per-iteration 3 --quiet)
workloads=()
while [ $# -gt 0 ]; do
  case "$1" in
    --plugin) common+=(--plugin "$2"); shift 2 ;;
    --workload) workloads+=("$2"); shift 2 ;;
    *) break ;;
  esac
done
[ ${#workloads[@]} -gt 0 ] || workloads=("--workload miniaod --time-scale 0.01 --events 24"
  "--workload single --kernel mlp --events 60" "--workload single --kernel clustering --events 30")
run=$1
shift
mpiexec=("$@")
digest() {  # digest NP ARGS...: runs offload-run, prints its digest line's value
  local np=$1
  shift
  local out
  out=$(timeout -s KILL 120 "${mpiexec[@]}" -np "$np" "$run" "${common[@]}" "$@" 2>&1)
  local rc=$?
  if [ $rc -ne 0 ] || ! grep -q "^status: ok" <<<"$out"; then
    echo "FAIL: offload-run $* exited $rc:" >&2
    echo "$out" >&2
    echo "failed"
    return
  fi
  sed -n 's/^digest: //p' <<<"$out"
}
fail=0
check() {  # check NAME EXPECTED ACTUAL
  echo "$1: $3"
  [ "$3" != failed ] && [ "$2" = "$3" ] || { echo "FAIL: $1 differs from local ($2)"; fail=1; }
}
for wl in "${workloads[@]}"; do
  echo "== $wl"
  # shellcheck disable=SC2086
  local_digest=$(digest 2 --mode local --seed 7 $wl)
  echo "local: $local_digest"
  [ "$local_digest" != failed ] || fail=1
  # shellcheck disable=SC2086
  check "remote, 1 receiver" "$local_digest" "$(digest 3 --receivers 1 --seed 7 --validate $wl)"
  # shellcheck disable=SC2086
  check "remote, 2 receivers, batched" "$local_digest" \
    "$(digest 4 --receivers 2 --routing least_outstanding --max-batch 4 --max-wait-us 500 --threads 3 --inflight 5 --seed 7 $wl)"
  # shellcheck disable=SC2086
  other=$(digest 2 --mode local --seed 8 $wl)
  echo "local, another seed: $other"
  if [ "$other" = failed ] || [ "$other" = "$local_digest" ]; then echo "FAIL: another seed gave the same digest"; fail=1; fi
done
[ $fail -eq 0 ] && echo "PASS: same outputs in every mode"
exit $fail
