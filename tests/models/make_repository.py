#!/usr/bin/python3
"""Writes the Triton model repository the model tests serve, with python3-torch:
  DIR/mlp_ts/     the built-in kernel mlp's network (16 -> 64 -> 64 -> 4, ReLU, softmax, the
                  same weights: docs/protocol.md 5.2), scripted with torch.jit.script; inputs
                  and outputs by Triton's INPUT__0 / OUTPUT__0 convention; batched (64 rows),
                  dynamic batching, two instances
  DIR/mlp_named/  the same network bound by forward()'s argument name ("features" in, "scores"
                  out); unbatched, 3 jets [3, 16] -> [3, 4]; versions 1 and 2 on disk, version_policy
                  specific 2 (version 1 is a network with other weights: serving it would show)
Usage: make_repository.py DIR   (exit 77 with a reason when python3-torch is missing)
"""
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"SKIP: no python3-torch ({e}); scripts/bootstrap.sh installs it")
    sys.exit(77)

M64 = (1 << 64) - 1


def mlp_weights(seed):
    """The built-in mlp's weights (kernels/mlp.cpp): splitmix64 from the seed, Glorot uniform."""
    s = seed

    def uniform():
        nonlocal s
        s = (s + 0x9E3779B97F4A7C15) & M64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return ((z ^ (z >> 31)) >> 11) * 2.0**-53

    layers = []
    for n_in, n_out in ((16, 64), (64, 64), (64, 4)):
        scale = np.sqrt(6.0 / (n_in + n_out))
        w = np.array([(2.0 * uniform() - 1.0) * scale for _ in range(n_in * n_out)], np.float32)
        b = np.array([0.1 * (2.0 * uniform() - 1.0) for _ in range(n_out)], np.float32)
        layers.append((w.reshape(n_out, n_in), b))
    return layers


class MLP(torch.nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.l1 = torch.nn.Linear(16, 64)
        self.l2 = torch.nn.Linear(64, 64)
        self.l3 = torch.nn.Linear(64, 4)
        with torch.no_grad():
            for lin, (w, b) in zip((self.l1, self.l2, self.l3), layers):
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.l1(features))
        x = torch.relu(self.l2(x))
        return torch.softmax(self.l3(x), dim=1)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main():
    root = sys.argv[1]
    model = torch.jit.script(MLP(mlp_weights(2024)).eval())
    os.makedirs(f"{root}/mlp_ts/1", exist_ok=True)
    model.save(f"{root}/mlp_ts/1/model.pt")
    write(f"{root}/mlp_ts/config.pbtxt", """name: "mlp_ts"
platform: "pytorch_libtorch"
max_batch_size: 64
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]
dynamic_batching { max_queue_delay_microseconds: 500 }
instance_group [ { count: 2 kind: KIND_CPU } ]
""")
    os.makedirs(f"{root}/mlp_named/1", exist_ok=True)
    os.makedirs(f"{root}/mlp_named/2", exist_ok=True)
    torch.jit.script(MLP(mlp_weights(7)).eval()).save(f"{root}/mlp_named/1/model.pt")
    model.save(f"{root}/mlp_named/2/model.pt")
    write(f"{root}/mlp_named/config.pbtxt", """backend: "pytorch"
max_batch_size: 0
input [ { name: "features" data_type: TYPE_FP32 dims: [ 3, 16 ] } ]
output [ { name: "scores" data_type: TYPE_FP32 dims: [ 3, 4 ] } ]
version_policy: { specific: { versions: [ 2 ] } }
""")
    # Python's own answer for 3 jets, for the tests to compare the served one with.
    x = torch.linspace(-3, 3, 48).reshape(3, 16)
    np.save(f"{root}/reference_in.npy", x.numpy())
    np.save(f"{root}/reference_out.npy", model(x).detach().numpy())
    print(f"wrote {root}: mlp_ts (batched, INPUT__0), mlp_named (version 2 of 2, bound by name)")


main()
