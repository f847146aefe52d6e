#!/usr/bin/env bash
# events/s of examples/columnar, local against remote (KServe v2 to an offload-serve it starts;
# MPI with 1 receiver rank and 1 or 2 transmitter ranks), ROUNDS rounds with the modes
# interleaved; every remote run compared with the first local run's scores (bit for bit).
#   measure.sh BUILD_DIR EDGECONV_PLUGIN     env: EVENTS (10000) CHUNK (500) ROUNDS (2) THREADS (1) IN_FLIGHT (2)
set -euo pipefail
build=$(cd "$1" && pwd)
plugin=$2
here=$(cd "$(dirname "$0")" && pwd)
events=${EVENTS:-10000} chunk=${CHUNK:-500} rounds=${ROUNDS:-2} threads=${THREADS:-1} in_flight=${IN_FLIGHT:-2}
py=/usr/bin/python3
export PYTHONPATH=$build/python OFFLOAD_SERVE=$build/apps/offload-serve
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--plugin "$plugin" --events "$events" --chunk-events "$chunk" --threads "$threads" --in-flight "$in_flight")
mpi=(mpiexec --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo)
echo "examples/columnar: $events events in chunks of $chunk, $threads kernel thread(s), $in_flight in flight," \
  "$(nproc) cores, commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
printf '%-6s %-22s %10s %10s %14s %14s %s\n' round mode events/s jets/s "latency p50" "latency p90" "scores"
row() {  # round, label, output file
  local out=$3
  local eps jps p50 p90 dig cmp
  eps=$(sed -n 's/^throughput: \([0-9.]*\) events\/s, \([0-9.]*\) jets\/s.*/\1/p' "$out")
  jps=$(sed -n 's/^throughput: \([0-9.]*\) events\/s, \([0-9.]*\) jets\/s.*/\2/p' "$out")
  p50=$(sed -n 's/^latency per request.*median \([0-9.]*\) ms, p90.*/\1/p' "$out")
  p90=$(sed -n 's/^latency per request.*p90 \([0-9.]*\) ms over.*/\1/p' "$out")
  dig=$(sed -n 's/^scores: sha256 \([0-9a-f]*\).*/\1/p' "$out")
  cmp=$(sed -n 's/^compare: max |scores - [^|]*| = \([^ ]*\) over.*/max diff \1/p' "$out")
  printf '%-6s %-22s %10s %10s %11s ms %11s ms %s %s\n' "$1" "$2" "$eps" "$jps" "$p50" "$p90" "$dig" "$cmp"
}
for r in $(seq "$rounds"); do
  ref=()
  [ -f "$tmp/local.npy" ] && ref=(--compare "$tmp/local.npy") || ref=(--save "$tmp/local.npy")
  $py "$here/columnar.py" --mode local "${common[@]}" "${ref[@]}" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
  row "$r" local "$tmp/out"
  $py "$here/columnar.py" --mode kserve "${common[@]}" --compare "$tmp/local.npy" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
  row "$r" "kserve (offload-serve)" "$tmp/out"
  for np_ in 2 3; do
    "${mpi[@]}" -np $np_ $py "$here/columnar.py" --mode mpi "${common[@]}" --compare "$tmp/local.npy" >"$tmp/out" 2>&1 \
      || { cat "$tmp/out"; exit 1; }
    row "$r" "mpi 1 rx + $((np_ - 1)) tx" "$tmp/out"
  done
done
