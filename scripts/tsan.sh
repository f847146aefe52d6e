#!/usr/bin/env bash
# ThreadSanitizer on the threaded core (preset tsan): the work queues and buffer pool (unit
# tests), then transmitters, receivers and progress threads on real ranks: one-to-one,
# many-to-one, batching, the transmitter API from many threads, timeouts and fallbacks, a
# vanished transmitter and the limits; then the gRPC transport's completion-queue threads
# against the progress threads (1->1, 3->1, batching, the API, timeouts, limits, rogue
# clients, offload-serve with a killed service). (mpi.faults is left out: its faults are timed for an
# uninstrumented build, and under TSan they land before the run starts.) Suppressions cover the internals of Open MPI,
# gRPC and Abseil only (tests/sanitizers/tsan.supp). Extra arguments go to ctest.
#   scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OFFLOAD_PRESET=tsan scripts/build.sh >/dev/null
source scripts/env.sh
# halt_on_error: a race fails the test at once. history_size: longer stacks for the second access.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$PWD/tests/sanitizers/tsan.supp}
ctest --preset tsan -R "unit.common|unit.transmitter|mpi.one_to_one$|mpi.three_to_one|mpi.batching|mpi.transmitter_api|mpi.timeout_fallback|mpi.vanished_transmitter|mpi.limits|mpi.wait_policy_block|grpc.one_to_one$|grpc.three_to_one|grpc.batching|grpc.transmitter_api|grpc.timeout_fallback|grpc.limits|grpc.rogue|grpc.serve" "$@"
