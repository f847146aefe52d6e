#!/usr/bin/env bash
# A TorchScript model (tests/models/make_repository.py's mlp_ts: 16 -> 64 -> 64 -> 4) served
# from a Triton model repository, measured in one sitting (results/models.md):
#  1. the same events (1 transmitter, 1 in flight, ROWS rows each) with the model local in the
#     event loop, remote over MPI, remote over KServe v2 (offload-serve): events/s, round trip
#     p50/p99 (event time when local), digests;
#  2. what dynamic batching gains at 1, 4 and 16 transmitters (MPI, one receiver, 4 in flight
#     each): the repository's configuration without dynamic_batching (each request alone) against
#     with it (batches of up to max_batch_size rows within 500 us): events/s, round trip p50/p99,
#     mean batch.
# Usage: scripts/bench_models.sh [BUILD_DIR] [EVENTS] [ROWS]; prints markdown tables.
set -euo pipefail
build=${1:-build}
events=${2:-2000}
rows=${3:-16}
run=$build/apps/offload-run
serve=$build/apps/offload-serve
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe --mca btl self,vader,tcp)
/usr/bin/python3 "$(dirname "$0")/../tests/models/make_repository.py" "$tmp/batched" >/dev/null
cp -r "$tmp/batched" "$tmp/alone"
sed -i '/^dynamic_batching/d' "$tmp/alone/mlp_ts/config.pbtxt"
common=(--kernel mlp_ts --size "$rows" --events "$events" --warmup-events 100 --quiet)

"$run" --mode local --model-repository "$tmp/batched" "${common[@]}" --inflight 1 --threads 1 --json "$tmp/local.json" >/dev/null
"${mpi[@]}" -np 2 "$run" --receivers 1 --model-repository "$tmp/batched" "${common[@]}" --inflight 1 --threads 1 \
  --json "$tmp/mpi.json" >/dev/null
"$serve" --model-repository "$tmp/batched" --kserve 127.0.0.1:0 --port-file "$tmp/port" >"$tmp/serve.log" 2>&1 &
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.1; done
"$run" --transport kserve --connect "127.0.0.1:$(cat "$tmp/port")" --model-repository "$tmp/batched" "${common[@]}" \
  --inflight 1 --threads 1 --json "$tmp/kserve.json" >/dev/null
kill -TERM %1; wait %1 || true

for t in 1 4 16; do
  for mode in alone batched; do
    "${mpi[@]}" -np $((t + 1)) "$run" --receivers 1 --model-repository "$tmp/$mode" "${common[@]}" --inflight 4 \
      --threads 1 --json "$tmp/$mode-$t.json" >/dev/null
  done
done

python3 - "$tmp" "$rows" "$events" <<'PY'
import json, sys
tmp, rows, events = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name): return json.load(open(f"{tmp}/{name}.json"))["total"]
print(f"mlp_ts, {rows} rows per event, {events} events (after 100 warm-up), 1 transmitter x 1 thread, 1 in flight:\n")
print("| where the model runs | events/s | round trip p50 ms | p99 ms | digest |\n|---|---|---|---|---|")
for name, label in (("local", "local, in the event loop (event time)"), ("mpi", "remote over MPI"),
                    ("kserve", "remote over KServe v2 (gRPC)")):
    t = load(name)
    p50, p99 = (t["event_p50_ms"], t["event_p99_ms"]) if name == "local" else (t["round_trip_p50_ms"], t["round_trip_p99_ms"])
    print(f"| {label} | {t['events_per_s']:.0f} | {p50:.3f} | {p99:.3f} | {t['digest']} |")
print(f"\nDynamic batching over MPI, one receiver, each transmitter 1 thread x 4 in flight, {rows} rows per request:\n")
print("| transmitters | batching | events/s (all) | round trip p50 ms | p99 ms | mean batch (requests) | status |\n|---|---|---|---|---|---|---|")
for t in (1, 4, 16):
    for mode in ("alone", "batched"):
        d = load(f"{mode}-{t}")
        label = "none (each request alone)" if mode == "alone" else "dynamic_batching, 500 us"
        print(f"| {t} | {label} | {d['events_per_s']:.0f} | {d['round_trip_p50_ms']:.3f} | {d['round_trip_p99_ms']:.3f} "
              f"| {d['mean_batch_requests']:.2f} | {d['status']} |")
PY
