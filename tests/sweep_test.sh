#!/usr/bin/env bash
# scripts/sweep.py and scripts/plot.py end to end, on tiny points:
#  - 2 points give 2 rows with the axes, windows, stability and offload-run's columns;
#  - run again with one more axis value: only the new point runs (resume), 3 rows;
#  - a point that fails (an unknown kernel) is written as failed, the sweep exits 1, and the
#    rows before it stay;
#  - every plot kind writes a PNG.
#   sweep_test.sh BUILD_DIR
set -u
build=$1
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
[ -x /usr/bin/python3 ] || { echo "SKIP: no /usr/bin/python3 (Debian's python3)"; exit 77; }
/usr/bin/python3 -c "import matplotlib" 2>/dev/null ||
  { echo "SKIP: Debian's python3-matplotlib is not installed (scripts/bootstrap.sh installs it)"; exit 77; }
rows() { /usr/bin/python3 -c "import csv, sys; print(len(list(csv.DictReader(open(sys.argv[1])))))" "$1"; }
sweep=("$root/scripts/sweep.py" --build "$build" --out "$tmp/s.csv" --warmup-events 2 --max-windows 4)
common=(-- --kernel mlp --events 20 --threads 1)

"${sweep[@]}" --axis inflight=1,2 "${common[@]}" || fail "first sweep exited $?"
[ "$(rows "$tmp/s.csv")" = 2 ] || fail "expected 2 rows"
head -1 "$tmp/s.csv" | grep -q "^inflight,.*windows,stable,.*events_per_s" || fail "header: $(head -1 "$tmp/s.csv")"
out=$("${sweep[@]}" --axis inflight=1,2,4 "${common[@]}" 2>&1) || fail "resumed sweep exited $?"
echo "$out" | tail -2
[ "$(rows "$tmp/s.csv")" = 3 ] || fail "expected 3 rows after resuming"
echo "$out" | grep -q "2/3 points" || fail "the resumed sweep did not start at point 2 of 3"

"${sweep[@]}" --out "$tmp/f.csv" --axis kernel=mlp,nope -- --events 10 --threads 1 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ] || fail "a failing point must make the sweep exit non-zero"
grep -q "point kernel=nope failed" "$tmp/err" || fail "no failure message: $(cat "$tmp/err")"
/usr/bin/python3 - "$tmp/f.csv" <<'PY' || fail "failed-point rows"
import csv, sys
rows = {r["kernel"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert rows["mlp"]["status"] == "ok" and float(rows["mlp"]["events_per_s"]) > 0, rows["mlp"]
assert rows["nope"]["status"] == "failed" and "unknown kernel" in rows["nope"]["error"], rows["nope"]
print("failed point kept with its error:", rows["nope"]["error"].splitlines()[-1])
PY
for kind in rtt ratio latency breakdown; do
  "$root/scripts/plot.py" "$kind" "$tmp/s.csv" -o "$tmp/$kind.png" || fail "plot $kind"
  [ "$(head -c 4 "$tmp/$kind.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "$kind.png is not a PNG"
done
echo "PASS: sweep and plots"
