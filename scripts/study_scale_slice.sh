#!/usr/bin/env bash
# The published scale test in miniature (CMS-MLG-23-001, arXiv:2402.15366): 2,455 four-threaded
# MiniAOD jobs on 102 T4s, 24 PN-AK4 / 20 PN-AK8 / 48 DeepTau / 10 DeepMET, one model per GPU,
# 12-14% faster than CPU-only, about 15 GB/s into the GPU cluster at peak (DeepTau 11.5,
# DeepMET 3.3, each PN < 0.5). One slice per model: one emulated T4 serving that model alone,
# with the scale test's jobs per GPU of that model (2455/24 = 102, /20 = 123, /48 = 51,
# /10 = 245), the other models' CPU cost run locally (study_ratio.sh -m). Per slice: events/s
# per job against CPU-only, device busy, and the bytes per second into the GPU, times the
# model's GPU count: the bandwidth the full test implies.
# Usage: scripts/study_scale_slice.sh [-b build] [-o OUT.csv] [offload-run flags, e.g. --time-scale 2 --events 24]
# (--time-scale stretches the client CPU and the device alike, so jobs per GPU keep their meaning
# while the library's own work per second, on a small machine, shrinks.)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build out=results/ratio/scale-slice.csv
while [ $# -gt 0 ]; do
  case $1 in
    -b) build=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    *) break ;;
  esac
done
total_jobs=2455
for spec in pn_ak4:24 pn_ak8:20 deeptau:48 deepmet:10; do
  model=${spec%%:*} gpus=${spec##*:}
  jobs=$(( (total_jobs + gpus / 2) / gpus ))
  echo "== $model: $gpus GPUs in the test, $jobs jobs per GPU"
  table=$(scripts/study_ratio.sh -b "$build" -o "$out" -m "$model" -j "$jobs" "$@")
  echo "$table"
  echo "$table" | awk -v g="$gpus" -v m="$model" '$1 ~ /^[0-9]+$/ {
    printf "%s: %.3f GB/s into its GPU (at this run'"'"'s time scale), x %d GPUs = %.2f GB/s\n", m, $10 / 1000, g, g * $10 / 1000 }'
done
