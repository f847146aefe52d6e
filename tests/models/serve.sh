#!/usr/bin/env bash
# A Triton model repository of TorchScript models (tests/models/make_repository.py), served:
#  1. offload-serve --model-repository --kserve: a KServe v2 client (client.py) gets metadata,
#     configuration and Python's own answer; a bad request gets a clear status, the service stays up;
#  2. offload-run over MPI with --validate: unbatched (1 receiver, 1 transmitter), its digest
#     equal to the same events run locally (the model as the transmitter's own kernel); batched by
#     the model's dynamic_batching (1 receiver, 2 transmitters);
#  3. the receiver unreachable: every event completes on the transmitter's copy of the model.
#   serve.sh OFFLOAD_SERVE OFFLOAD_RUN PROTO_DIR PYTHON REPOSITORY MPIEXEC [MPIEXEC ARGS...]
set -u
serve=$1
run=$2
proto=$3
python=$4
repo=$5
mpiexec=("${@:6}")
tmp=$(mktemp -d)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do echo "--- $f"; cat "$f"; done; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$repo/mlp_ts/1/model.pt" ] || { echo "SKIP: no model repository at $repo (python3-torch missing?)"; exit 77; }
source "$here/../kserve/common.sh"
make_stubs "$tmp" "$proto" "$python"
digest() { "$python" -c "import json, sys; print(json.load(open(sys.argv[1]))['total']['digest'])" "$1"; }

# 1. KServe v2
"$serve" --model-repository "$repo" --kserve 127.0.0.1:0 --port-file "$tmp/port" >"$tmp/serve.log" 2>&1 &
service=$!
pids+=("$service")
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || fail "offload-serve wrote no port file"
grep -q "kernels: .*edgeconv_ts, .*mlp_named, mlp_ts" "$tmp/serve.log" || fail "offload-serve does not list the models as kernels"
timeout -s KILL 120 "$python" "$here/client.py" --address "127.0.0.1:$(cat "$tmp/port")" --stubs "$tmp" \
  --repository "$repo" >"$tmp/client.log" 2>&1 || fail "the KServe client's checks failed"
cat "$tmp/client.log"
kill -TERM "$service"
wait "$service" || fail "offload-serve exited $? on SIGTERM"

# 2. over MPI: mlp_named (no batching) against the local run's digest; mlp_ts in dynamic batches
#    (its configuration's), validated (a joined batch's sums may differ from a lone request's in
#    the last bits: libtorch's blocking depends on the rows, so no digest there)
named=(--model-repository "$repo" --kernel mlp_named --events 200 --quiet)
timeout -s KILL 120 "$run" --mode local "${named[@]}" --json "$tmp/local.json" >"$tmp/local.log" 2>&1 ||
  fail "the local run failed"
timeout -s KILL 180 "${mpiexec[@]}" -np 2 "$run" --receivers 1 "${named[@]}" --validate --json "$tmp/mpi.json" \
  >"$tmp/mpi.log" 2>&1 || fail "the MPI run exited $?"
grep -q "^status: ok" "$tmp/mpi.log" && grep -qE "all +200 .* 200 +0 +0$" "$tmp/mpi.log" ||
  fail "the MPI run did not give 200 validated remote results"
[ "$(digest "$tmp/mpi.json")" = "$(digest "$tmp/local.json")" ] || fail "the MPI run's digest differs from the local run's"
echo "ok: mlp_named over MPI: 200 validated remote results, the local run's digest"
batched=(--model-repository "$repo" --kernel mlp_ts --size 8 --events 200 --quiet)
timeout -s KILL 180 "${mpiexec[@]}" -np 3 "$run" --receivers 1 "${batched[@]}" --validate --inflight 8 \
  >"$tmp/batched.log" 2>&1 || fail "the batched MPI run exited $?"
grep -q "^status: ok" "$tmp/batched.log" && grep -qE "all +400 .* 400 +0 +0$" "$tmp/batched.log" ||
  fail "the batched MPI run did not give 400 validated remote results"
batches=$(grep -oE "mean batch [0-9.]+ requests" "$tmp/batched.log" | grep -oE "[0-9.]+")
"$python" -c "import sys; sys.exit(0 if float(sys.argv[1]) > 1 else 1)" "${batches:-0}" ||
  fail "mlp_ts's dynamic batching formed no batch of several requests (mean ${batches:-?})"
echo "ok: mlp_ts over MPI in dynamic batches (mean $batches requests): 400 validated remote results"
timeout -s KILL 180 "${mpiexec[@]}" -np 3 "$run" --receivers 1 --model-repository "$repo" --kernel edgeconv_ts --size 4 \
  --events 60 --validate --quiet >"$tmp/edgeconv.log" 2>&1 || fail "the EdgeConv MPI run exited $?"
grep -q "^status: ok" "$tmp/edgeconv.log" && grep -qE "all +120 .* 120 +0 +0$" "$tmp/edgeconv.log" ||
  fail "edgeconv_ts over MPI did not give 120 validated remote results"
echo "ok: edgeconv_ts (two inputs, a reshape) over MPI: 120 validated remote results"

# 3. no receiver: the transmitter's own copy of the model
timeout -s KILL 120 "$run" --transport grpc --connect 127.0.0.1:9 "${named[@]}" --json "$tmp/fallback.json" \
  >"$tmp/fallback.log" 2>&1 || fail "the run without a receiver exited $?"
grep -q "^status: ok" "$tmp/fallback.log" && grep -qE "all +200 .* 0 +200 +0$" "$tmp/fallback.log" ||
  fail "without a receiver, not 200 events by the local fallback"
[ "$(digest "$tmp/fallback.json")" = "$(digest "$tmp/local.json")" ] || fail "the fallback run's digest differs"
echo "ok: no receiver: 200 events on the transmitter's copy of the model, the same digest"
echo "PASS: a TorchScript model repository served over KServe v2 and MPI, with its local fallback"
