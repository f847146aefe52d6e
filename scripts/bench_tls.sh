#!/usr/bin/env bash
# What TLS costs: one offload-serve over loopback, plaintext and TLS (a throw-away CA and server
# certificate made by openssl), reached by offload-run --transport grpc (our protocol) and
# --transport kserve, with the echo kernel (the transport is all there is), at 8 B, 64 KiB and
# 1 MiB, in one run:
#   latency:    1 thread, 1 request at a time: round trip p50 and p99;
#   throughput: 2 threads, 8 events in flight: requests/s and MB/s;
#   CPU:        the service's and the transmitter's CPU time per request (process CPU / requests).
# Writes OUT/tls.csv and prints the table (results/reliability.md quotes it).
#   scripts/bench_tls.sh [--out DIR (results/tls)] [--build DIR (build-cpu)] [--events N (2000)]
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/tls
build=build-cpu
events=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --events) events=$2; shift 2 ;;
    *) echo "bench_tls.sh: unknown argument $1 (see the header)" >&2; exit 2 ;;
  esac
done
serve=$build/apps/offload-serve
run=$build/apps/offload-run
[ -x "$serve" ] && [ -x "$run" ] || { echo "bench_tls.sh: build $build first (offload-serve, offload-run)" >&2; exit 1; }
tmp=$(mktemp -d)
service=
trap '[ -n "$service" ] && kill -9 "$service" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$out"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 -subj /CN=ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj /CN=server 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" >"$tmp/server.ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -out "$tmp/server.pem" \
  -days 2 -extfile "$tmp/server.ext" 2>/dev/null

cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

csv=$out/tls.csv
echo "security,transport,test,size_bytes,requests,round_trip_p50_ms,round_trip_p99_ms,requests_per_s,mb_per_s,service_cpu_us_per_request,transmitter_cpu_us_per_request" >"$csv"
for security in plaintext tls; do
  server_flags=() client_flags=()
  if [ $security = tls ]; then
    server_flags=(--tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key")
    client_flags=(--tls-ca "$tmp/ca.pem")
  fi
  rm -f "$tmp/ports"
  "$serve" --listen 127.0.0.1:0 --kserve 127.0.0.1:0 --port-file "$tmp/ports" --credits 16 \
    --max-message-bytes 4194304 "${server_flags[@]}" >"$tmp/serve.log" 2>&1 &
  service=$!
  for _ in $(seq 100); do [ -s "$tmp/ports" ] && break; sleep 0.1; done
  [ -s "$tmp/ports" ] || { cat "$tmp/serve.log" >&2; exit 1; }
  grpc_port=$(head -1 "$tmp/ports") kserve_port=$(tail -1 "$tmp/ports")
  for transport in grpc kserve; do
    port=$grpc_port
    [ $transport = kserve ] && port=$kserve_port
    for size in 8 65536 1048576; do
      n=$events
      [ "$size" -ge 1048576 ] && n=$((events / 4))
      for test in latency throughput; do
        shape=(--threads 1 --inflight 1)
        [ $test = throughput ] && shape=(--threads 2 --inflight 8)
        cpu0=$(cpu_seconds "$service")
        /usr/bin/time -f "%U %S" -o "$tmp/time" "$run" --transport $transport --connect "127.0.0.1:$port" \
          "${client_flags[@]}" --kernel echo --size "$size" --events "$n" "${shape[@]}" --credits 16 \
          --max-message-bytes 4194304 --quiet --json "$tmp/run.json" >"$tmp/run.log" 2>&1 ||
          { cat "$tmp/run.log" >&2; exit 1; }
        service_cpu=$(python3 -c "print($(cpu_seconds "$service") - $cpu0)")
        python3 - "$tmp/run.json" "$tmp/time" "$service_cpu" "$security" "$transport" "$test" "$size" >>"$csv" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["total"]
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
assert t["status"] == "ok" and t["fallbacks"] == 0 and t["remote"] == t["requests"], "not every request was remote"
n = t["requests"]
print(",".join(str(x) for x in [sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], n,
      round(t["round_trip_p50_ms"], 4), round(t["round_trip_p99_ms"], 4), round(t["requests_per_s"], 1),
      round(t["mb_per_s"], 1), round(1e6 * float(sys.argv[3]) / n, 1), round(1e6 * (user + system) / n, 1)]))
EOF
      done
    done
  done
  kill -INT "$service"
  wait "$service" || true
  service=
done

python3 - "$csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
key = lambda r: (r["transport"], r["size_bytes"], r["test"])
plain = {key(r): r for r in rows if r["security"] == "plaintext"}
print("| transport | size | test | plaintext | TLS | TLS / plaintext | service CPU us/req (plain -> TLS) | transmitter CPU us/req (plain -> TLS) |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for r in rows:
    if r["security"] != "tls":
        continue
    p = plain[key(r)]
    col = "round_trip_p50_ms" if r["test"] == "latency" else "requests_per_s"
    unit = " ms p50" if r["test"] == "latency" else " req/s"
    ratio = float(r[col]) / float(p[col])
    print(f"| {r['transport']} | {r['size_bytes']} | {r['test']} | {p[col]}{unit} | {r[col]}{unit} | {ratio:.2f} | "
          f"{p['service_cpu_us_per_request']} -> {r['service_cpu_us_per_request']} | "
          f"{p['transmitter_cpu_us_per_request']} -> {r['transmitter_cpu_us_per_request']} |")
EOF
