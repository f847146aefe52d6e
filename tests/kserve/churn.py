#!/usr/bin/python3
"""What a KServe v2 client can cost offload-serve --kserve (docs/reliability.md, "A shared
service"), against one service whose process id is given:
  1. session churn: SESSIONS sessions, in turn a ModelStreamInfer stream with one request, a new
     connection with one ModelInfer (ended by the service after its idle time), and a stream
     cancelled with a slow request in the receiver: the service's RSS after the last is within
     SLACK KiB of what it was after the first tenth, and it ends every session;
  2. a client that does not read: a stream that sends 4 x the window of requests and reads
     nothing is held by flow control (the service's RSS stays within SLACK), while another
     client is served; cancelled, its session goes;
  3. the service still answers after all of it.

Usage: churn.py --address HOST:PORT --stubs DIR --pid PID [--sessions N] [--slack-kib K] [--window W]
Prints what it measured and ends with "PASS: 0 failed checks" or "FAIL: N failed checks".
"""
import argparse
import sys
import threading
import time

import numpy as np

import harness  # noqa: E402  (tests/kserve/harness.py)

parser = argparse.ArgumentParser()
parser.add_argument("--pid", type=int, required=True)
parser.add_argument("--sessions", type=int, default=6000)
parser.add_argument("--slack-kib", type=int, default=1536)
parser.add_argument("--window", type=int, default=256)
args, grpc, pb, rpc = harness.start(parser)
check = harness.check


def rss_kib():
    with open(f"/proc/{args.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def echo_request(n=256, rid=""):
    req = pb.ModelInferRequest(model_name="echo", id=rid)
    t = req.inputs.add()
    t.name, t.datatype = "payload", "UINT8"
    t.shape.append(n)
    req.raw_input_contents.append(bytes(range(256)) * (n // 256) + bytes(n % 256))
    return req


def slow_request():
    req = pb.ModelInferRequest(model_name="synthetic")
    x = req.inputs.add()
    x.name, x.datatype = "x", "FP64"
    x.shape.append(20000)
    req.raw_input_contents.append(np.ones(20000).tobytes())
    it = req.inputs.add()
    it.name, it.datatype = "iterations", "INT64"
    it.shape.append(1)
    req.raw_input_contents.append(np.array([20000], np.int64).tobytes())
    return req


channel = grpc.insecure_channel(args.address)
stub = rpc.GRPCInferenceServiceStub(channel)
stub.ServerLive(pb.ServerLiveRequest())

# 1. session churn
first = None
start = time.time()
for i in range(args.sessions):
    kind = i % 3
    if kind == 0:  # a stream with one request
        answers = list(stub.ModelStreamInfer(iter([echo_request(rid=str(i))])))
        check(len(answers) == 1 and not answers[0].error_message and answers[0].infer_response.id == str(i),
              f"stream session {i}")
    elif kind == 1:  # a connection of its own, one call
        with grpc.insecure_channel(args.address) as c:
            r = rpc.GRPCInferenceServiceStub(c).ModelInfer(echo_request(rid=str(i)))
            check(r.id == str(i), f"connection session {i}")
    else:  # a stream cancelled while its slow request is in the receiver
        call = stub.ModelStreamInfer(iter([slow_request()]))
        time.sleep(0.001)
        call.cancel()
    if i + 1 == args.sessions // 10:
        time.sleep(1)  # (the connections' sessions end after the service's idle time)
        first = rss_kib()
took = time.time() - start
time.sleep(1.5)
last = rss_kib()
print(f"churn: {args.sessions} sessions in {took:.1f} s (streams, connections, cancelled streams in turn): "
      f"service RSS {first} KiB after the first tenth, {last} KiB after the last ({last - first:+d} KiB)", flush=True)
check(last - first <= args.slack_kib, f"RSS grew {last - first} KiB over the churn, more than {args.slack_kib}")

# 2. a client that does not read
before = rss_kib()
sent = 0
stop = threading.Event()


def requests():
    global sent
    for j in range(4 * args.window):
        if stop.is_set():
            return
        sent += 1
        yield echo_request(65536, rid=f"u{j}")


call = stub.ModelStreamInfer(requests())  # never read
time.sleep(2)
held = rss_kib()
r = stub.ModelInfer(echo_request(rid="other"))
check(r.id == "other", "another client is served beside one that does not read")
print(f"a client that does not read: it sent {sent} of {4 * args.window} 64 KiB requests before flow control held "
      f"it; service RSS {before} -> {held} KiB ({held - before:+d} KiB)", flush=True)
check(sent < 4 * args.window, "the service read every request of a client that reads nothing")
check(held - before <= args.slack_kib + args.window * 64 * 2 + 4096,
      f"a client that does not read made the service grow {held - before} KiB")
stop.set()
call.cancel()

# 3. still there
check(stub.ServerLive(pb.ServerLiveRequest()).live, "live at the end")
r = stub.ModelInfer(echo_request(rid="end"))
check(r.id == "end", "served at the end")
harness.finish()
