#!/usr/bin/python3
"""The EdgeConv reference: independent of the C++ and CUDA code (numpy, float64).

Reads what edgeconv_dump wrote (inputs and the CPU implementation's scores), regenerates the
weights from splitmix64 seed 7 as edgeconv.hpp documents them, computes the network in float64
with numpy (neighbours by a stable argsort of the distances), and compares.

  reference.py FILE [--tolerance 1e-5]     exit 0 when every score agrees, 1 otherwise
"""
import argparse
import sys

import numpy as np

MAX_PARTICLES, FEATURES, K, HIDDEN, HEAD, CLASSES, SEED = 50, 4, 16, 32, 16, 2, 7
MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * 2.0**-53


def weights():
    rng = SplitMix64(SEED)

    def glorot(n_out, n_in):
        limit = np.sqrt(6.0 / (n_in + n_out))
        w = [np.float32((2.0 * rng.uniform() - 1.0) * limit) for _ in range(n_out * n_in)]
        return np.array(w, dtype=np.float64).reshape(n_out, n_in)

    def bias(n):
        return np.array([np.float32(0.1 * (2.0 * rng.uniform() - 1.0)) for _ in range(n)], dtype=np.float64)

    layers = []
    for n_in, n_out in ((2 * FEATURES, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HEAD), (HEAD, CLASSES)):
        w = glorot(n_out, n_in)
        layers.append((w, bias(n_out)))
    return layers


def relu(x):
    return np.maximum(x, 0.0)


def jet_scores(x, layers):
    """x: float64[n, 4], one jet's particles. Returns float64[2]."""
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = layers
    n = len(x)
    h = np.zeros((n, HIDDEN))
    for i in range(n):
        d = (x[:, 0] - x[i, 0]) ** 2 + (x[:, 1] - x[i, 1]) ** 2
        order = [j for j in np.argsort(d, kind="stable") if j != i][:K]
        if not order:
            continue
        xj = x[order]
        edges = np.hstack([np.repeat(x[i : i + 1], len(order), axis=0), xj - x[i]])
        e1 = relu(edges @ w1.T + b1)
        e2 = relu(e1 @ w2.T + b2)
        h[i] = e2.mean(axis=0)
    pooled = h.mean(axis=0) if n > 0 else np.zeros(HIDDEN)
    z = relu(pooled @ w3.T + b3) @ w4.T + b4
    z = np.exp(z - z.max())
    return z / z.sum()


def read_dump(path):
    """What edgeconv_dump wrote: features float32[jets, 50, 4], counts int32[jets], the CPU
    implementation's scores float32[jets, 2]."""
    raw = open(path, "rb").read()
    if raw[:8] != b"EDGECONV":
        sys.exit(f"reference.py: {path} is not an edgeconv_dump file")
    jets = int(np.frombuffer(raw, dtype="<u8", count=1, offset=8)[0])
    at = 16
    features = np.frombuffer(raw, dtype="<f4", count=jets * MAX_PARTICLES * FEATURES, offset=at)
    at += features.nbytes
    counts = np.frombuffer(raw, dtype="<i4", count=jets, offset=at)
    at += counts.nbytes
    scores = np.frombuffer(raw, dtype="<f4", count=jets * CLASSES, offset=at).reshape(jets, CLASSES)
    if at + scores.nbytes != len(raw):
        sys.exit(f"reference.py: {path} has {len(raw)} bytes, expected {at + scores.nbytes}")
    return features.reshape(jets, MAX_PARTICLES, FEATURES), counts, scores


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--tolerance", type=float, default=1e-5, help="largest |CPU - reference| allowed per score")
    a = ap.parse_args()
    features, counts, scores = read_dump(a.file)
    jets = len(counts)
    x = features.astype(np.float64)
    layers = weights()
    ref = np.array([jet_scores(x[j, : counts[j]], layers) for j in range(jets)])
    diff = np.abs(ref - scores.astype(np.float64))
    worst = int(diff.max(axis=1).argmax()) if jets else 0
    print(
        f"reference.py: {jets} jets, {int(counts.sum())} particles; largest |CPU - reference| = {diff.max():.2e} "
        f"(jet {worst}), tolerance {a.tolerance:g}; mean tagger score {scores[:, 1].mean():.4f}"
    )
    if not np.all(diff <= a.tolerance):
        print(f"FAIL: jet {worst}: CPU {scores[worst]}, reference {ref[worst]}")
        return 1
    print("PASS: the CPU implementation agrees with the independent reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
