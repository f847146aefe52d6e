"""A Python kernel served to a C++ transmitter: offload-run --transport grpc --connect against a
Receiver in this process whose "echo" is written in Python (numpy), validated by offload-run."""
import re
import subprocess
import threading

import numpy as np
import pytest

import mpi_offload as mo
from conftest import RUN, needs_grpc


def test_offload_run_against_a_python_receiver(rt):
    needs_grpc()
    if not RUN:
        pytest.skip("OFFLOAD_RUN is not set (run through ctest)")
    calls = []

    @mo.python_kernel(name="echo", version="1", inputs=[("payload", "u8", [-1])], outputs=[("payload", "u8", [-1])])
    def echo(inputs):
        calls.append(threading.get_ident())
        return {"payload": np.array(inputs["payload"])}

    rx = mo.Receiver(rt, mo.KernelRegistry().add(echo), mo.grpc_listen("127.0.0.1:0"), peers=1)
    run = subprocess.run([RUN, "--transport", "grpc", "--connect", f"127.0.0.1:{rx.port}", "--kernel", "echo",
                          "--size", "4096", "--events", "100", "--validate", "--quiet"],
                         capture_output=True, text=True, timeout=90)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert re.search(r"^status: ok", out, re.M), out
    assert re.search(r"all +100 .* 100 +0 +0$", out, re.M), out  # 100 events, 100 remote, 0 fallbacks, 0 errors
    stats = rx.wait(timeout=30)
    assert stats["requests"] == 100 and stats["kernels"]["echo"]["success"] == 100
    assert len(calls) == 100
    rx.close()
