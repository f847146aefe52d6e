#!/usr/bin/env bash
# Bootstrap, build, and run the whole test suite (unit, MPI integration, install, GPU — the
# GPU tests skip with their reason where there is no GPU). Tests run one at a time: the MPI
# cases already use more ranks than our 2 cores. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
source scripts/env.sh
preset=${OFFLOAD_PRESET:-default}
build=build
[ "$preset" = default ] || build=build-$preset
if [ "$preset" = asan ]; then
  # Every process (MPI ranks too: mpirun passes the environment on) stops at the first error.
  # Leak checking is on for the unit tests only (tests/CMakeLists.txt): see
  # tests/sanitizers/README.md for why it cannot be on for MPI ranks.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:strict_string_checks=1:detect_stack_use_after_return=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
rc=0
ctest --preset "$preset" "$@" || rc=$?
# ctest does not show why a test was skipped: print the reasons the tests gave.
log=$build/Testing/Temporary/LastTest.log
if [ -f "$log" ] && grep -q '^SKIP: ' "$log"; then
  echo "Skip reasons:"
  grep '^SKIP: ' "$log" | sort | uniq -c
fi
exit "$rc"
