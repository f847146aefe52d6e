#!/usr/bin/python3
"""Writes the Triton model repository the model tests serve, with python3-torch:
  DIR/mlp_ts/     the built-in kernel mlp's network (16 -> 64 -> 64 -> 4, ReLU, softmax, the
                  same weights: docs/protocol.md 5.2), scripted with torch.jit.script; inputs
                  and outputs by Triton's INPUT__0 / OUTPUT__0 convention; batched (64 rows),
                  dynamic batching, two instances
  DIR/edgeconv_ts/ examples/edgeconv's network (a ParticleNet-style EdgeConv jet tagger) in
                  PyTorch with the weights examples/edgeconv/reference.py draws, scripted:
                  "features" [-1, 50, 4] and "counts" [-1, 1] (reshaped to [-1]) in, "scores"
                  [-1, 2] out; batched (256 jets), dynamic batching
  DIR/mlp_named/  the same network bound by forward()'s argument name ("features" in, "scores"
                  out); unbatched, 3 jets [3, 16] -> [3, 4]; versions 1 and 2 on disk, version_policy
                  specific 2 (version 1 is a network with other weights: serving it would show)
Usage: make_repository.py DIR   (exit 77 with a reason when python3-torch is missing)
"""
import os
import sys
from typing import List

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


class EdgeConv(torch.nn.Module):
    """examples/edgeconv's network, as reference.py computes it, in float32 and batched over jets:
    per particle, its K nearest neighbours in (eta, phi) (a stable sort of the distances, the
    particle itself excluded); edge features [x_i, x_j - x_i] through two ReLU layers, averaged
    over the neighbours; particles averaged; a ReLU head; softmax."""

    def __init__(self, layers, k: int):
        super().__init__()
        self.k = k
        for i, (w, b) in enumerate(layers):
            self.register_buffer(f"w{i + 1}", torch.tensor(w, dtype=torch.float32))
            self.register_buffer(f"b{i + 1}", torch.tensor(b, dtype=torch.float32))

    def forward(self, features: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        jets = features.size(0)
        hidden = self.w2.size(0)
        out: List[torch.Tensor] = []
        for j in range(jets):
            n = int(counts[j])
            x = features[j, :n]
            h = torch.zeros(n, hidden)
            k = min(self.k, n - 1)
            if k > 0:
                d = (x[:, 0].unsqueeze(0) - x[:, 0].unsqueeze(1)) ** 2 + (x[:, 1].unsqueeze(0) - x[:, 1].unsqueeze(1)) ** 2
                d.fill_diagonal_(float("inf"))  # itself last: the others keep their stable order
                order = torch.sort(d, dim=1, stable=True).indices[:, :k]
                xi = x.unsqueeze(1).expand(n, k, x.size(1))
                edges = torch.cat([xi, x[order] - xi], dim=2)
                e = torch.relu(edges @ self.w1.t() + self.b1)
                e = torch.relu(e @ self.w2.t() + self.b2)
                h = e.mean(dim=1)
            pooled = h.mean(dim=0) if n > 0 else torch.zeros(hidden)
            z = torch.relu(pooled @ self.w3.t() + self.b3) @ self.w4.t() + self.b4
            out.append(torch.softmax(z, dim=0))
        return torch.stack(out) if jets > 0 else torch.zeros(0, self.w4.size(0))


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
    # examples/edgeconv's network, with reference.py's weights (float32, as the kernel has them).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "edgeconv"))
    import reference  # noqa: E402  (examples/edgeconv/reference.py)
    edgeconv = torch.jit.script(EdgeConv(reference.weights(), reference.K).eval())
    os.makedirs(f"{root}/edgeconv_ts/1", exist_ok=True)
    edgeconv.save(f"{root}/edgeconv_ts/1/model.pt")
    write(f"{root}/edgeconv_ts/config.pbtxt", """platform: "pytorch_libtorch"
max_batch_size: 256
input [ { name: "features" data_type: TYPE_FP32 dims: [ 50, 4 ] },
        { name: "counts" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } } ]
output [ { name: "scores" data_type: TYPE_FP32 dims: [ 2 ] } ]
dynamic_batching { max_queue_delay_microseconds: 200 }
""")
    # Python's own answers, for the tests to compare the served ones with.
    g = torch.Generator().manual_seed(3)
    counts = torch.tensor([[12], [50], [1], [0], [33]], dtype=torch.int32)
    features = torch.zeros(5, 50, 4)
    for j, n in enumerate(counts.view(-1).tolist()):
        features[j, :n] = torch.rand(n, 4, generator=g) * 2 - 1
    np.save(f"{root}/edgeconv_in_features.npy", features.numpy())
    np.save(f"{root}/edgeconv_in_counts.npy", counts.numpy())
    np.save(f"{root}/edgeconv_out.npy", edgeconv(features, counts.view(-1)).detach().numpy())
    x = torch.linspace(-3, 3, 48).reshape(3, 16)
    np.save(f"{root}/reference_in.npy", x.numpy())
    np.save(f"{root}/reference_out.npy", model(x).detach().numpy())
    print(f"wrote {root}: mlp_ts (batched, INPUT__0), mlp_named (version 2 of 2, bound by name), edgeconv_ts")


main()
