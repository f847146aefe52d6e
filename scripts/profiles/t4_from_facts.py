#!/usr/bin/env python3
"""Writes the NVIDIA T4 device profiles (profiles/t4.json, profiles/t4-trt.json) from the
published Triton perf_analyzer tables in ../shared/facts/sonic-miniaod-t4.md, so that no figure
is typed by hand. Each model's table: batch b against t(b) = b / (inferences per second at b),
in ms: the device's service time per batch at saturation (perf_analyzer kept 4 requests in
flight, so the server was never idle). One batch at a time then reproduces the measured
throughput at every batch size. It understates the time of a lone batch at low load (the
server's compute time for one batch of 1 is about twice 1/throughput: the table's "compute"
columns, kept in each model's "compute_ms" for reference).

Usage: scripts/profiles/t4_from_facts.py [FACTS_FILE] [OUT_DIR]"""
import json
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[2]
facts = Path(sys.argv[1]) if len(sys.argv) > 1 else root.parent / "shared/facts/sonic-miniaod-t4.md"
out_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else root / "profiles"
text = facts.read_text()
SOURCE = ("CMS-MLG-23-001, arXiv:2402.15366 [P-data]: Triton perf_analyzer on an NVIDIA T4, concurrency 4, "
          "as copied in shared/facts/sonic-miniaod-t4.md")


def table(label):
    """Rows of the table under **label**: (batch, inferences/s, compute input+infer+output µs)."""
    m = re.search(r"\*\*" + re.escape(label) + r"\*\*.*?\n\n(\|.*?)(?:\n\n|\Z)", text, re.S)
    if not m:
        sys.exit(f"t4_from_facts: no table **{label}** in {facts}")
    rows = []
    for line in m.group(1).splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        b, rate = float(cells[0]), float(cells[1])
        rows.append((b, rate, float(cells[3]) + float(cells[4]) + float(cells[5])))
    return rows


def model(label, backend, one_at_a_time=None):
    """t(b) = b / throughput; with `one_at_a_time` (its reason), t(b) = the compute time of one
    batch (input + infer + output), executions one after another."""
    rows = table(label)
    if one_at_a_time:
        source = f"{SOURCE}: table {label} ({backend}); t(b) = compute input + infer + output of a batch: {one_at_a_time}"
        times = [[int(b), round(c / 1000.0, 4)] for b, _, c in rows]
    else:
        source = f"{SOURCE}: table {label} ({backend}); t(b) = b / inferences per second"
        times = [[int(b), round(1000.0 * b / rate, 4)] for b, rate, _ in rows]
    return {
        "source": source,
        "table": times,
        "compute_ms": [[int(b), round(c / 1000.0, 4)] for b, _, c in rows],
    }


# The tables have about twice the throughput of one execution at a time (b over the compute
# time: x1.6-2.5, x2.0 in most rows; x1.0 only in the largest batch of the ParticleNet tables):
# perf_analyzer's server ran two executions at once. The published DeepTau saturation scan (about 65 jobs, 710 taus/s) matches one at a time
# (TensorFlow table: 718-786 taus/s at 32-128 rows), as Triton runs a model without
# instance_group, as the published DeepTau configuration is: one instance per GPU.
DEEPTAU_ONE_AT_A_TIME = (
    "FITTED choice (results/planning.md check 4): one execution at a time, as Triton runs a model whose "
    "configuration has no instance_group (one instance per GPU, Triton's model configuration docs), as the "
    "published deeptau_nosplit configuration has none; the table's throughput is about twice this in every "
    "row (two executions at once in perf_analyzer's server), and the published DeepTau scan matches one at a "
    "time (710 taus/s against 718-786 here at 32-128 rows); the other models keep the table's throughput")


def profile(name, models, note):
    return {
        "device": "NVIDIA T4",
        "source": f"{SOURCE}; {note}; written by scripts/profiles/t4_from_facts.py",
        "concurrency": {
            "value": 1,
            "source": "the tables are service time at saturation (b over throughput with 4 requests in flight): "
                      "one batch at a time reproduces the measured throughput",
        },
        "host_device": {
            "bandwidth_gbytes_per_s": 12.0,
            "latency_us": 10,
            "included_in_tables": True,
            "source": "T4 host link PCIe Gen3 x16 (15.75 GB/s raw; about 12 GB/s in practice, assumed) and 5-10 us "
                      "per small cudaMemcpyAsync (shared/facts device data sheets, indicative); Triton's compute "
                      "time includes the copies, so nothing is added",
        },
        "models": models,
        "name": name,
    }


profiles = {
    "t4.json": profile("t4", {
        "pn_ak4": model("particlenet_AK4_PT", "PyTorch, as in the scale test"),
        "pn_ak8": model("particlenet_PT", "PyTorch, as in the scale test; one of PN-AK8's 3 models"),
        "deepmet": model("deepmet", "TensorFlow"),
        "deeptau": model("deeptau_nosplit", "TensorFlow", DEEPTAU_ONE_AT_A_TIME),
    }, "the backends of the published scale test where stated (PyTorch ParticleNets), TensorFlow otherwise"),
    "t4-trt.json": profile("t4-trt", {
        "pn_ak4": model("particlenet_AK4_TRT", "ONNX + TensorRT"),
        "pn_ak8": model("particlenet_PT", "PyTorch: the source has no TensorRT PN-AK8"),
        "deepmet": model("deepmet_trt", "TensorFlow + TensorRT"),
        "deeptau": model("deeptau_nosplit_trt", "TensorFlow + TensorRT"),
    }, "TensorRT where the source has it"),
}
out_dir.mkdir(parents=True, exist_ok=True)
for file, p in profiles.items():
    try:  # the server block (offload-sim's, docs/planning.md) is kept as written
        server = json.loads((out_dir / file).read_text()).get("server")
    except FileNotFoundError:
        server = None
    if server:
        p["server"] = server
    compact = re.sub(r"\[\s+([-\d.]+),\s+([-\d.]+)\s+\]", r"[\1, \2]", json.dumps(p, indent=1))
    (out_dir / file).write_text(compact + "\n")
    print(f"wrote {out_dir / file}: " + ", ".join(f"{k} {len(v['table'])} rows" for k, v in p["models"].items()))
