"""gRPC from Python: an offload-serve started here, and a Receiver in this process serving
Python kernels; timeouts, a receiver that goes away, threads, asyncio, tokens."""
import asyncio
import os
import signal
import threading

import numpy as np
import pytest

import mpi_offload as mo
from conftest import features, needs_grpc

pytestmark = pytest.mark.usefixtures("grpc_build")


@pytest.fixture(scope="module")
def grpc_build():
    needs_grpc()


def local_scores(rt, x):
    with mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([]), handshake_timeout=1.0) as tx:
        return tx.submit("mlp", {"features": x}).result(timeout=30)["scores"]


def test_offload_serve_remote_results(rt, serve):
    s = serve("--listen", "127.0.0.1:0", "--peers", "0")
    x = features(64)
    with mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([s.address])) as tx:
        r = tx.submit("mlp", {"features": x}).result(timeout=30)
        assert r.receiver == 0 and r.fallback == "none", r.remote_error
        np.testing.assert_array_equal(r["scores"], local_scores(rt, x))  # the same code on both sides
        assert r["scores"].base is r.reply
        t = r.timing
        assert t.round_trip > 0 and t.kernel >= 0
        big = np.random.default_rng(2).integers(0, 255, 1 << 20, dtype=np.uint8)  # sent in parts, from its memory
        e = tx.submit("echo", {"payload": big}).result(timeout=30)
        assert e.receiver == 0
        np.testing.assert_array_equal(e["payload"], big)
        stats = tx.stats()
    assert stats["remote"] == 2 and stats["fallbacks"] == 0 and stats["bytes_out"] > (1 << 20)
    assert stats["stages"]["round_trip"]["count"] == 2 and stats["stages"]["kernel"]["count"] == 2
    assert s.stop() == 0


def test_python_kernel_in_a_python_receiver(rt):
    def make(tag):
        @mo.python_kernel(name="rowsum", version="2", inputs=[("x", "f64", [-1, 3])], outputs=[("s", "f64", [-1])])
        def rowsum(inputs):
            threads.add((tag, threading.get_ident()))
            return {"s": inputs["x"].sum(axis=1)}

        return rowsum

    threads = set()
    served = mo.builtin_kernels().add(make("receiver"))
    rx = mo.Receiver(rt, served, mo.grpc_listen("127.0.0.1:0"), peers=1, threads=2)
    kernels = mo.builtin_kernels().add(make("transmitter"))
    x = np.arange(30, dtype=np.float64).reshape(10, 3)
    with mo.Transmitter(rt, kernels, mo.grpc_link([f"127.0.0.1:{rx.port}"])) as tx:
        futs = [tx.submit("rowsum", {"x": x + i}) for i in range(20)]
        for i, f in enumerate(futs):
            r = f.result(timeout=30)
            assert r.receiver == 0, r.remote_error
            np.testing.assert_array_equal(r["s"], (x + i).sum(axis=1))
    stats = rx.wait(timeout=30)
    assert stats["requests"] == 20 and stats["replies"] == 20 and stats["kernels"]["rowsum"]["success"] == 20
    assert {tag for tag, _ in threads} == {"receiver"}
    assert threading.get_ident() not in {t for _, t in threads}
    rx.close()


def test_timeout_falls_back(rt):
    gate = threading.Event()

    @mo.python_kernel(name="slow", inputs=[("x", "i32", [-1])], outputs=[("y", "i32", [-1])])
    def slow(inputs):  # the receiver's: holds the request until the test lets it go
        gate.wait(30)
        return {"y": inputs["x"] + 1}

    @mo.python_kernel(name="slow", inputs=[("x", "i32", [-1])], outputs=[("y", "i32", [-1])])
    def fast(inputs):  # the transmitter's fallback: the same kernel, at once
        return {"y": inputs["x"] + 1}

    rx = mo.Receiver(rt, mo.KernelRegistry().add(slow), mo.grpc_listen("127.0.0.1:0"), peers=1)
    # The transmitter waits 30 s by default; this request, 0.2 s (submit's timeout).
    tx = mo.Transmitter(rt, mo.KernelRegistry().add(fast), mo.grpc_link([f"127.0.0.1:{rx.port}"]), timeout=30.0)
    x = np.arange(5, dtype=np.int32)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="timeout"):
            tx.submit("slow", {"x": x}, timeout=bad)
    r = tx.submit("slow", {"x": x}, timeout=0.2).result(timeout=30)
    assert r.fallback == "timeout" and r.receiver == -1
    np.testing.assert_array_equal(r["y"], x + 1)
    gate.set()
    tx.close()
    s = tx.stats()
    assert s["fallback_timeout"] == 1 and s["suspensions"] == 1
    rx.wait(timeout=30)
    rx.close()


def test_receiver_gone_falls_back(rt, serve):
    s = serve("--listen", "127.0.0.1:0", "--peers", "0")
    x = features(8)
    with mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([s.address]), reconnect_max=0.2) as tx:
        assert tx.submit("mlp", {"features": x}).result(timeout=30).receiver == 0
        s.kill()
        results = [tx.submit("mlp", {"features": x}).result(timeout=30) for _ in range(5)]
        expected = local_scores(rt, x)
        for r in results:  # every event completes, correctly, on this side's CPU
            np.testing.assert_array_equal(r["scores"], expected)
        assert results[-1].fallback in ("no_receiver", "error_reply") and results[-1].receiver == -1
        stats = tx.stats()
    assert stats["sessions_lost"] == 1 and stats["fallbacks"] == 5


def test_threads_and_asyncio_against_a_service(rt, serve):
    s = serve("--listen", "127.0.0.1:0", "--peers", "0", "--receiver-threads", "2")
    xs = [features(16, seed) for seed in range(4)]
    expected = [local_scores(rt, x) for x in xs]
    with mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([s.address]), credits=16, deliver="inline") as tx:
        errors, counts = [], []

        def worker(i):
            try:
                futs = [tx.submit("mlp", {"features": xs[i]}) for _ in range(100)]
                for f in futs:
                    r = f.result(timeout=60)
                    np.testing.assert_array_equal(r["scores"], expected[i])
                counts.append(sum(1 for f in futs if f.result().receiver == 0))
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and sum(counts) == 400

        async def main():
            return await asyncio.gather(*(tx.submit_async("mlp", {"features": xs[i % 4]}) for i in range(64)))

        outs = asyncio.run(main())
        for i, r in enumerate(outs):
            assert r.receiver == 0
            np.testing.assert_array_equal(r["scores"], expected[i % 4])
        assert tx.stats()["remote"] == 464


def test_tokens(rt, serve, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("alice s3cret-alice-0123456789\n")
    s = serve("--listen", "127.0.0.1:0", "--peers", "0", "--tokens", str(tokens))
    x = features(2)
    good = mo.grpc_link([s.address], security=mo.client_security(token="s3cret-alice-0123456789"))
    with mo.Transmitter(rt, mo.builtin_kernels(), good) as tx:
        assert tx.submit("mlp", {"features": x}).result(timeout=30).receiver == 0
    bad = mo.grpc_link([s.address], security=mo.client_security(token="wrong-token-0123456789"))
    with mo.Transmitter(rt, mo.builtin_kernels(), bad, handshake_timeout=5.0) as tx:
        r = tx.submit("mlp", {"features": x}).result(timeout=30)
        assert r.receiver == -1 and r.fallback == "no_receiver"
    with pytest.raises(mo.HandshakeError):
        mo.Transmitter(rt, mo.builtin_kernels(), bad, handshake_timeout=5.0, require_receivers=True)
    sec = mo.server_security(tokens=str(tokens))
    assert "tokens (1 clients)" in sec.describe()
    with pytest.raises(ValueError, match="nope"):
        mo.server_security(tokens=str(tmp_path / "nope"))


def test_ctrl_c_interrupts_result(rt):
    """SIGINT (Ctrl-C: Python's KeyboardInterrupt) ends a waiting result(); the request itself
    goes on, and its result is still delivered."""
    gate = threading.Event()

    @mo.python_kernel(name="held", inputs=[("x", "i32", [-1])], outputs=[("y", "i32", [-1])])
    def held(inputs):  # the receiver's: holds the request until the test lets it go
        gate.wait(30)
        return {"y": inputs["x"] * 2}

    rx = mo.Receiver(rt, mo.KernelRegistry().add(held), mo.grpc_listen("127.0.0.1:0"), peers=1)
    tx = mo.Transmitter(rt, mo.KernelRegistry().add(held), mo.grpc_link([f"127.0.0.1:{rx.port}"]))
    x = np.arange(4, dtype=np.int32)
    fut = tx.submit("held", {"x": x})
    ctrl_c = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    ctrl_c.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fut.result()  # the receiver holds it: only Ctrl-C ends the wait
    finally:
        ctrl_c.cancel()
    assert not fut.done()
    gate.set()
    r = fut.result(timeout=30)
    assert r.receiver == 0
    np.testing.assert_array_equal(r["y"], x * 2)
    tx.close()
    rx.wait(timeout=30)
    rx.close()
