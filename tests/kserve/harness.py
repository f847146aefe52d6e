"""What the KServe v2 test clients share: the flags every one takes (--address, --stubs), the
Python stubs protoc made from our .proto (imported from --stubs), and counted checks.

    args, grpc, pb, rpc = harness.start(parser)   # parser: the client's own argparse flags
    harness.check(cond, "what was expected")      # prints FAILED: ... and counts it
    harness.finish()                              # PASS: 0 failed checks, or FAIL: N ... (exit 1)
"""
import importlib
import sys

failures = 0


def start(parser):
    parser.add_argument("--address", required=True, help="HOST:PORT of the KServe v2 server")
    parser.add_argument("--stubs", required=True, help="the directory of grpc_service_pb2*.py")
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)
    grpc = importlib.import_module("grpc")
    return args, grpc, importlib.import_module("grpc_service_pb2"), importlib.import_module("grpc_service_pb2_grpc")


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAILED:", what, flush=True)


def finish():
    print(("PASS" if failures == 0 else "FAIL") + f": {failures} failed checks", flush=True)
    sys.exit(1 if failures else 0)
