#!/usr/bin/env bash
# Bootstrap, configure (preset "default" unless OFFLOAD_PRESET says otherwise) and build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
preset=${OFFLOAD_PRESET:-default}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
