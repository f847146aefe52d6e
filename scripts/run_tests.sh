#!/usr/bin/env bash
# Bootstrap, build, and run the whole test suite (unit, MPI integration, install, GPU — the
# GPU tests skip with their reason where there is no GPU). Tests run one at a time: the MPI
# cases already use more ranks than our 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
source scripts/env.sh
preset=${OFFLOAD_PRESET:-default}
ctest --preset "$preset" "$@"
