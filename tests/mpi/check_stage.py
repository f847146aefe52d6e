#!/usr/bin/env python3
"""check_stage.py RUN.json STAGE MIN_MS: the p50 of STAGE (tx_queue, net_out, rx_queue, kernel,
net_back, round_trip) in an offload-run JSON report is at least MIN_MS."""
import json
import sys

value = json.load(open(sys.argv[1]))["stages"][sys.argv[2]]["p50_ms"]
ok = value >= float(sys.argv[3])
print(f"check_stage: {'OK' if ok else 'FAIL'}: {sys.argv[2]} p50 {value:.3f} ms, at least {sys.argv[3]} ms expected")
sys.exit(0 if ok else 1)
