#!/usr/bin/env python3
"""Checks emulated runs of offload-run against the local run of the same events.

check_emulated.py LOCAL.json REMOTE.json REMOTE.csv
  - the digests are equal (the emulated device's outputs are exact);
  - the device is labelled EMULATED in the remote run's config, totals and CSV row, and the
    CPU work label is the same in all three and in both runs;
  - the utilisation figures are present and between 0 and 1 (busy, remote wait), the queue is
    not negative and a batch holds at least one request.
Exits 1 at the first failure."""
import csv
import json
import sys


def fail(msg):
    print(f"check_emulated: FAIL: {msg}")
    sys.exit(1)


local, remote = (json.load(open(p)) for p in sys.argv[1:3])
row = list(csv.DictReader(open(sys.argv[3])))[-1]
if local["total"]["digest"] != remote["total"]["digest"]:
    fail(f"digest local {local['total']['digest']} != emulated {remote['total']['digest']}")
for where, label in (("config", remote["config"]["device"]), ("total", remote["total"]["device"]),
                     ("csv", row["device"])):
    if not label.startswith("EMULATED ("):
        fail(f"device in {where} is {label!r}, not EMULATED")
cpu = {remote["config"]["cpu_work"], remote["total"]["cpu_work"], row["cpu_work"], local["total"]["cpu_work"]}
if len(cpu) != 1:
    fail(f"cpu_work labels differ: {cpu}")
t = remote["total"]
for key in ("device_busy_fraction", "remote_wait_fraction"):
    if not 0 < t[key] <= 1:
        fail(f"{key} = {t[key]} is not in (0, 1]")
if t["mean_queue_requests"] < 0 or t["mean_batch_requests"] < 1 or t["mean_batch_items"] <= 0:
    fail(f"queue {t['mean_queue_requests']}, batch {t['mean_batch_requests']} requests / {t['mean_batch_items']} items")
for r in remote["ranks"]:
    if r["role"] == "receiver" and not 0 < r["busy_fraction"] <= 1:
        fail(f"receiver {r['rank']} busy_fraction {r['busy_fraction']}")
print(f"check_emulated: OK: digest {t['digest']}, device {t['device']}, cpu work {t['cpu_work']}, busy "
      f"{t['device_busy_fraction']:.3f}, queue {t['mean_queue_requests']:.2f}, batch {t['mean_batch_requests']:.2f} "
      f"requests, remote wait {t['remote_wait_fraction']:.3f}")
