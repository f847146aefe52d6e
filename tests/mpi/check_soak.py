#!/usr/bin/env python3
"""check_soak.py RUN.json TOLERANCE_MIB: every event came back validated, and no rank's resident
memory grew after warm-up: from the first quarter of the run's samples (pools and queues have
reached their working size by then) to its end, RSS grew at most TOLERANCE_MIB; and the receivers'
mean queue lies within what the transmitters' credits allow."""
import json
import sys

d = json.load(open(sys.argv[1]))
tolerance_kib = float(sys.argv[2]) * 1024
c, t = d["config"], d["total"]
ok = t["status"] == "ok" and t["errors"] == 0 and t["fallbacks"] == 0
ok = ok and t["events"] == c["transmitters"] * c["events_per_transmitter"]
print(f"soak: {t['events']} events, {t['remote']} remote, {t['fallbacks']} fallbacks, {t['errors']} errors, "
      f"{t['events_per_s']:.0f} events/s")
for r in d["ranks"]:
    m = r["memory"]
    growth = m["rss_end_kib"] - m["rss_q1_kib"]
    print(f"soak: rank {r['rank']} ({r['role']}): RSS MiB start {m['rss_start_kib'] / 1024:.1f}, "
          f"quarters {m['rss_q1_kib'] / 1024:.1f} {m['rss_q2_kib'] / 1024:.1f} {m['rss_q3_kib'] / 1024:.1f}, "
          f"end {m['rss_end_kib'] / 1024:.1f}: grew {growth / 1024:.2f} MiB after the first quarter "
          f"({m['samples']} samples)")
    ok = ok and growth <= tolerance_kib
    if r["role"] == "receiver":
        queue, most = r["mean_queue_requests"], c["transmitters"] * c["credits"]
        print(f"soak: rank {r['rank']}: mean queue {queue:.2f} requests (at most {most})")
        ok = ok and 0 <= queue <= most
print(f"soak: {'OK' if ok else 'FAILED'} (tolerance {tolerance_kib / 1024:.1f} MiB)")
sys.exit(0 if ok else 1)
