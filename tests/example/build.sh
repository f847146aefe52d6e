#!/usr/bin/env bash
# Installs the build tree into OUT/prefix and builds examples/edgeconv against it with
# find_package(mpi_offload) into OUT/build: the kernel as a plugin (edgeconv_plugin.so) and
# linked into an application (edgeconv_app), and the reference dump tool.
#   build.sh BUILD_DIR OUT
set -euo pipefail
build=$1
out=$2
src=$(cd "$(dirname "$0")/../../examples/edgeconv" && pwd)
rm -rf "$out"
mkdir -p "$out"
cmake --install "$build" --prefix "$out/prefix" >/dev/null
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
# A sanitizer build's libraries need the same flags in their consumer; the same CUDA compiler too.
args=(-DCMAKE_PREFIX_PATH="$out/prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCMAKE_CXX_FLAGS="$(cache CMAKE_CXX_FLAGS)" -DCMAKE_EXE_LINKER_FLAGS="$(cache CMAKE_EXE_LINKER_FLAGS)"
  -DCMAKE_SHARED_LINKER_FLAGS="$(cache CMAKE_SHARED_LINKER_FLAGS)"
  -DCMAKE_MODULE_LINKER_FLAGS="$(cache CMAKE_SHARED_LINKER_FLAGS)")
# The same CUDA compiler and architectures, and the same MPI (the GPU machine's is unpacked, not installed).
cuda=$(cache CMAKE_CUDA_COMPILER)
[ -z "$cuda" ] || args+=(-DCMAKE_CUDA_COMPILER="$cuda")
archs=$(cache CMAKE_CUDA_ARCHITECTURES)
[ -z "$archs" ] || args+=(-DCMAKE_CUDA_ARCHITECTURES="$archs")
mpicxx=$(cache MPI_CXX_COMPILER)
[ -z "$mpicxx" ] || args+=(-DMPI_CXX_COMPILER="$mpicxx")
cmake -S "$src" -B "$out/build" -G Ninja "${args[@]}"
cmake --build "$out/build"
ls "$out/build/edgeconv_plugin.so" "$out/build/edgeconv_app" "$out/build/edgeconv_dump"
