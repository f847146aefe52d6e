#!/usr/bin/env bash
# The MPI path before and after (results/overhead.md): 7 alternating rounds of offload-run's echo
# at 64 B and 64 KiB with 1 in flight and 64 B at 2 threads x 16 in flight, the two offload-run
# builds in turn; prints median [min, max] per measure.
#   ab.sh BEFORE_OFFLOAD_RUN AFTER_OFFLOAD_RUN OUT_DIR
A=$1; B=$2; out=$3
rm -rf "$out"; mkdir -p "$out"
for r in 1 2 3 4 5 6 7; do
  for side in A B; do
    bin=${!side}
    mpirun --bind-to core -np 2 $bin --receivers 1 --kernel echo --size 64 --events 3000 --inflight 1 --warmup-events 200 --quiet --json $out/$side.small.$r.json >/dev/null 2>&1
    mpirun --bind-to core -np 2 $bin --receivers 1 --kernel echo --size 65536 --events 2000 --inflight 1 --warmup-events 200 --quiet --json $out/$side.large.$r.json >/dev/null 2>&1
    mpirun --bind-to core -np 2 $bin --receivers 1 --kernel echo --size 64 --events 30000 --threads 2 --inflight 16 --credits 16 --warmup-events 2000 --quiet --json $out/$side.busy.$r.json >/dev/null 2>&1
  done
done
python3 - "$out" <<'PY'
import json, statistics as st
import sys
out=sys.argv[1]
def load(side,kind,r): return json.load(open(f"{out}/{side}.{kind}.{r}.json"))
def rx_cpu_us(d):
    rx=[x for x in d['ranks'] if x['role']=='receiver'][0]
    n=d['total']['events']+d['total']['warmup_events']
    return rx['cpu']['process_s']/n*1e6
rows=[("64 B round trip p50, us","small",lambda d:d['total']['round_trip_p50_ms']*1e3),
      ("64 KiB round trip p50, us","large",lambda d:d['total']['round_trip_p50_ms']*1e3),
      ("64 B, 2 x 16: requests/s","busy",lambda d:d['total']['requests_per_s']),
      ("64 B, 2 x 16: receiver CPU per request, us","busy",rx_cpu_us),
      ("64 KiB, 1 in flight: receiver CPU per request, us","large",rx_cpu_us)]
print("| measure | before | after | after/before |\n|---|---|---|---|")
for name,kind,f in rows:
    a=[f(load("A",kind,r)) for r in range(1,8)]; b=[f(load("B",kind,r)) for r in range(1,8)]
    fmt=lambda v: f"{st.median(v):.2f} [{min(v):.2f}, {max(v):.2f}]" if st.median(v)<1000 else f"{st.median(v):,.0f} [{min(v):,.0f}, {max(v):,.0f}]".replace(","," ")
    print(f"| {name} | {fmt(a)} | {fmt(b)} | {st.median(b)/st.median(a):.3f} |")
for side in "AB":
    d=load(side,"small",1); print(side, d['total']['git_commit'], d['total']['status'], d['total']['digest'])
PY
