"""The Python API without a receiver (every result from the local fallback): inputs, results,
zero-copy, lifetimes, errors, Python kernels, threads, asyncio, interruption."""
import asyncio
import concurrent.futures
import gc
import signal
import sys
import threading
import time
import weakref

import numpy as np
import pytest

import mpi_offload as mo
from conftest import features


def wait_until(predicate, what, limit_s=30.0):
    """Polls `predicate` (something the library does on its own threads) until it holds."""
    end = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


@pytest.fixture
def local_tx(rt):
    """A transmitter with no receiver: every request falls back (no_receiver)."""
    kernels = mo.builtin_kernels()
    tx = mo.Transmitter(rt, kernels, mo.grpc_link([]), handshake_timeout=1.0)
    yield tx
    tx.close()


def scale_kernel(factor=2.0, gate=None, seen=None):
    """A Python kernel y = factor * x over rows of 4 floats; records what it saw; waits for
    `gate` (a threading.Event) first when given."""

    @mo.python_kernel(name="scale", version="1", inputs=[("x", "f32", [-1, 4])], outputs=[("y", "f32", [-1, 4])])
    def scale(inputs):
        x = inputs["x"]
        if seen is not None:
            seen.append({"address": x.__array_interface__["data"][0], "shape": x.shape,
                         "writeable": x.flags.writeable, "thread": threading.get_ident()})
        if gate is not None:
            gate.wait()
        return {"y": (x * factor).astype(np.float32)}

    return scale


def registry_with(*python_kernels):
    kernels = mo.builtin_kernels()
    for k in python_kernels:
        kernels.add(k)
    return kernels


def test_fallback_result_is_a_dict_of_views(local_tx):
    x = features(32)
    r = local_tx.submit("mlp", {"features": x}).result(timeout=30)
    assert isinstance(r, dict) and isinstance(r, mo.Result)
    assert r.ok and r.receiver == -1 and r.fallback == "no_receiver"
    scores = r["scores"]
    assert scores.dtype == np.float32 and scores.shape == (32 * 4,)
    np.testing.assert_allclose(scores.reshape(32, 4).sum(axis=1), 1.0, rtol=1e-5)  # softmax
    # A view on the reply's bytes: its base is the object that owns them, no copy was made.
    assert scores.base is r.reply and not scores.flags.owndata
    assert r.reply.nbytes == scores.nbytes
    assert r.latency > 0


def test_results_outlive_the_transmitter_and_the_dict(rt):
    tx = mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([]), handshake_timeout=1.0)
    x = np.arange(1000, dtype=np.int32)
    r = tx.submit("echo", {"payload": x}).result(timeout=30)
    tx.close()
    del tx
    arr = r["payload"]
    del r
    gc.collect()
    np.testing.assert_array_equal(arr, x)  # the reply's bytes live as long as a view does
    arr[:] = 7  # and are the caller's own
    assert (arr == 7).all()


def test_inputs_are_sent_from_their_own_memory_and_kept_alive(rt):
    gate, seen = threading.Event(), []
    kernels = registry_with(scale_kernel(2.0, gate, seen))
    with mo.Transmitter(rt, kernels, mo.grpc_link([]), handshake_timeout=1.0) as tx:
        x = np.arange(64, dtype=np.float32).reshape(16, 4)
        address, expected = x.__array_interface__["data"][0], x * 2
        alive = weakref.ref(x)
        fut = tx.submit("scale", {"x": x})
        del x  # Python's last reference: the transmitter keeps the array until it is done with it
        gc.collect()
        wait_until(lambda: seen, "the kernel started")
        assert alive() is not None
        gate.set()
        r = fut.result(timeout=30)
        np.testing.assert_array_equal(r["y"], expected)
        # The kernel read the caller's memory itself (zero-copy submit), read-only, shaped as declared.
        assert seen[0]["address"] == address
        assert seen[0]["shape"] == (16, 4) and seen[0]["writeable"] is False
        assert seen[0]["thread"] != threading.get_ident()  # on the library's fallback thread
        wait_until(lambda: alive() is None, "the transmitter let go of the input")


def test_every_dtype_and_shape_round_trips(local_tx):
    for dt in (np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
               np.uint64, np.bool_):
        x = (np.arange(24) % 5).astype(dt).reshape(2, 3, 4)
        r = local_tx.submit("echo", {"payload": x}).result(timeout=30)
        assert r["payload"].dtype == x.dtype and r["payload"].shape == (2, 3, 4), dt
        np.testing.assert_array_equal(r["payload"], x)


def test_bad_inputs_are_refused_naming_the_input(local_tx):
    with pytest.raises(TypeError, match="inputs: a dict"):
        local_tx.submit("mlp", [features(2)])
    with pytest.raises(TypeError, match="input 'features' is list, not a numpy array"):
        local_tx.submit("mlp", {"features": [1.0, 2.0]})
    with pytest.raises(TypeError, match="input 'features' has dtype complex64"):
        local_tx.submit("mlp", {"features": np.zeros(16, np.complex64)})
    with pytest.raises(TypeError, match="input 'o' has dtype object"):
        local_tx.submit("echo", {"o": np.array([None, 1])})
    with pytest.raises(ValueError, match="input 'features' is not C-contiguous"):
        local_tx.submit("mlp", {"features": features(8)[:, ::2]})
    with pytest.raises(ValueError, match="input 'features' is not C-contiguous"):
        local_tx.submit("mlp", {"features": np.asfortranarray(features(8))})
    with pytest.raises(ValueError, match="input 'b' is big-endian"):
        local_tx.submit("echo", {"b": np.zeros(4, ">f4")})
    # The kernel's own checks, with the C++ API's exception and message.
    with pytest.raises(mo.InputError, match="product 'features' is f64, not f32") as e:
        local_tx.submit("mlp", {"features": np.zeros((2, 16))})
    assert isinstance(e.value, ValueError)
    with pytest.raises(mo.InputError, match="not a multiple of 16 features per jet"):
        local_tx.submit("mlp", {"features": np.zeros(17, np.float32)})
    with pytest.raises(ValueError, match="unknown kernel 'nope'"):
        local_tx.submit("nope", {"x": np.zeros(1)})
    assert local_tx.stats()["submitted"] == 0


def test_python_kernel_errors(rt):
    @mo.python_kernel(name="raises", inputs=[("x", "f32", [-1])], outputs=[("y", "f32", [-1])])
    def raises(inputs):
        raise ZeroDivisionError("no luck")

    @mo.python_kernel(name="wrong_dtype", inputs=[("x", "f32", [-1])], outputs=[("y", "f32", [-1])])
    def wrong_dtype(inputs):
        return {"y": inputs["x"].astype(np.float64)}

    @mo.python_kernel(name="missing", inputs=[("x", "f32", [-1])], outputs=[("y", "f32", [-1])])
    def missing(inputs):
        return {"z": inputs["x"]}

    kernels = registry_with(raises, wrong_dtype, missing)
    with mo.Transmitter(rt, kernels, mo.grpc_link([]), handshake_timeout=1.0) as tx:
        x = np.ones(8, np.float32)
        with pytest.raises(mo.RequestError, match="ZeroDivisionError: no luck"):
            tx.submit("raises", {"x": x}).result(timeout=30)
        with pytest.raises(mo.RequestError, match="output 'y' is float64, its spec says f32"):
            tx.submit("wrong_dtype", {"x": x}).result(timeout=30)
        with pytest.raises(mo.RequestError, match="returned no output 'y'"):
            tx.submit("missing", {"x": x}).result(timeout=30)
        # Declared tensors are checked at submit, as a C++ kernel's output_specs does.
        with pytest.raises(mo.InputError, match="input 'x' is f64, not f32"):
            tx.submit("raises", {"x": np.ones(8)})
        with pytest.raises(mo.InputError, match="input 'x' has dims \\[2,2\\], not \\[-1\\]"):
            tx.submit("raises", {"x": np.ones((2, 2), np.float32)})
        # The callback form gets the failed result itself.
        got = []
        done = threading.Event()
        tx.submit("raises", {"x": x}, callback=lambda r: (got.append(r), done.set()))
        assert done.wait(30)
        assert not got[0].ok and "no luck" in got[0].error
        assert tx.stats()["failed"] == 4


def test_python_kernel_forms_and_registry():
    class Doubler:  # a class: name, version, tensors, and __call__
        name, version = "doubler", "3"
        inputs = [("a", np.int64, [-1])]
        outputs = [("b", "i64", [-1])]

        def __call__(self, inputs):
            return {"b": inputs["a"] * 2}

    def sized(inputs):  # output dims the rows do not give: output_specs sizes them
        return {"total": np.array([inputs["v"].sum()], np.float64), "copy": inputs["v"].copy()}

    kernels = mo.builtin_kernels()
    kernels.add(Doubler()).add(mo.PythonKernel(sized, "sized", "1", output_specs=lambda specs: {
        "total": ("f64", (1,)), "copy": specs["v"]}))
    assert {"clustering", "echo", "mlp", "synthetic", "doubler", "sized"} <= set(kernels.names())
    assert "doubler" in kernels and len(kernels) == 6 and kernels.version("doubler") == "3"
    assert kernels.origin("doubler") == "Python" and kernels.origin("mlp") == "built in"
    k = mo.PythonKernel(lambda d: d, "echo", "1", outputs=[("payload", "u8", [-1])], inputs=[("payload", "u8", [-1])])
    with pytest.raises(ValueError, match="echo"):
        kernels.add(k)  # a name the registry has
    with pytest.raises(ValueError, match="printable ASCII"):
        mo.KernelRegistry().add(mo.PythonKernel(lambda d: d, "has space", outputs=[("y", "f32", [2])]))
    with pytest.raises(ValueError, match="declare its outputs"):
        mo.PythonKernel(lambda d: d, "none")
    with pytest.raises(ValueError, match="needs output_specs"):
        mo.PythonKernel(lambda d: d, "open", inputs=[("x", "f32", [-1])], outputs=[("y", "f32", [-1, -1])])
    with pytest.raises(TypeError, match="is not a kernel"):
        kernels.add(lambda d: d)
    with pytest.raises(mo.PluginError, match="/nonexistent.so"):
        kernels.load_plugin("/nonexistent.so")
    # Run through the library's checks and layout, here (what the fallback does).
    r = mo.PythonKernel(sized, "sized", "1", output_specs=lambda s: {"total": ("f64", (1,)), "copy": s["v"]})(
        {"v": np.arange(6, dtype=np.float32).reshape(2, 3)})
    assert r["total"][0] == 15 and r["copy"].shape == (2, 3)


def test_callbacks_threads_and_stats(local_tx):
    x = features(4)
    expected = local_tx.submit("mlp", {"features": x}).result(timeout=30)["scores"].copy()
    results, errors, lock = [], [], threading.Lock()
    per_thread = 100

    def worker():
        try:
            futs = [local_tx.submit("mlp", {"features": x}, priority=1) for _ in range(per_thread)]
            got = [f.result(timeout=60) for f in futs]
            with lock:
                results.extend(got)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4 * per_thread
    for r in results:
        np.testing.assert_array_equal(r["scores"], expected)
    calls = []
    done = threading.Event()

    def callback(r):
        calls.append((r["scores"].copy(), threading.get_ident()))
        if len(calls) == 10:
            done.set()

    for _ in range(10):
        assert local_tx.submit("mlp", {"features": x}, callback=callback) is None
    assert done.wait(30)
    assert all(np.array_equal(s, expected) for s, _ in calls)
    assert all(t != threading.get_ident() for _, t in calls)
    s = local_tx.stats()
    assert s["submitted"] == 1 + 4 * per_thread + 10
    assert s["fallbacks"] == s["fallback_no_receiver"] == s["submitted"] and s["remote"] == 0
    assert s["stages"]["latency"]["count"] == s["submitted"]
    assert s["stages"]["round_trip"]["count"] == 0  # stage times are those of remote results
    assert s["stages"]["latency"]["p50_s"] > 0


@pytest.mark.parametrize("deliver", ["thread", "inline"])
def test_future_forms(rt, deliver):
    """mpi_offload.Future, whose result() takes the result from the library's thread: a timeout
    that expires and then a result; two threads in result() of one future; done-callbacks added
    before and after; exception(); done() polling; concurrent.futures.wait and as_completed on
    results nobody asks for (the deliverer's)."""
    gate = threading.Event()

    @mo.python_kernel(name="gated", inputs=[("x", "i32", [-1])], outputs=[("y", "i32", [-1])])
    def gated(inputs):
        assert gate.wait(30)
        return {"y": inputs["x"] + 1}

    @mo.python_kernel(name="boom", inputs=[("x", "i32", [-1])], outputs=[("y", "i32", [-1])])
    def boom(inputs):
        raise ValueError("boom")

    with mo.Transmitter(rt, registry_with(gated, boom), mo.grpc_link([]), handshake_timeout=1.0, deliver=deliver) as tx:
        x = np.arange(3, dtype=np.int32)
        f = tx.submit("gated", {"x": x})
        assert isinstance(f, concurrent.futures.Future) and isinstance(f, mo.Future)
        with pytest.raises(concurrent.futures.TimeoutError):
            f.result(timeout=0.05)
        assert not f.done() and not f.cancel()
        called = []
        f.add_done_callback(lambda g: called.append(g.result()["y"].copy()))
        both = []
        waiters = [threading.Thread(target=lambda: both.append(f.result(timeout=30)["y"].copy())) for _ in range(2)]
        for t in waiters:
            t.start()
        gate.set()
        for t in waiters:
            t.join(30)
        assert len(both) == 2 and all(np.array_equal(y, x + 1) for y in both)
        wait_until(lambda: called, "the done-callback added before the result")
        np.testing.assert_array_equal(called[0], x + 1)
        late = []
        f.add_done_callback(late.append)
        assert late == [f]
        assert f.exception(timeout=30) is None
        assert isinstance(tx.submit("boom", {"x": x}).exception(timeout=30), mo.RequestError)
        polled = tx.submit("echo", {"payload": np.ones(4, np.uint8)})
        wait_until(polled.done, "done()")
        np.testing.assert_array_equal(polled.result(timeout=0)["payload"], np.ones(4, np.uint8))
        fs = [tx.submit("echo", {"payload": np.full(4, i, np.uint8)}) for i in range(20)]
        finished, pending = concurrent.futures.wait(fs, timeout=30)
        assert not pending and [int(g.result()["payload"][0]) for g in fs] == list(range(20))
        fs = [tx.submit("echo", {"payload": np.full(4, i, np.uint8)}) for i in range(20)]
        got = sorted(int(g.result()["payload"][0]) for g in concurrent.futures.as_completed(fs, timeout=30))
        assert got == list(range(20))


def test_asyncio(local_tx):
    async def main():
        xs = [np.full(100, i, np.uint8) for i in range(50)]
        outs = await asyncio.gather(*(local_tx.submit_async("echo", {"payload": x}) for x in xs))
        return xs, outs

    xs, outs = asyncio.run(main())
    for x, r in zip(xs, outs):
        np.testing.assert_array_equal(r["payload"], x)
    with pytest.raises(RuntimeError, match="no running event loop"):
        local_tx.submit_async("echo", {"payload": np.zeros(1, np.uint8)})


def test_asyncio_failure_is_raised(rt):
    @mo.python_kernel(name="boom", inputs=[("x", "f32", [-1])], outputs=[("y", "f32", [-1])])
    def boom(inputs):
        raise ValueError("boom")

    with mo.Transmitter(rt, registry_with(boom), mo.grpc_link([]), handshake_timeout=1.0) as tx:
        async def main():
            with pytest.raises(mo.RequestError, match="boom"):
                await tx.submit_async("boom", {"x": np.ones(3, np.float32)})

        asyncio.run(main())


def test_closed_transmitter_refuses(rt):
    tx = mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([]), handshake_timeout=1.0)
    tx.close()
    tx.close()  # idempotent
    assert tx.closed
    with pytest.raises(RuntimeError, match="the transmitter is closed"):
        tx.submit("echo", {"payload": np.zeros(1, np.uint8)})
    assert tx.stats()["submitted"] == 0


def test_bad_settings(rt):
    with pytest.raises(ValueError, match="routing 'nope'"):
        mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([]), routing="nope")
    with pytest.raises(TypeError, match="is not a transport"):
        mo.Transmitter(rt, mo.builtin_kernels(), "127.0.0.1:7000")
    with pytest.raises(ValueError, match="timeout"):
        mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link([]), timeout=-1)
    with pytest.raises(ValueError, match="backend 'gpu'"):
        mo.Receiver(rt, mo.builtin_kernels(), mo.grpc_listen("127.0.0.1:0"), 1, backend="gpu")
    with pytest.raises(ValueError, match="log level"):
        mo.set_log_level("loud")


@pytest.mark.skipif(sys.platform != "linux", reason="SIGALRM")
def test_ctrl_c_interrupts_a_waiting_receiver(rt):
    rx = mo.Receiver(rt, mo.builtin_kernels(), mo.grpc_listen("127.0.0.1:0"), 1)

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            rx.wait()  # no peer ever comes: only the signal ends the wait
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert rx.wait(timeout=0.2) is None
    rx.close()
    with pytest.raises(RuntimeError, match="the receiver is closed"):
        rx.wait()
