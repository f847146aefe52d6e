#!/usr/bin/python3
"""A KServe v2 client (stubs from our .proto) against offload-serve --model-repository: the
TorchScript models' metadata and configuration, Python's own answer (reference_*.npy, written
by make_repository.py with torch) against the served one, the version served, a bad request
answered with a clear status while the service stays up.
Usage: client.py --address HOST:PORT --stubs DIR --repository DIR
Ends with "PASS: 0 failed checks" or "FAIL: N failed checks".
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kserve"))
import harness  # noqa: E402  (tests/kserve/harness.py)

parser = argparse.ArgumentParser()
parser.add_argument("--repository", required=True)
args, grpc, pb, rpc = harness.start(parser)
check = harness.check


stub = rpc.GRPCInferenceServiceStub(grpc.insecure_channel(args.address))
x = np.load(f"{args.repository}/reference_in.npy")
expected = np.load(f"{args.repository}/reference_out.npy")

md = stub.ModelMetadata(pb.ModelMetadataRequest(name="mlp_ts"))
check(md.versions == ["1"] and [(t.name, t.datatype, list(t.shape)) for t in md.inputs] ==
      [("INPUT__0", "FP32", [-1, 16])], f"mlp_ts metadata: {md}")
check([(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("OUTPUT__0", "FP32", [-1, 4])],
      f"mlp_ts outputs: {md}")
cfg = stub.ModelConfig(pb.ModelConfigRequest(name="mlp_ts")).config
check(cfg.max_batch_size == 64 and [list(i.dims) for i in cfg.input] == [[16]], f"mlp_ts config: {cfg}")
md = stub.ModelMetadata(pb.ModelMetadataRequest(name="mlp_named"))
check(list(md.versions) == ["2"], f"mlp_named serves version 2 only: {md.versions}")


def infer(model, name, array, version=""):
    req = pb.ModelInferRequest(model_name=model, model_version=version)
    t = req.inputs.add()
    t.name, t.datatype = name, "FP32"
    t.shape.extend(array.shape)
    req.raw_input_contents.append(array.astype(np.float32).tobytes())
    resp = stub.ModelInfer(req)
    o = resp.outputs[0]
    return np.frombuffer(resp.raw_output_contents[0], np.float32).reshape(list(o.shape)), o.name


y, name = infer("mlp_ts", "INPUT__0", x)
check(name == "OUTPUT__0" and y.shape == (3, 4), f"mlp_ts output {name} {y.shape}")
check(np.allclose(y, expected, rtol=1e-5, atol=1e-6), f"mlp_ts: served {y} differs from Python's {expected}")
y, name = infer("mlp_named", "features", x, version="2")
check(name == "scores" and np.allclose(y, expected, rtol=1e-5, atol=1e-6), f"mlp_named version 2: {y}")
for shape, text in (((2, 15), "has shape [2,15], the model takes [-1,16]"),
                    ((65, 16), "over its max_batch_size of 64")):
    try:
        infer("mlp_ts", "INPUT__0", np.zeros(shape, np.float32))
        check(False, f"a {shape} input was answered")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and text in e.details(), f"{shape}: {e.code()} {e.details()}")
check(stub.ServerLive(pb.ServerLiveRequest()).live, "live after the bad requests")

# examples/edgeconv's network in TorchScript: two inputs, the counts reshaped by the configuration.
md = stub.ModelMetadata(pb.ModelMetadataRequest(name="edgeconv_ts"))
check([(t.name, t.datatype, list(t.shape)) for t in md.inputs] ==
      [("features", "FP32", [-1, 50, 4]), ("counts", "INT32", [-1, 1])], f"edgeconv_ts metadata: {md}")
req = pb.ModelInferRequest(model_name="edgeconv_ts")
for name, datatype, array in (("features", "FP32", np.load(f"{args.repository}/edgeconv_in_features.npy")),
                              ("counts", "INT32", np.load(f"{args.repository}/edgeconv_in_counts.npy"))):
    t = req.inputs.add()
    t.name, t.datatype = name, datatype
    t.shape.extend(array.shape)
    req.raw_input_contents.append(array.tobytes())
resp = stub.ModelInfer(req)
scores = np.frombuffer(resp.raw_output_contents[0], np.float32).reshape(list(resp.outputs[0].shape))
reference = np.load(f"{args.repository}/edgeconv_out.npy")
check(scores.shape == (5, 2) and np.allclose(scores, reference, rtol=0, atol=1e-6),
      f"edgeconv_ts: served {scores} differs from PyTorch's {reference}")
y, _ = infer("mlp_ts", "INPUT__0", x)
check(np.allclose(y, expected, rtol=1e-5, atol=1e-6), "mlp_ts after the bad requests")
harness.finish()
