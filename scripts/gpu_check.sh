#!/usr/bin/env bash
# The GPU path in one command, for a GPU machine with CUDA, CMake, ninja and g++ but no MPI and
# no package registry (our lent H100). Prepare where apt works:
#     scripts/device/prepare.sh          # Debian's Open MPI & co. as .deb files in .deps/debs
# then, on the GPU machine, with .deps carried along (device tool: carry [".deps"]):
#     scripts/gpu_check.sh
# It unpacks .deps (scripts/device/env.sh says which variables make that work), builds for the
# GPU it finds (sm_90 on Hopper), runs the GPU tests (ctest -L gpu: they must run there, not
# skip; the rest of the suite is CI's, on machines without a GPU), the host<->device copy rates
# of the receiver's pinned pool against pageable memory, then short benchmarks: each kernel's
# device time against its roofline floor (offload-kernel-bench, with the EdgeConv example's
# plugin), offload-run mlp and edgeconv 1->1 and 7->1 with the cuda backend against the cpu
# backend, mlp 7->1 unbatched against batched, miniaod remote (cuda) against local
# (bench_modes.sh), a device profile of the GPU measured from the cuda backend with the emulated
# device checked against it (scripts/profiles/measure.py: copy $OUT/profile-measured-*.json to
# profiles/) and the library overhead (bench_overhead.sh, one round). Each section prints its
# seconds: the whole should stay under 6 minutes on 16 cores (a device lease is 15 minutes, one
# command at most 10), so that a second try fits. Everything it prints is also written to $OUT
# (or ./gpu-check-out).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/device/env.sh
out=${OUT:-$PWD/gpu-check-out}
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1

echo "== device"
arch=90
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version,pci.bus_id --format=csv | tee "$out/device.csv"
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
  [ -n "$cap" ] && arch=$cap
else
  echo "nvidia-smi not found: building for sm_$arch; the GPU tests will say why they cannot run"
fi
nvcc --version | tail -2

echo "== build (sm_$arch, at ${SECONDS} s)"
build=build-gpu
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOFFLOAD_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DMPI_CXX_COMPILER="$OFFLOAD_DEPS_ROOT/usr/bin/mpicxx.openmpi" \
  -DMPIEXEC_EXECUTABLE="$OFFLOAD_DEPS_ROOT/usr/bin/mpirun.openmpi" >"$out/configure.log"
cmake --build "$build" -j "$(nproc)" >"$out/build.log"
echo "built"

section() { echo "== $* (at ${SECONDS} s)"; }

section "GPU tests (ctest -L gpu, with the fixtures they need)"
status=0
ctest --test-dir "$build" -L gpu -j 4 --output-on-failure || status=1
if grep -q '^SKIP: ' "$build/Testing/Temporary/LastTest.log"; then
  echo "Skipped tests (on a GPU machine a skip of a GPU test is a failure):"
  grep '^SKIP: ' "$build/Testing/Temporary/LastTest.log" | sort -u
  command -v nvidia-smi >/dev/null && status=1
fi

section "host<->device copies: the receiver's pinned pool against pageable memory"
"$build/tests/test_cuda_kernels" >"$out/cuda_kernels.txt" 2>&1 || status=1
grep '^copy' "$out/cuda_kernels.txt" | tee "$out/copy_rates.txt"

# The example's EdgeConv plugin (examples/edgeconv; the suite's example.build made it).
edgeconv=$build/tests/example/build/edgeconv_plugin.so
[ -f "$edgeconv" ] || tests/example/build.sh "$build" "$build/tests/example" >"$out/example_build.log" || status=1

section "kernels against their roofline floor (device time, large batch), EdgeConv too"
"$build/apps/offload-kernel-bench" --plugin "$edgeconv" | tee "$out/kernel_bench.txt" || status=1

section "benchmark: offload-run, mlp (256 jets per event) and edgeconv (16 jets per event), validated"
run=$build/apps/offload-run
printf '%-9s %-6s %-8s %10s %9s %9s %9s %10s\n' kernel ranks backend events/s p50_ms p90_ms p99_ms fallbacks |
  tee "$out/bench.txt"
for kernel in "mlp --size 256" "edgeconv --size 16 --plugin $edgeconv"; do
  for tx in 1 7; do
    for backend in cuda cpu; do
      # shellcheck disable=SC2086
      line=$(mpirun -np $((tx + 1)) "$run" --receivers 1 --backend "$backend" --kernel $kernel --events 2000 \
               --threads 2 --inflight 8 --validate --quiet --csv "$out/runs.csv" 2>&1 |
               tee -a "$out/bench_runs.log" | awk '$1 == "all"') || status=1
      read -r _ events wall rate _rps _mbps p50 p90 p99 remote fallbacks errors <<<"$line"
      printf '%-9s %-6s %-8s %10s %9s %9s %9s %10s\n' "${kernel%% *}" "${tx}->1" "$backend" "$rate" "$p50" "$p90" \
        "$p99" "$fallbacks" | tee -a "$out/bench.txt"
      [ "${errors:-1}" = 0 ] || status=1
    done
  done
done
section "batching: mlp 7->1, cuda, 64 in flight per transmitter, batch 1 against batch 32"
printf '%-10s %10s %9s %9s  %s\n' max_batch events/s p50_ms p99_ms batches | tee "$out/batching.txt"
for batch in 1 32; do
  log=$(mpirun -np 8 "$run" --receivers 1 --backend cuda --kernel mlp --events 4000 --threads 4 --inflight 64 \
          --credits 64 --max-batch "$batch" --max-wait-us 500 --validate --quiet --csv "$out/runs.csv" 2>&1) || status=1
  echo "$log" >>"$out/bench_runs.log"
  read -r _ events wall rate _rps _mbps p50 p90 p99 remote fallbacks errors <<<"$(echo "$log" | awk '$1 == "all"')"
  printf '%-10s %10s %9s %9s  %s\n' "$batch" "$rate" "$p50" "$p99" \
    "$(echo "$log" | grep -o '[0-9]* batches, mean size [0-9.]*' || echo -)" | tee -a "$out/batching.txt"
  [ "${errors:-1}" = 0 ] || status=1
done
section "miniaod: remote (cuda receiver) against local, time scale 0.1, 4 transmitters x 4 threads"
scripts/bench_modes.sh -b "$build" -t 4 -r 1 --workload miniaod --time-scale 0.1 --events 100 --threads 4 \
  --inflight 8 --backend cuda --validate | tee "$out/miniaod_modes.txt" || status=1
section "a device profile of this GPU (mlp, 256 jets per request, on the cuda backend), and the emulated device against it"
gpu=$( (nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo gpu) | head -1 | tr ' ' '-' | tr -cd 'A-Za-z0-9-')
python3 scripts/profiles/measure.py --build "$build" --backend cuda --kernel mlp --flags "--size 256" \
  --out "$out/profile-measured-$gpu.json" --check | tee "$out/profile_check.txt" || status=1
section "library overhead against raw MPI (one round)"
REPEATS=1 scripts/bench_overhead.sh "$build" | tee "$out/overhead.txt" || status=1
echo "gpu_check: $([ $status -eq 0 ] && echo PASS || echo FAIL) in ${SECONDS} s"
exit $status
