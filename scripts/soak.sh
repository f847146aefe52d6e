#!/usr/bin/env bash
# The soak: 10^6 echo requests from 3 transmitters to 1 receiver, every result validated, under
# AddressSanitizer and UndefinedBehaviorSanitizer (preset asan); resident memory must not grow
# after warm-up (tests/mpi/check_soak.py). Not part of CI (about an hour on 2 cores);
# mpi.soak_short is its short version.
#   scripts/soak.sh [TOTAL_REQUESTS (1000000)] [PRESET (asan)]
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-1000000}
preset=${2:-asan}
OFFLOAD_PRESET=$preset scripts/build.sh >/dev/null
source scripts/env.sh
build=build
[ "$preset" = default ] || build=build-$preset
# A small quarantine: ASan otherwise keeps up to 256 MiB of freed memory, which reads as growth.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:quarantine_size_mb=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
out=${OFFLOAD_SOAK_OUT:-$build/soak}
mkdir -p "$out"
per_rank=$(( (total + 2) / 3 ))
echo "soak: $((per_rank * 3)) echo requests, 3 -> 1, validated, preset $preset; report in $out/soak.json"
start=$(date +%s)
mpirun --oversubscribe -np 4 "$build/apps/offload-run" --receivers 1 --kernel echo --events "$per_rank" \
  --warmup-events 2000 --validate --quiet --json "$out/soak.json" 2>&1 | tee "$out/soak.log" | grep -vE "CUDA"
echo "soak: $(( $(date +%s) - start )) s"
python3 tests/mpi/check_soak.py "$out/soak.json" 4
