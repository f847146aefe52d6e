"""examples/columnar (issue 32, part 2) at a small size, run the three ways: locally (the kernel in
the process, the CPU fallback), over KServe v2 to an offload-serve it starts, and over MPI under
mpiexec (mpi4py: one receiver rank, two transmitter ranks). The remote runs must give the local
run's scores bit for bit, with every request served remotely; the local scores agree with
examples/edgeconv/reference.py (numpy, from the unpadded particles). Bad input is refused with a
clear message. The EdgeConv plugin comes from the example.build fixture (EDGECONV_PLUGIN)."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import MPIEXEC, SERVE

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "columnar" / "columnar.py"
PLUGIN = os.environ.get("EDGECONV_PLUGIN", "")
SIZE = ["--events", "120", "--chunk-events", "30"]  # 4 requests of about 90 jets each


@pytest.fixture(scope="module", autouse=True)
def plugin():
    if not PLUGIN or not os.path.exists(PLUGIN):
        pytest.skip(f"SKIP: no EdgeConv plugin at '{PLUGIN}' (ctest's example.build fixture builds it)")


def columnar(*args, mpi_ranks=0, timeout=60):
    cmd = [sys.executable, str(EXAMPLE), "--plugin", PLUGIN, *args]
    if mpi_ranks:
        cmd = [*MPIEXEC, "-np", str(mpi_ranks), "--mca", "btl_tcp_if_include", "lo", *cmd]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "OFFLOAD_SERVE": SERVE})
    return run.returncode, run.stdout + run.stderr


def field(pattern, out):
    m = re.search(pattern, out, re.M)
    assert m, f"no '{pattern}' in:\n{out}"
    return m.group(1)


def test_three_ways_same_scores(tmp_path):
    saved = tmp_path / "local.npy"
    rc, local = columnar("--mode", "local", *SIZE, "--save", str(saved), "--reference", "24")
    assert rc == 0, local
    digest = field(r"^scores: sha256 ([0-9a-f]{16}) \(\d+ jets x 2\)", local)
    assert "requests: 4, remote 0, local 4 (no_receiver 4)" in local, local
    assert re.search(r"^reference: .* = \S+ over the first 24 jets .*: ok$", local, re.M), local
    assert re.search(r"^throughput: [0-9.]+ events/s", local, re.M), local
    assert re.search(r"^latency per request \(submit to result\): median [0-9.]+ ms, p90 [0-9.]+ ms", local, re.M)

    if not SERVE:
        pytest.skip("OFFLOAD_SERVE is not set (run through ctest)")
    rc, kserve = columnar("--mode", "kserve", *SIZE, "--compare", str(saved))
    assert rc == 0, kserve
    assert "offload-serve started here" in kserve, kserve
    assert "requests: 4, remote 4, local 0" in kserve, kserve
    assert field(r"^scores: sha256 ([0-9a-f]{16})", kserve) == digest, kserve
    assert float(field(r"^compare: max \|scores - \S+\| = (\S+) over", kserve)) == 0.0, kserve

    pytest.importorskip("mpi4py")
    rc, mpi = columnar("--mode", "mpi", *SIZE, "--compare", str(saved), mpi_ranks=3, timeout=90)
    assert rc == 0, mpi
    assert "3 ranks: 1 receiver(s), 2 transmitter(s)" in mpi and "receiver rank 0: 4 requests, 0 errors" in mpi, mpi
    assert "requests: 4, remote 4, local 0" in mpi, mpi
    assert field(r"^scores: sha256 ([0-9a-f]{16})", mpi) == digest, mpi
    assert float(field(r"^compare: max \|scores - \S+\| = (\S+) over", mpi)) == 0.0, mpi


@pytest.mark.parametrize("args, message", [
    (["--mode", "local", "--events", "100", "--chunk-events", "30"], "--events 100 is not a multiple of --chunk-events 30"),
    (["--mode", "local", "--events", "0"], "argument --events: 0: must be > 0"),
    (["--mode", "local", "--connect", "127.0.0.1:1"], "--connect is for --mode kserve"),
    (["--mode", "kserve", "--connect", "nowhere"], "--connect nowhere: expected HOST:PORT"),
    (["--mode", "local", "--compare", "/nonexistent.npy"], "--compare /nonexistent.npy: no such file"),
])
def test_bad_input(args, message):
    rc, out = columnar(*args)
    assert rc == 2 and message in out, out


def test_compare_other_size(tmp_path):
    saved = tmp_path / "small.npy"
    rc, out = columnar("--mode", "local", "--events", "10", "--chunk-events", "10", "--save", str(saved))
    assert rc == 0, out
    rc, out = columnar("--mode", "local", "--events", "20", "--chunk-events", "10", "--compare", str(saved))
    assert rc == 2 and "(another --events/--chunk-events/--seed?)" in out, out
