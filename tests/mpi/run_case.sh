#!/usr/bin/env bash
# Runs one MPI test case under a hard timeout and checks what it did.
#   run_case.sh [--timeout S] [--expect-rc N] [--expect REGEX]... [--reject REGEX]...
#               [--skip-unless PROBE] [--check CMD]... -- command...
# --skip-unless: run PROBE first; when it fails, print why and exit 77 (the test is skipped).
# --expect: the output (stdout and stderr) must match REGEX (grep -E); --reject: must not.
# --check: after the command, run CMD (through sh; its output joins the log) and fail if it fails.
# Without --expect-rc the command must exit 0. In the command and checks, @TMP@ becomes a fresh folder.
set -u
timeout_s=120
expect_rc=0
expects=()
rejects=()
probe=""
checks=()
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s=$2; shift 2 ;;
    --expect-rc) expect_rc=$2; shift 2 ;;
    --expect) expects+=("$2"); shift 2 ;;
    --reject) rejects+=("$2"); shift 2 ;;
    --skip-unless) probe=$2; shift 2 ;;
    --check) checks+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "run_case.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "run_case.sh: no command" >&2; exit 2; }
if [ -n "$probe" ]; then
  if ! why=$($probe 2>&1); then echo "SKIP: ${why:-$probe failed}"; exit 77; fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=()
for a in "$@"; do args+=("${a//@TMP@/$tmp}"); done
log="$tmp/output.log"
timeout -s KILL "$timeout_s" "${args[@]}" >"$log" 2>&1
rc=$?
cat "$log"
# Files the case wrote under @TMP@ (e.g. --json) are part of what is checked.
for f in "$tmp"/*.json; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; } >>"$log"; done
fail=0
for c in "${checks[@]+"${checks[@]}"}"; do
  echo "--- check: ${c//@TMP@/$tmp}"
  timeout -s KILL "$timeout_s" sh -c "${c//@TMP@/$tmp}" 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAIL: check failed: $c"; fail=1; }
done
if [ "$rc" -eq 137 ]; then echo "FAIL: killed after ${timeout_s}s (a hang)"; fail=1; fi
if [ "$expect_rc" = "nonzero" ]; then
  [ "$rc" -ne 0 ] || { echo "FAIL: exit code 0, expected non-zero"; fail=1; }
elif [ "$rc" -ne "$expect_rc" ]; then
  echo "FAIL: exit code $rc, expected $expect_rc"; fail=1
fi
for re in "${expects[@]+"${expects[@]}"}"; do
  grep -Eq -- "$re" "$log" || { echo "FAIL: output does not match: $re"; fail=1; }
done
for re in "${rejects[@]+"${rejects[@]}"}"; do
  if grep -Eq -- "$re" "$log"; then echo "FAIL: output matches what it must not: $re"; fail=1; fi
done
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
