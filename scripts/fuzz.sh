#!/usr/bin/env bash
# Builds the libFuzzer harnesses (preset "fuzz": clang, ASan, UBSan) and runs each for a
# bounded time, starting from the seed corpus in tests/fuzz/corpus/.
#   scripts/fuzz.sh [SECONDS_EACH (60)] [HARNESS...]   (harnesses: decode handshake)
# A crash, a sanitizer report or a broken promise fails the script; the input that caused it is
# left in build-fuzz/artifacts/ (make it a case in tests/fuzz/regressions/ and a unit test).
# New inputs found go to build-fuzz/corpus/ (kept between runs; tests/ keeps only the seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(decode handshake)
scripts/bootstrap.sh
cmake --preset fuzz >/dev/null
# Quiet when it builds; the whole output when it does not.
if ! build_log=$(cmake --build --preset fuzz -j "$(nproc)" 2>&1); then
  echo "$build_log"
  echo "fuzz.sh: the fuzz build failed" >&2
  exit 1
fi
mkdir -p build-fuzz/artifacts
rc=0
for h in "${harnesses[@]}"; do
  bin=build-fuzz/tests/fuzz/fuzz_$h
  [ -x "$bin" ] || { echo "fuzz.sh: no harness '$h' (have: decode handshake)" >&2; exit 2; }
  corpus=build-fuzz/corpus/$h
  mkdir -p "$corpus"
  log=build-fuzz/fuzz_$h.log
  # -rss_limit_mb: ASan's shadow makes 2 GiB (the default) tight on small machines.
  if ! timeout -s KILL $((seconds + 120)) "$bin" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
      -artifact_prefix=build-fuzz/artifacts/"$h"- "$corpus" tests/fuzz/corpus/"$h" >"$log" 2>&1; then
    echo "FAIL: fuzz_$h found a problem (log: $log):"
    grep -E "ERROR|broken promise|runtime error|Test unit written|SUMMARY" "$log" | head -20
    rc=1
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  echo "fuzz_$h: $runs inputs in ${seconds} s ($rate/s), corpus $(ls "$corpus" | wc -l) files, no crash"
done
exit "$rc"
