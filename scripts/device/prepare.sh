#!/usr/bin/env bash
# Run HERE (Debian 12, with apt): downloads the Debian packages that building and running
# mpi-offload needs into .deps/debs/, for a GPU machine that has CUDA, CMake, ninja and g++
# but no MPI and no package registry. `.deps/` is git-ignored; carry it to that machine
# (device tool: carry [".deps"]) and run scripts/gpu_check.sh there, which unpacks it with
# `dpkg -x` into .deps/root and points PATH, LD_LIBRARY_PATH, OPAL_PREFIX and CMake at it.
#
# The list is the runtime closure of Open MPI 4.1 (read off `ldd` of orterun, orted, every MCA
# component and offload-run, mapped to packages with `dpkg -S`) minus what any glibc-based
# image has (libc6, libgcc-s1, libstdc++6, zlib1g, libudev1, libuuid1, libatomic1), plus the
# headers the build needs and pkgconf (for hwloc). About 15 MB of .deb files.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(
  # Open MPI runtime
  openmpi-bin openmpi-common libopenmpi3 libpmix2 libhwloc15 libevent-2.1-7 libevent-core-2.1-7
  libevent-pthreads-2.1-7 libfabric1 libucx0 libpsm2-2 libpsm-infinipath1 libibverbs1 ibverbs-providers
  librdmacm1 libnl-3-200 libnl-route-3-200 libmunge2 libnuma1
  # logging
  libspdlog1.10 libfmt9
  # build: headers, CMake configs, pkg-config
  libopenmpi-dev libspdlog-dev libfmt-dev libcli11-dev catch2 libhwloc-dev nlohmann-json3-dev pkgconf pkgconf-bin libpkgconf3
)
mkdir -p .deps/debs
if ! apt-cache show openmpi-bin >/dev/null 2>&1; then apt-get update -qq; fi
(cd .deps/debs && apt-get download -qq "${packages[@]}")
du -sh .deps/debs
