"""KServe v2 from Python: a transmitter's kserve_link to offload-serve --kserve, and a Python
kernel served as a KServe v2 model by a Receiver in this process (kserve_listen)."""
import numpy as np
import pytest

import mpi_offload as mo
from conftest import features, needs_grpc


@pytest.fixture(scope="module", autouse=True)
def kserve_build():
    needs_grpc()


def test_kserve_link_to_offload_serve(rt, serve):
    s = serve("--kserve", "127.0.0.1:0", "--peers", "0")
    x = features(40)
    with mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([]), handshake_timeout=1.0) as local:
        expected = local.submit("mlp", {"features": x}).result(timeout=30)["scores"]
    with mo.Transmitter(rt, mo.builtin_kernels(), mo.kserve_link([s.address])) as tx:
        futs = [tx.submit("mlp", {"features": x}) for _ in range(10)]
        for f in futs:
            r = f.result(timeout=30)
            assert r.receiver == 0 and r.fallback == "none", r.remote_error
            np.testing.assert_allclose(r["scores"].reshape(-1), expected, rtol=0, atol=0)
            assert r["scores"].base is r.reply
        assert tx.stats()["remote"] == 10
    assert s.stop() == 0


def test_python_kernel_as_a_kserve_model(rt):
    @mo.python_kernel(name="affine", version="1", inputs=[("x", "f32", [-1, 2])], outputs=[("y", "f32", [-1, 2])])
    def affine(inputs):
        return {"y": inputs["x"] * np.float32(3) + np.float32(1)}

    rx = mo.Receiver(rt, mo.KernelRegistry().add(affine), mo.kserve_listen("127.0.0.1:0"), peers=0,
                     count_every_peer=False)
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    with mo.Transmitter(rt, mo.KernelRegistry().add(affine), mo.kserve_link([f"127.0.0.1:{rx.port}"])) as tx:
        r = tx.submit("affine", {"x": x}).result(timeout=30)
        assert r.receiver == 0, r.remote_error
        assert r["y"].shape == (6, 2)  # KServe carries the shape
        np.testing.assert_array_equal(r["y"], x * 3 + 1)
    assert rx.stats()["kernels"]["affine"]["success"] == 1
    rx.close()
