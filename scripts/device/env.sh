# Sourced on a machine without MPI (the GPU machine): unpacks .deps/debs (made by
# scripts/device/prepare.sh) into .deps/root once, and exports what makes the relocated Debian
# Open MPI, spdlog, fmt, CLI11, Catch2 and hwloc work from there:
#   PATH             .deps/root/usr/bin first (mpirun = mpirun.openmpi, made here as a link)
#   LD_LIBRARY_PATH  the unpacked libraries, Open MPI's own folder, PMIx's
#   OPAL_PREFIX      Open MPI's installation prefix, relocated: it finds its components,
#                    help files and wrapper data under .deps/root/usr
#   CMAKE_PREFIX_PATH, PKG_CONFIG_PATH   for find_package and pkg_check_modules
#   OMPI_MCA_*       what Debian's /etc/openmpi/openmpi-mca-params.conf would have set (that
#                    file is not relocated): ob1 over shared memory and TCP, no UCX/ofi/openib
root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
deps=$root_dir/.deps
if [ ! -d "$deps/debs" ]; then
  echo "device/env.sh: $deps/debs is missing: run scripts/device/prepare.sh where apt works and carry .deps" >&2
  return 1 2>/dev/null || exit 1
fi
R=$deps/root
if [ ! -f "$R/.unpacked" ]; then
  mkdir -p "$R"
  for f in "$deps"/debs/*.deb; do dpkg-deb -x "$f" "$R"; done
  # Debian makes these links with update-alternatives, which dpkg -x does not run.
  for tool in mpirun mpiexec mpicc mpicxx mpic++; do ln -sf "$tool.openmpi" "$R/usr/bin/$tool"; done
  ln -sfn ../../lib/x86_64-linux-gnu/openmpi/include "$R/usr/include/x86_64-linux-gnu/mpi" 2>/dev/null || true
  ln -sf pkgconf "$R/usr/bin/pkg-config"
  touch "$R/.unpacked"
fi
multiarch=x86_64-linux-gnu
export OFFLOAD_DEPS_ROOT=$R
export PATH=$R/usr/bin:$PATH
export LD_LIBRARY_PATH=$R/usr/lib/$multiarch:$R/usr/lib/$multiarch/openmpi/lib:$R/usr/lib/$multiarch/pmix2/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPAL_PREFIX=$R/usr
export PMIX_PREFIX=$R/usr/lib/$multiarch/pmix2
export CMAKE_PREFIX_PATH=$R/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
export PKG_CONFIG_PATH=$R/usr/lib/$multiarch/pkgconfig:$R/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_osc=^ucx OMPI_MCA_mtl=^ofi
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
