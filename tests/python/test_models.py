"""A Triton model repository's TorchScript models from Python: added to a registry, served by a
Python Receiver over gRPC and run by the transmitter's fallback, the same scores both ways (the
repository tests/models/make_repository.py writes: ctest's models.repository fixture)."""
import os
import pathlib

import numpy as np
import pytest

import mpi_offload as mo

REPO = os.environ.get("OFFLOAD_TEST_MODEL_REPO", "")


@pytest.fixture(scope="module")
def repo():
    if not mo.has_kserve:
        pytest.skip("SKIP: built without gRPC (no model support)")
    if not REPO or not (pathlib.Path(REPO) / "mlp_ts" / "config.pbtxt").is_file():
        pytest.skip(f"SKIP: no model repository at '{REPO}' (ctest's models.repository fixture writes it)")
    return REPO


def test_a_repository_served_and_run_locally(rt, repo):
    kernels = mo.builtin_kernels().add_model_repository(repo)
    assert {"mlp_ts", "mlp_named", "edgeconv_ts"} <= set(kernels.names())
    x = np.random.default_rng(5).uniform(-1, 1, (8, 16)).astype(np.float32)
    rx = mo.Receiver(rt, kernels, mo.grpc_listen("127.0.0.1:0"), peers=1, backend="cpu")
    with mo.Transmitter(rt, kernels, mo.grpc_link([f"127.0.0.1:{rx.port}"])) as tx:
        remote = tx.submit("mlp_ts", {"INPUT__0": x}).result(timeout=60)
        assert remote.receiver == 0, remote.remote_error
    with mo.Transmitter(rt, kernels, mo.grpc_link([]), handshake_timeout=1.0) as local:
        here = local.submit("mlp_ts", {"INPUT__0": x}).result(timeout=60)
        assert here.receiver == -1 and here.fallback == "no_receiver"
    assert remote["OUTPUT__0"].shape == here["OUTPUT__0"].shape and remote["OUTPUT__0"].size == 8 * 4
    np.testing.assert_array_equal(remote["OUTPUT__0"], here["OUTPUT__0"])
    stats = rx.wait(timeout=30)
    assert stats["kernels"]["mlp_ts"]["success"] == 1
    rx.close()


def test_a_broken_repository_is_refused_with_its_reason(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.pbtxt").write_text('name: "bad"\nplatform: "pytorch_libtorch"\ninput [ {')
    with pytest.raises(mo.ModelRepositoryError, match=r"bad/config.pbtxt:3"):
        mo.builtin_kernels().add_model_repository(str(tmp_path))
