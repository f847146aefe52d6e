#!/usr/bin/env bash
# scripts/check_layers.sh passes on this tree and fails, naming the file and the rule, on
# copies of it with one bad include, one bad CMake link, or a layer graph in the docs that
# differs from cmake/layers.json.
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
  (cd "$src" && git ls-files -z -- include src kernels apps examples cmake/layers.json README.md docs/design.md |
    xargs -0 cp --parents -t "$tmp/tree")
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
expect_violation src/base/buffer.cpp '#include <offload/wire.hpp>' "layer 'base' may not include layer 'wire'"
expect_violation src/progress/engine.cpp '#include "src/runtime/mpi_check.hpp"' "layer 'progress' may not include layer 'runtime'"
expect_violation src/lab/model.cpp '#include <offload/mpi.hpp>' "layer 'lab' may not include layer 'runtime'"
expect_violation src/receiver/receiver.cpp '#include <offload/emulation.hpp>' "layer 'receiver' may not include layer 'emulation'"
expect_violation src/transmitter/transmitter.cpp '#include "../receiver/backend.hpp"' "climbs out of its folder"
expect_violation src/transmitter/transmitter.cpp '#include "src/receiver/backend.hpp"' "layer 'transmitter' may not include layer 'receiver'"
expect_violation include/offload/wire.hpp '#include "src/base/clock.hpp"' "a public header includes a private one"
expect_violation src/receiver/receiver.cpp '#include "endpoint.hpp"' "no such header beside it"
expect_violation include/offload/runtime.hpp '#include <mpi.h>' "only offload/mpi.hpp may include <mpi.h>"
expect_violation include/offload/kernel.hpp '#include <cuda_runtime.h>' "only offload/cuda.hpp may include CUDA's headers"
expect_violation examples/edgeconv/edgeconv.cpp '#include "kernels/builtin.hpp"' "an outside project reaches into the library's private headers"
expect_violation src/CMakeLists.txt 'target_link_libraries(offload_session PUBLIC offload_runtime)' \
  "target offload_session links offload_runtime: layer 'session' may not use layer 'runtime'"
expect_violation src/CMakeLists.txt 'target_link_libraries(offload_lab PRIVATE offload_transport)' \
  "target offload_lab links offload_transport: layer 'lab' may not use layer 'transport'"
expect_violation kernels/CMakeLists.txt 'target_link_libraries(offload_kernels PRIVATE offload_transport)' \
  "target offload_kernels links offload_transport: layer 'kernels' may not use layer 'transport'"
# A document whose graph drifted: one layer's line edited in README.md.
expect_drift() {
  rm -rf "$tmp/tree"
  mkdir -p "$tmp/tree"
  (cd "$src" && git ls-files -z -- include src kernels apps examples cmake/layers.json README.md docs/design.md |
    xargs -0 cp --parents -t "$tmp/tree")
  sed -i "$2" "$tmp/tree/$1"
  if out=$("$check" "$tmp/tree"); then
    echo "FAIL: $1 edited with '$2' passed the check"; exit 1
  fi
  grep -q -- "$3" <<<"$out" || { echo "FAIL: $1: expected '$3' in:"; echo "$out"; exit 1; }
  echo "ok: $1 <- $2"
}
expect_drift README.md 's/^session       uses wire$/session       uses wire, runtime/' \
  "README.md: its layer graph differs from cmake/layers.json"
expect_drift docs/design.md 's/<!-- layers:begin -->//' "docs/design.md: no layer graph between"
echo "check_layers: every planted violation was caught"
