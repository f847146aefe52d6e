"""Fixtures of the mpi_offload tests: a runtime without MPI, offload-serve on a free port, the
paths of this build's programs (set by tests/python/CMakeLists.txt)."""
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mpi_offload as mo

HERE = pathlib.Path(__file__).resolve().parent
SERVE = os.environ.get("OFFLOAD_SERVE", "")
RUN = os.environ.get("OFFLOAD_RUN", "")
MPIEXEC = shlex.split(os.environ.get("OFFLOAD_MPIEXEC", "mpiexec --oversubscribe"))

mo.set_log_level(os.environ.get("OFFLOAD_TEST_LOG", "warn"))


@pytest.fixture(scope="session")
def rt():
    """One runtime for the test process (one per process), without MPI: gRPC and KServe only."""
    r = mo.Runtime(mpi=False)
    yield r
    r.close()


class Service:
    """An offload-serve process on free ports (its port file), stopped at the test's end."""

    def __init__(self, tmp, args):
        if not SERVE:
            pytest.skip("OFFLOAD_SERVE is not set (run through ctest)")
        port_file = tmp / f"serve{time.monotonic_ns()}.port"
        self.log = open(tmp / f"{port_file.stem}.log", "w+")
        self.proc = subprocess.Popen([SERVE, "--port-file", str(port_file), *args], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"offload-serve exited {self.proc.returncode}: {self.output()}")
            time.sleep(0.05)
        else:
            raise RuntimeError("offload-serve wrote no port file: " + self.output())
        self.ports = [int(p) for p in port_file.read_text().split()]
        self.address = f"127.0.0.1:{self.ports[0]}"

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(*args):
        s = Service(tmp_path, list(args))
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def needs_grpc():
    """Skips when this build has no gRPC transport (OFFLOAD_GRPC=OFF)."""
    if not mo.has_kserve:
        pytest.skip("built without gRPC")


def features(jets, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (jets, 16)).astype(np.float32)


sys.path.insert(0, str(HERE))
