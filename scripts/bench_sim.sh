#!/usr/bin/env bash
# offload-sim's speed (docs/planning.md): 2,500 four-threaded jobs against 100 T4s (24 PN-AK4,
# 20 PN-AK8, 46 DeepTau, 10 DeepMET) for ten simulated minutes, one core, with the library
# costs of results/planning/calibration-same-node.json; then how the cost grows with jobs,
# GPUs and simulated time (each halved and doubled around a 1,250-job, 50-GPU, 300-s point).
# usage: scripts/bench_sim.sh [build dir]     prints a table: CPU seconds of the run with the GPUs
set -euo pipefail
build=${1:-build-cpu}
sim=$build/apps/offload-sim
cal=results/planning/calibration-same-node.json
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty) on $(hostname -s), $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p')"
printf '%6s %5s %6s %14s %10s %12s\n' jobs gpus sim_s sim_events cpu_s events/s_cpu
point() {  # jobs, scale of the GPU split (1: 100 GPUs), simulated seconds
  local jobs=$1 k=$2 secs=$3
  local g="pn_ak4=$((24 * k / 4)),pn_ak8=$((20 * k / 4)),deeptau=$((46 * k / 4)),deepmet=$((10 * k / 4))"
  local line
  line=$(taskset -c 0 "$sim" run --jobs "$jobs" --gpus "$g" --max-batch 64 --seconds "$secs" --warmup 60 \
    --calibration "$cal" | grep '^cost:')
  # cost: N simulated events in X s CPU (with the GPUs), Y s (CPU-only)
  python3 - "$jobs" "$((100 * k / 4))" "$secs" "$line" <<'PY'
import re, sys
jobs, gpus, secs, line = sys.argv[1:]
n, cpu = re.search(r"cost: (\d+) simulated events in ([0-9.]+) s CPU", line).groups()
print(f"{jobs:>6} {gpus:>5} {secs:>6} {int(n):>14} {float(cpu):>10.2f} {int(n) / float(cpu):>12.3g}")
PY
}
point 2500 4 600
for j in 625 1250 2500; do point $j 2 300; done
for k in 1 4; do point 1250 $k 300; done
for s in 150 600; do point 1250 2 $s; done
