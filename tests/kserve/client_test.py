#!/usr/bin/python3
"""A KServe v2 client written from the specification (the Open Inference Protocol's gRPC
service, Triton's extensions), against offload-serve --kserve: every RPC the front end serves,
each error it answers, raw and typed contents, shapes, the stream, more requests in flight than
the receiver's credits, and a malformed message. Results are checked against numpy
reimplementations of the built-in kernels written from docs/protocol.md, section 5.2.

Usage: client_test.py --address HOST:PORT --stubs DIR [--max-message-bytes N] [--tensors]
(--tensors: the service also serves the test plugin's models "tensors" and "halves", one input of
every datatype between them, each given back reversed with its shape; every datatype and shape
is then checked.)
(DIR holds grpc_service_pb2.py and grpc_service_pb2_grpc.py, made by protoc from src/kserve/proto.)
Prints one line per failed check and ends with "PASS: 0 failed checks" or "FAIL: N failed checks".
"""
import argparse
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import harness  # noqa: E402  (tests/kserve/harness.py)

parser = argparse.ArgumentParser()
parser.add_argument("--max-message-bytes", type=int, default=0)
parser.add_argument("--tensors", action="store_true", help="the service has tests/plugins' 'tensors' and 'halves'")
args, grpc, pb, rpc = harness.start(parser)
check = harness.check


# ---- the built-in kernels, from docs/protocol.md 5.2 ----
M64 = (1 << 64) - 1


def mlp_weights():
    s = 2024

    def draw():
        nonlocal s
        s = (s + 0x9E3779B97F4A7C15) & M64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    layers = []
    for n_in, n_out in ((16, 64), (64, 64), (64, 4)):
        scale = np.sqrt(6.0 / (n_in + n_out))
        w = np.array([(2.0 * ((draw() >> 11) * 2.0**-53) - 1.0) * scale for _ in range(n_in * n_out)])
        b = np.array([0.1 * (2.0 * ((draw() >> 11) * 2.0**-53) - 1.0) for _ in range(n_out)])
        layers.append((w.astype(np.float32).reshape(n_out, n_in), b.astype(np.float32)))
    return layers


WEIGHTS = mlp_weights()


def mlp(features):  # [jets, 16] -> [jets, 4]
    x = features.astype(np.float32)
    for layer, (w, b) in enumerate(WEIGHTS):
        x = (x.astype(np.float64) @ w.T.astype(np.float64) + b).astype(np.float32)
        if layer < 2:
            x = np.maximum(x, 0)
    e = np.exp((x - x.max(axis=1, keepdims=True)).astype(np.float64))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def synthetic(x, iterations):
    acc = np.zeros_like(x)
    for _ in range(iterations):
        acc = 0.5 * acc + x
    return acc


def clustering(energy, rows, cols, threshold):
    label = np.full(rows * cols, -1, np.int32)
    for start in range(rows * cols):
        if label[start] != -1 or not energy[start] > threshold:
            continue
        stack, members = [start], []
        label[start] = start
        while stack:
            i = stack.pop()
            members.append(i)
            r, c = divmod(i, cols)
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                j = rr * cols + cc
                if 0 <= rr < rows and 0 <= cc < cols and label[j] == -1 and energy[j] > threshold:
                    label[j] = start
                    stack.append(j)
    sums = np.zeros(rows * cols, np.float32)
    for start in set(label[label >= 0].tolist()):
        idx = np.nonzero(label == start)[0]
        sums[idx] = np.float32(sum(float(energy[i]) for i in sorted(idx)))
    return label, sums


# ---- requests ----
# The datatypes: numpy's type (BF16 as its 16 bits) and the typed contents field (the
# specification's InferTensorContents; FP16 and BF16 have none).
NUMPY = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
         "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "UINT16": np.uint16, "UINT32": np.uint32,
         "UINT64": np.uint64, "FP16": np.float16, "BF16": np.uint16}
FIELD = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents", "INT64": "int64_contents",
         "UINT8": "uint_contents", "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
         "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents"}


def tensor(req, name, datatype, array, raw=True):
    t = req.inputs.add()
    t.name, t.datatype = name, datatype
    t.shape.extend(array.shape)
    if raw:
        req.raw_input_contents.append(array.tobytes())
    else:
        getattr(t.contents, FIELD[datatype]).extend(array.flatten().tolist())
    return t


def output(resp, name):
    names = [o.name for o in resp.outputs]
    i = names.index(name)
    o = resp.outputs[i]
    return np.frombuffer(resp.raw_output_contents[i], dtype=NUMPY[o.datatype]).reshape(list(o.shape))


def mlp_request(features, raw=True, rid=""):
    req = pb.ModelInferRequest(model_name="mlp", id=rid)
    tensor(req, "features", "FP32", features, raw)
    return req


def expect_error(call, code, text, what):
    try:
        call()
    except grpc.RpcError as e:
        check(e.code() == code, f"{what}: status {e.code()}, expected {code} ({e.details()})")
        check(text in e.details(), f"{what}: '{text}' not in '{e.details()}'")
        return
    check(False, f"{what}: no error")


channel = grpc.insecure_channel(args.address, options=[("grpc.max_send_message_length", 2**31 - 1),
                                                       ("grpc.max_receive_message_length", 2**31 - 1)])
stub = rpc.GRPCInferenceServiceStub(channel)
rng = np.random.default_rng(7)

# Server health and metadata.
check(stub.ServerLive(pb.ServerLiveRequest()).live, "ServerLive")
check(stub.ServerReady(pb.ServerReadyRequest()).ready, "ServerReady")
meta = stub.ServerMetadata(pb.ServerMetadataRequest())
check(meta.name == "mpi-offload" and "statistics" in meta.extensions and "model_configuration" in meta.extensions,
      f"ServerMetadata: {meta}")
index = stub.RepositoryIndex(pb.RepositoryIndexRequest())
MODELS = ("clustering", "echo", "mlp", "synthetic") + (("halves", "tensors") if args.tensors else ())
check(sorted((m.name, m.version, m.state) for m in index.models) == [(n, "1", "READY") for n in sorted(MODELS)],
      f"RepositoryIndex: {index}")
check(stub.ModelReady(pb.ModelReadyRequest(name="mlp")).ready, "ModelReady mlp")
check(stub.ModelReady(pb.ModelReadyRequest(name="mlp", version="1")).ready, "ModelReady mlp 1")
check(not stub.ModelReady(pb.ModelReadyRequest(name="mlp", version="2")).ready, "ModelReady mlp 2")
check(not stub.ModelReady(pb.ModelReadyRequest(name="nope")).ready, "ModelReady nope")

# Model metadata: shapes with the batch dimension (-1) first for a batched model.
md = stub.ModelMetadata(pb.ModelMetadataRequest(name="mlp"))
check(md.name == "mlp" and list(md.versions) == ["1"], f"ModelMetadata mlp: {md}")
check([(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("features", "FP32", [-1, 16])], "mlp inputs")
check([(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("scores", "FP32", [-1, 4])], "mlp outputs")
md = stub.ModelMetadata(pb.ModelMetadataRequest(name="clustering"))
check([(t.name, t.datatype, list(t.shape)) for t in md.inputs] ==
      [("energy", "FP32", [-1]), ("shape", "INT32", [2]), ("threshold", "FP32", [1])], f"clustering inputs: {md}")
expect_error(lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")), grpc.StatusCode.NOT_FOUND,
             "Request for unknown model: 'nope' is not found", "ModelMetadata of an unknown model")
expect_error(lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="mlp", version="7")),
             grpc.StatusCode.NOT_FOUND, "'mlp' version 7 is not found", "ModelMetadata of an unknown version")

# Model configuration: Triton's convention, dims without the batch dimension.
cfg = stub.ModelConfig(pb.ModelConfigRequest(name="mlp")).config
check(cfg.name == "mlp" and cfg.max_batch_size > 0 and cfg.HasField("dynamic_batching"), f"ModelConfig mlp: {cfg}")
check([(i.name, i.data_type, list(i.dims)) for i in cfg.input] == [("features", 11, [16])], "mlp config input")
check([(o.name, o.data_type, list(o.dims)) for o in cfg.output] == [("scores", 11, [4])], "mlp config output")
if args.max_message_bytes:
    check(cfg.max_batch_size == args.max_message_bytes // 64, f"max_batch_size {cfg.max_batch_size}")
cfg = stub.ModelConfig(pb.ModelConfigRequest(name="synthetic")).config
check(cfg.max_batch_size == 0 and [list(i.dims) for i in cfg.input] == [[-1], [1]], f"ModelConfig synthetic: {cfg}")
expect_error(lambda: stub.ModelConfig(pb.ModelConfigRequest(name="nope")), grpc.StatusCode.NOT_FOUND,
             "unknown model", "ModelConfig of an unknown model")

# Inference: every built-in model, raw and typed contents, against numpy.
feats = rng.normal(size=(5, 16)).astype(np.float32) * 3
for raw in (True, False):
    resp = stub.ModelInfer(mlp_request(feats, raw, rid="r-1"))
    got = output(resp, "scores")
    check(resp.model_name == "mlp" and resp.model_version == "1" and resp.id == "r-1", f"mlp response header {resp}")
    check(got.shape == (5, 4), f"mlp scores shape {got.shape}")
    check(np.allclose(got, mlp(feats), rtol=1e-5, atol=1e-6), f"mlp scores (raw={raw}) differ from numpy")
one_by_one = np.concatenate([output(stub.ModelInfer(mlp_request(feats[j:j + 1])), "scores") for j in range(5)])
check(np.array_equal(one_by_one, output(stub.ModelInfer(mlp_request(feats)), "scores")), "mlp rows are independent")
check(output(stub.ModelInfer(mlp_request(np.zeros((0, 16), np.float32))), "scores").shape == (0, 4), "mlp 0 jets")

x = rng.uniform(-5, 5, size=1000)
for raw in (True, False):
    req = pb.ModelInferRequest(model_name="synthetic", model_version="1")
    tensor(req, "x", "FP64", x, raw)
    tensor(req, "iterations", "INT64", np.array([50], np.int64), raw)
    y = output(stub.ModelInfer(req), "y")
    check(y.shape == (1000,) and np.array_equal(y, synthetic(x, 50)), f"synthetic (raw={raw}) differs from numpy")

rows, cols = 9, 11
energy = np.where(rng.random(rows * cols) < 0.45, rng.uniform(1, 10, rows * cols), 0).astype(np.float32)
label, sums = clustering(energy, rows, cols, 0.5)
for raw in (True, False):
    req = pb.ModelInferRequest(model_name="clustering")
    tensor(req, "energy", "FP32", energy, raw)
    tensor(req, "shape", "INT32", np.array([rows, cols], np.int32), raw)
    tensor(req, "threshold", "FP32", np.array([0.5], np.float32), raw)
    resp = stub.ModelInfer(req)
    check([o.name for o in resp.outputs] == ["cluster", "cluster_energy"], "clustering outputs in order")
    check(np.array_equal(output(resp, "cluster"), label), f"clustering labels (raw={raw})")
    check(np.allclose(output(resp, "cluster_energy"), sums, rtol=1e-6), f"clustering sums (raw={raw})")
    # Only the outputs asked for, in the order asked.
    req.outputs.add().name = "cluster_energy"
    resp = stub.ModelInfer(req)
    check([o.name for o in resp.outputs] == ["cluster_energy"] and len(resp.raw_output_contents) == 1,
          "clustering: the one output asked for")

payload = rng.integers(0, 256, 4097).astype(np.uint8)
for raw in (True, False):
    req = pb.ModelInferRequest(model_name="echo")
    tensor(req, "payload", "UINT8", payload, raw)
    check(np.array_equal(output(stub.ModelInfer(req), "payload"), payload), f"echo (raw={raw})")

bad = grpc.StatusCode.INVALID_ARGUMENT

# Every datatype and shape: the test plugin's "tensors" (the eleven datatypes with a typed
# contents field) and "halves" (FP16, BF16: raw only); y_T is x_T reversed, with x_T's shape.
if args.tensors:
    declared = {}
    for model in ("tensors", "halves"):
        md = stub.ModelMetadata(pb.ModelMetadataRequest(name=model))
        declared[model] = {t.name: (t.datatype, list(t.shape)) for t in md.inputs}
        check([(t.name, t.datatype, list(t.shape)) for t in md.outputs] ==
              [("y" + k[1:], dt, shp) for k, (dt, shp) in declared[model].items()], f"{model} outputs: {md}")
    check(sorted(dt for m in declared.values() for dt, _ in m.values()) == sorted(NUMPY),
          f"one input per datatype: {declared}")
    types = [i.data_type for m in declared for i in stub.ModelConfig(pb.ModelConfigRequest(name=m)).config.input]
    check(sorted(types) == list(range(1, 13)) + [14], f"configuration types: {types}")

    def concrete(shape, n):
        return [n if d == -1 else d for d in shape]

    def values(datatype, shape):
        n = int(np.prod(shape))
        if datatype == "BOOL":
            return (rng.random(n) < 0.5).reshape(shape)
        if datatype in ("FP16", "FP32", "FP64"):
            return rng.normal(size=n).astype(NUMPY[datatype]).reshape(shape)
        if datatype == "BF16":  # the upper halves of float32 values
            return (rng.normal(size=n).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).reshape(shape)
        info = np.iinfo(NUMPY[datatype])
        return rng.integers(info.min, info.max, n, dtype=NUMPY[datatype], endpoint=True).reshape(shape)

    for model, inputs in declared.items():
        for n in (3, 1, 0):
            for raw in (True, False) if model == "tensors" else (True,):
                req = pb.ModelInferRequest(model_name=model)
                sent = {name: values(dt, concrete(shape, n)) for name, (dt, shape) in inputs.items()}
                for name, arr in sent.items():
                    tensor(req, name, inputs[name][0], arr, raw)
                resp = stub.ModelInfer(req)
                for name, arr in sent.items():
                    o = [t for t in resp.outputs if t.name == "y" + name[1:]]
                    check(len(o) == 1 and o[0].datatype == inputs[name][0], f"{model} {name}: output {o}")
                    y = output(resp, "y" + name[1:])
                    check(y.shape == arr.shape and np.array_equal(y.flatten(), arr.flatten()[::-1]),
                          f"{model} {name} (n={n}, raw={raw}): {y.shape} for {arr.shape}, or not reversed")
    # FP16 and BF16 have no typed contents field: raw only.
    req = pb.ModelInferRequest(model_name="halves")
    for name, (dt, shape) in declared["halves"].items():
        t = req.inputs.add()
        t.name, t.datatype = name, dt
        t.shape.extend(concrete(shape, 1))
    expect_error(lambda: stub.ModelInfer(req), bad, "input 'x_f16' is FP16, which has no typed contents field",
                 "FP16 without raw contents")
    # Narrow datatypes in their 32-bit fields: a value out of range is refused, naming it.
    for datatype, value, text in (("INT8", 300, "value 300 (element 0) is outside -128..127"),
                                  ("INT16", -40000, "value -40000 (element 0) is outside -32768..32767"),
                                  ("UINT16", 70000, "value 70000 (element 0) is outside 0..65535")):
        req = pb.ModelInferRequest(model_name="tensors")
        for name, (dt, shape) in declared["tensors"].items():
            tensor(req, name, dt, values(dt, concrete(shape, 1)), raw=False)
            if dt == datatype:
                getattr(req.inputs[-1].contents, FIELD[dt])[0] = value
                where = f"input '{name}' ({dt}): {text}"
        expect_error(lambda: stub.ModelInfer(req), bad, where, f"{datatype} out of range")
    # A shape that does not fit the declared one names both.
    req = pb.ModelInferRequest(model_name="tensors")
    for name, (dt, shape) in declared["tensors"].items():
        tensor(req, name, dt, values(dt, [2, 2, 3] if dt == "INT16" else concrete(shape, 2)))
    expect_error(lambda: stub.ModelInfer(req), bad, "input 'x_i16' has shape [2,2,3], the model takes [-1,2,2]",
                 "a shape that does not fit")

# Errors: each names what was wrong, with Triton's status codes.
expect_error(lambda: stub.ModelInfer(pb.ModelInferRequest(model_name="nope")), grpc.StatusCode.NOT_FOUND,
             "Request for unknown model: 'nope' is not found", "unknown model")
req = mlp_request(feats)
req.model_version = "3"
expect_error(lambda: stub.ModelInfer(req), grpc.StatusCode.NOT_FOUND, "version 3 is not found", "unknown version")
req.model_version = "latest"
expect_error(lambda: stub.ModelInfer(req), bad, "invalid model version specified 'latest'", "bad version")
expect_error(lambda: stub.ModelInfer(pb.ModelInferRequest(model_name="mlp")), bad, "input 'features' is missing",
             "missing input")
req = mlp_request(feats)
tensor(req, "extra", "FP32", feats)
expect_error(lambda: stub.ModelInfer(req), bad, "unexpected input 'extra'", "unexpected input")
req = pb.ModelInferRequest(model_name="mlp")
tensor(req, "features", "FP64", feats.astype(np.float64))
expect_error(lambda: stub.ModelInfer(req), bad, "input 'features' is FP64, the model takes FP32", "wrong dtype")
expect_error(lambda: stub.ModelInfer(mlp_request(feats[:, :15].copy())), bad,
             "input 'features' has shape [5,15], the model takes [-1,16]", "wrong shape")
req = mlp_request(feats)
req.inputs[0].shape[0] = -1
expect_error(lambda: stub.ModelInfer(req), bad, "has shape [-1,16]", "-1 in a request's shape")
req = mlp_request(feats)
req.raw_input_contents[0] = req.raw_input_contents[0][:-4]
expect_error(lambda: stub.ModelInfer(req), bad, "is 320 bytes, raw_input_contents holds 316", "raw size")
req = mlp_request(feats)
req.inputs[0].contents.fp32_contents.extend([1.0])
expect_error(lambda: stub.ModelInfer(req), bad, "contents as well as raw_input_contents", "raw and contents")
req = mlp_request(feats, raw=False)
req.inputs[0].contents.fp32_contents.append(1.0)
expect_error(lambda: stub.ModelInfer(req), bad, "needs 80 values", "contents count")
req = mlp_request(feats, raw=False)
req.inputs[0].contents.int_contents.append(1)
expect_error(lambda: stub.ModelInfer(req), bad, "another type's field", "contents in another type's field")
req = mlp_request(feats)
req.outputs.add().name = "nope"
expect_error(lambda: stub.ModelInfer(req), bad, "unexpected output 'nope'", "unknown output")
req = pb.ModelInferRequest(model_name="synthetic")
tensor(req, "x", "FP64", x)
tensor(req, "iterations", "INT64", np.array([-3], np.int64))
expect_error(lambda: stub.ModelInfer(req), bad, "input 'iterations' is -3", "the kernel's own input check")
req = pb.ModelInferRequest(model_name="echo")
tensor(req, "payload", "UINT8", payload, raw=False)
req.inputs[0].contents.uint_contents[0] = 300
expect_error(lambda: stub.ModelInfer(req), bad, "input 'payload' (UINT8): value 300 (element 0) is outside 0..255",
             "UINT8 out of range")
req = mlp_request(feats)
req.parameters["priority"].string_param = "high"
expect_error(lambda: stub.ModelInfer(req), bad, "parameter 'priority' must be an int64_param", "bad parameter")
if args.max_message_bytes:
    big = np.zeros(args.max_message_bytes // 4 + 16, np.float32)
    req = pb.ModelInferRequest(model_name="echo")
    tensor(req, "payload", "UINT8", big.view(np.uint8))
    expect_error(lambda: stub.ModelInfer(req), grpc.StatusCode.RESOURCE_EXHAUSTED, "over this server's limit",
                 "over the message limit")

# A malformed message: bytes that are no ModelInferRequest. gRPC answers it; the server goes on.
garbage = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    garbage(b"\xff\xff\xff\xff\x0f not protobuf")
    check(False, "malformed protobuf answered OK")
except grpc.RpcError as e:
    # gRPC itself answers a message that does not parse (1.51's callback server: UNIMPLEMENTED).
    check(e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT),
          f"malformed protobuf: {e.code()}")
check(stub.ServerLive(pb.ServerLiveRequest()).live, "live after a malformed message")

# More requests in flight than the receiver's credits (8 by default): they wait their turn.
with ThreadPoolExecutor(max_workers=64) as pool:
    jobs = [pool.submit(stub.ModelInfer, mlp_request(feats[j % 5:j % 5 + 1], rid=str(j))) for j in range(200)]
    results = [f.result() for f in jobs]
expected = mlp(feats)
check(all(r.id == str(j) for j, r in enumerate(results)), "ids echoed under load")
check(all(np.allclose(output(r, "scores")[0], expected[j % 5], rtol=1e-5, atol=1e-6) for j, r in enumerate(results)),
      "results under load")

# The stream: answers in any order, each with its id; an error is an answer with error_message.
def stream_requests():
    for j in range(20):
        if j == 7:
            yield pb.ModelInferRequest(model_name="nope", id="s7")
        else:
            yield mlp_request(feats[j % 5:j % 5 + 1], rid=f"s{j}")


answers = list(stub.ModelStreamInfer(stream_requests()))
check(len(answers) == 20, f"stream: {len(answers)} answers of 20")
errors = [a for a in answers if a.error_message]
check(len(errors) == 1 and "unknown model: 'nope'" in errors[0].error_message, f"stream errors: {errors}")
ok = {a.infer_response.id: output(a.infer_response, "scores")[0] for a in answers if not a.error_message}
check(sorted(ok) == sorted(f"s{j}" for j in range(20) if j != 7), "stream ids")
check(all(np.allclose(v, expected[int(k[1:]) % 5], rtol=1e-5, atol=1e-6) for k, v in ok.items()), "stream results")

# Statistics: what was served, per model.
stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name="mlp")).model_stats
check(len(stats) == 1 and stats[0].name == "mlp" and stats[0].version == "1", f"ModelStatistics: {stats}")
s = stats[0]
check(s.inference_stats.success.count >= 200 + 19 and s.inference_stats.queue.count == s.inference_stats.success.count,
      f"statistics counts: {s}")
check(s.inference_stats.fail.count >= 10 and s.inference_count >= s.execution_count, f"statistics failures: {s}")
check(s.last_inference > 0 and s.inference_stats.compute_infer.ns > 0, "statistics times")
check(len(stub.ModelStatistics(pb.ModelStatisticsRequest()).model_stats) == len(MODELS), "statistics of every model")
expect_error(lambda: stub.ModelStatistics(pb.ModelStatisticsRequest(name="nope")), bad,
             "requested model 'nope' is not available", "statistics of an unknown model")

harness.finish()
