#!/usr/bin/env python3
"""check_overload.py RUN.json: the receivers' resident memory stayed under the bound that
credits give, and nothing was lost.

This is the first term of the bound docs/reliability.md states ("A shared service": M0 +
3*P*c*L + R + X; honest transmitters send nothing beyond their credits and nothing oversized,
so R and X are zero here). Each transmitter has at most `credits` requests at a receiver, each
at most max_message_bytes. A receiver holds, per outstanding request, the request and its
reply, and a reply may still be in flight to its transmitter after the credit came back: at
most transmitters x credits x 3 buffers, each of the pool's power-of-two size class of
max_message_bytes. The growth from the start is checked, so M0 drops out, but for a fixed
allowance for what the process adds under load (MPI's and gRPC's buffers, threads, allocator
arenas) of 48 MiB.
"""
import json
import sys

d = json.load(open(sys.argv[1]))
c, t = d["config"], d["total"]
size_class = 1 << (int(c["max_message_bytes"]) - 1).bit_length()
fixed_kib = 48 * 1024
bound_kib = c["transmitters"] * c["credits"] * 3 * size_class // 1024 + fixed_kib
ok = True
for r in d["ranks"]:
    if r["role"] != "receiver":
        continue
    m = r["memory"]
    growth = m["rss_max_kib"] - m["rss_start_kib"]
    print(f"receiver rank {r['rank']}: RSS {m['rss_start_kib'] / 1024:.1f} MiB at start, {m['rss_max_kib'] / 1024:.1f} "
          f"MiB at most (grew {growth / 1024:.1f} MiB); bound {bound_kib / 1024:.0f} MiB = {c['transmitters']} "
          f"transmitters x {c['credits']} credits x 3 x {size_class >> 10} KiB + {fixed_kib >> 10} MiB")
    ok = ok and growth <= bound_kib
events = c["transmitters"] * c["events_per_transmitter"]
print(f"events {t['events']} of {events}, remote {t['remote']}, fallbacks {t['fallbacks']}, errors {t['errors']}, "
      f"{t['requests_per_s']:.1f} requests/s")
ok = ok and t["events"] == events and t["remote"] == events and t["errors"] == 0 and t["status"] == "ok"
print("overload: OK" if ok else "overload: FAILED")
sys.exit(0 if ok else 1)
