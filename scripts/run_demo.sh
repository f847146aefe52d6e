#!/usr/bin/env bash
# The demo: 1 receiver rank and 3 transmitter ranks on the mlp kernel, every result validated
# against the local CPU implementation; rank 0 prints the summary. Extra arguments go to
# offload-run (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
source scripts/env.sh
build=build
[ "${OFFLOAD_PRESET:-default}" = default ] || build=build-${OFFLOAD_PRESET}
exec mpirun -np 4 "$build/apps/offload-run" --receivers 1 --kernel mlp --events 2000 --threads 2 --inflight 8 \
  --validate "$@"
