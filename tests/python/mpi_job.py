"""One MPI job of test_mpi.py (run under mpiexec): rank 0 a Receiver, every other rank a
Transmitter to it, over MPI. MODE owning: Runtime() initialises and finalises MPI; adopt:
mpi4py does and the runtime adopts MPI_COMM_WORLD; funneled: mpi4py initialises MPI below
MPI_THREAD_MULTIPLE and Runtime.adopt must refuse it, saying so. Prints one line per rank."""
import sys

import numpy as np

mode = sys.argv[1]
if mode == "funneled":
    import mpi4py

    mpi4py.rc.thread_level = "funneled"
if mode in ("adopt", "funneled"):
    from mpi4py import MPI

import mpi_offload as mo  # noqa: E402

mo.set_log_level("warn")


@mo.python_kernel(name="square", version="1", inputs=[("x", "f64", [-1])], outputs=[("y", "f64", [-1])])
def square(inputs):
    return {"y": inputs["x"] ** 2}


def main():
    if mode == "funneled":
        try:
            mo.Runtime.adopt(MPI.COMM_WORLD)
        except mo.MPIError as e:
            print(f"refused: {e}", flush=True)
            return 0
        print("FAIL: adopted MPI_THREAD_FUNNELED", flush=True)
        return 1
    rt = mo.Runtime.adopt(MPI.COMM_WORLD) if mode == "adopt" else mo.Runtime()
    kernels = mo.builtin_kernels().add(square)
    ok = True
    if rt.rank == 0:
        rx = mo.Receiver(rt, kernels, mo.mpi_link(), peers=rt.size - 1)
        stats = rx.wait()
        ok = stats["requests"] == 3 * 20 * (rt.size - 1) and stats["error_replies"] == 0
        print(f"rank 0 receiver: requests {stats['requests']}, ok {ok}", flush=True)
        rx.close()
    else:
        with mo.Transmitter(rt, kernels, mo.grpc_link([]), handshake_timeout=1.0) as local:
            x = np.random.default_rng(rt.rank).uniform(-1, 1, (32, 16)).astype(np.float32)
            expected = local.submit("mlp", {"features": x}).result()["scores"]
        with mo.Transmitter(rt, kernels, mo.mpi_link([0])) as tx:
            big = np.arange(1 << 18, dtype=np.float64)  # 2 MiB: sent in parts, from the array itself
            futs = [(tx.submit("mlp", {"features": x}), tx.submit("echo", {"payload": big + i}),
                     tx.submit("square", {"x": big[:100] + i})) for i in range(20)]
            for i, (m, e, s) in enumerate(futs):
                m, e, s = m.result(timeout=60), e.result(timeout=60), s.result(timeout=60)
                ok = ok and all(r.receiver == 0 for r in (m, e, s))
                ok = ok and np.array_equal(m["scores"], expected) and np.array_equal(e["payload"], big + i)
                ok = ok and np.array_equal(s["y"], (big[:100] + i) ** 2)
            remote = tx.stats()["remote"]
        print(f"rank {rt.rank} transmitter: remote {remote}, ok {ok}", flush=True)
    if mode == "adopt":
        rt.close()  # before mpi4py finalises MPI
        ok = MPI.COMM_WORLD.allreduce(ok, op=MPI.LAND)  # mpi4py still works beside (and after) the library
    else:
        rt.barrier()
        rt.close()
    return 0 if ok else 1


sys.exit(main())
