#!/usr/bin/env bash
# scripts/check_layers.sh passes on this tree and fails, naming the file and the rule, on
# copies of it with one bad include each.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
check=$src/scripts/check_layers.sh
"$check" "$src"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# expect_violation FILE LINE PATTERN: FILE with LINE prepended must fail with PATTERN.
expect_violation() {
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree"
  (cd "$src" && git ls-files -z -- include src kernels apps examples | xargs -0 cp --parents -t "$tmp/tree")
  printf '%s\n' "$2" | cat - "$tmp/tree/$1" >"$tmp/x" && mv "$tmp/x" "$tmp/tree/$1"
  if out=$("$check" "$tmp/tree"); then
    echo "FAIL: '$2' in $1 passed the check"; exit 1
  fi
  grep -q -- "$3" <<<"$out" || { echo "FAIL: '$2' in $1: expected '$3' in:"; echo "$out"; exit 1; }
  echo "ok: $1 <- $2"
}
expect_violation src/wire/wire.cpp '#include "src/transport/endpoint.hpp"' "layer 'wire' may not include layer 'transport'"
expect_violation kernels/echo.cpp '#include <offload/runtime.hpp>' "layer 'kernels' may not include layer 'runtime'"
expect_violation src/session/handshake.cpp '#include "src/runtime/mpi_check.hpp"' "layer 'session' may not include layer 'runtime'"
expect_violation src/transmitter/transmitter.cpp '#include "../receiver/backend.hpp"' "climbs out of its folder"
expect_violation src/transmitter/transmitter.cpp '#include "src/receiver/backend.hpp"' "layer 'transmitter' may not include layer 'receiver'"
expect_violation include/offload/wire.hpp '#include "src/wire/clock.hpp"' "a public header includes a private one"
expect_violation src/receiver/receiver.cpp '#include "endpoint.hpp"' "no such header beside it"
expect_violation include/offload/runtime.hpp '#include <mpi.h>' "only offload/mpi.hpp may include <mpi.h>"
expect_violation include/offload/kernel.hpp '#include <cuda_runtime.h>' "only offload/cuda.hpp may include CUDA's headers"
expect_violation examples/edgeconv/edgeconv.cpp '#include "kernels/builtin.hpp"' "an outside project reaches into the library's private headers"
echo "check_layers: every planted violation was caught"
