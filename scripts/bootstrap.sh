#!/usr/bin/env bash
# Installs the Debian packages that building and testing mpi-offload need, only those that
# are missing. Idempotent; prints nothing when everything is there.
set -euo pipefail
packages=(cmake g++ ninja-build pkg-config openmpi-bin libopenmpi-dev libspdlog-dev libcli11-dev catch2
          libhwloc-dev hwloc nlohmann-json3-dev python3 clang-format
          libnetfilter-queue-dev iptables iproute2 bsdutils python3-numpy python3-matplotlib
          slurm-wlm munge clang libclang-rt-14-dev libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc
          python3-grpcio python3-protobuf libtorch-dev python3-torch prometheus-cpp-dev python3-prometheus-client openssl
          pybind11-dev python3-dev python3-mpi4py python3-pytest)
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "bootstrap: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
