#!/usr/bin/env bash
# Checks that every C++ and CUDA source follows .clang-format (clang-format 14, Debian's);
# with --fix, rewrites them in place. Exits 1 listing the files that differ.
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[ "${1:-}" = --fix ] && fix=1
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' '*.cu' '*.cuh' |
                     grep -v '^tests/fuzz/corpus/')
if [ "$fix" = 1 ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'not formatted: %s\n' "${bad[@]}"
  echo "check_format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (fix: scripts/check_format.sh --fix)"
  exit 1
fi
echo "check_format: ${#files[@]} files follow .clang-format"
