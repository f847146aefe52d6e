"""Several ranks under mpiexec (mpi_job.py): a Python Receiver on rank 0 serving Python
Transmitters over MPI, with the runtime owning MPI and adopting mpi4py's; a clear refusal of
MPI below MPI_THREAD_MULTIPLE."""
import subprocess
import sys

import pytest

from conftest import HERE, MPIEXEC


def mpi_job(ranks, mode):
    cmd = [*MPIEXEC, "-np", str(ranks), "--mca", "btl_tcp_if_include", "lo", sys.executable, str(HERE / "mpi_job.py"),
           mode]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=100)
    return run.returncode, run.stdout + run.stderr


@pytest.mark.parametrize("mode", ["owning", "adopt"])
def test_ranks(mode):
    rc, out = mpi_job(3, mode)
    assert rc == 0, out
    assert "rank 0 receiver: requests 120, ok True" in out, out
    for rank in (1, 2):
        assert f"rank {rank} transmitter: remote 60, ok True" in out, out


def test_adopt_needs_thread_multiple():
    pytest.importorskip("mpi4py")
    rc, out = mpi_job(1, "funneled")
    assert rc == 0, out
    assert "refused: Runtime.adopt: MPI was initialised with MPI_THREAD_FUNNELED" in out, out
