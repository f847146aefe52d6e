#!/usr/bin/python3
"""examples/edgeconv's hand-written CPU kernel against the same network in PyTorch, jet by jet:
the scores edgeconv_dump wrote (the C++ kernel's) against the repository's edgeconv_ts model
(tests/models/make_repository.py, TorchScript) run here by torch on the dump's inputs.
Usage: edgeconv_check.py DUMP_FILE REPOSITORY [--tolerance 1e-5]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "edgeconv"))
import reference  # noqa: E402  (examples/edgeconv/reference.py: the dump's format)

ap = argparse.ArgumentParser()
ap.add_argument("dump")
ap.add_argument("repository")
ap.add_argument("--tolerance", type=float, default=1e-5)
a = ap.parse_args()
features, counts, scores = reference.read_dump(a.dump)
model = torch.jit.load(f"{a.repository}/edgeconv_ts/1/model.pt")
got = model(torch.from_numpy(features.copy()), torch.from_numpy(counts.copy())).detach().numpy()
diff = np.abs(got.astype(np.float64) - scores.astype(np.float64))
worst = int(diff.max(axis=1).argmax()) if len(counts) else 0
print(f"edgeconv_check.py: {len(counts)} jets; largest |C++ kernel - TorchScript| = {diff.max():.2e} (jet {worst}), "
      f"tolerance {a.tolerance:g}")
if not np.all(diff <= a.tolerance):
    print(f"FAIL: jet {worst}: C++ {scores[worst]}, TorchScript {got[worst]}")
    sys.exit(1)
print("PASS: the TorchScript EdgeConv agrees with the hand-written kernel jet by jet")
