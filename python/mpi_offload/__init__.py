"""mpi_offload: ship work from Python to remote GPU/CPU receivers over MPI, gRPC or KServe v2,
with the kernel run locally (fallback) when no receiver answers in time. docs/python.md.

The names are the C++ API's (include/offload/*.hpp):

    import numpy as np, mpi_offload as mo
    rt = mo.Runtime(mpi=False)                              # gRPC only: no MPI in this process
    tx = mo.Transmitter(rt, mo.builtin_kernels(), mo.grpc_link(["127.0.0.1:7000"]))
    out = tx.submit("mlp", {"features": np.zeros((256, 16), np.float32)}).result()
    out["scores"]                                           # a (256, 4) float32 view on the reply
"""

import asyncio as _asyncio
import atexit as _atexit
import concurrent.futures as _futures
import ctypes as _ctypes
import sys as _sys

# Open MPI's components (loaded with dlopen) need libmpi's symbols global, as a program linked
# with it has them; a Python extension is loaded with RTLD_LOCAL. (mpi4py does the same.)
for _name in ("libmpi.so.40", "libmpi.so"):
    try:
        _ctypes.CDLL(_name, mode=_ctypes.RTLD_GLOBAL)
        break
    except OSError:
        pass

from . import _core  # noqa: E402
from ._core import (  # noqa: E402,F401
    HandshakeError,
    InputError,
    KernelRegistry,
    MPIError,
    OutputError,
    PluginError,
    PythonKernel,
    Receiver,
    Reply,
    RequestTiming,
    Runtime,
    Transmitter,
    builtin_kernels,
    client_security,
    grpc_link,
    grpc_listen,
    has_kserve,
    listen_all,
    mpi_link,
    server_security,
    set_log_level,
)

if has_kserve:
    from ._core import ModelRepositoryError, kserve_link, kserve_listen  # noqa: F401


class RequestError(RuntimeError):
    """A request whose kernel could not run at all (its inputs were rejected locally too)."""


class Result(dict):
    """The outputs of one request: {name: numpy array}, each array a view on the reply's bytes
    (no copy; the bytes live as long as any array, or this dict, does). Where it came from and
    when: `receiver` (-1: computed locally), `fallback` ("none", "timeout", "error_reply",
    "no_receiver"), `remote_error`, `latency` (seconds from submit), `timing` (per stage)."""

    __slots__ = ("_reply",)

    @property
    def ok(self):
        return self._reply.ok

    @property
    def error(self):
        return self._reply.error

    @property
    def fallback(self):
        return self._reply.fallback

    @property
    def remote_error(self):
        return self._reply.remote_error

    @property
    def receiver(self):
        return self._reply.receiver

    @property
    def latency(self):
        return self._reply.latency

    @property
    def timing(self):
        return self._reply.timing

    @property
    def reply(self):
        """The object that owns the reply's bytes (every array's `base`)."""
        return self._reply

    def __repr__(self):
        shapes = ", ".join(f"{k!r}: {v.dtype}{list(v.shape)}" for k, v in self.items())
        where = "local, " + self.fallback if self.receiver < 0 else f"receiver {self.receiver}"
        return f"Result({{{shapes}}}, {where}, {self.latency * 1e3:.3f} ms)"


class Future(_futures.Future):
    """What Transmitter.submit returns: a concurrent.futures.Future whose result(), exception()
    and done() take the result straight from the library's thread (the one that waits gets it
    with one wake-up, as C++'s future.get(); a result nobody waits for yet is kept for the next
    of these calls). Otherwise it is concurrent.futures': add_done_callback, cancel() (False: it
    is running), concurrent.futures.wait and as_completed (these see a result within ~0.1 ms
    after it arrives when no thread asks for it first)."""

    _offload_wait = None  # set by submit: the request's wait in the library

    def result(self, timeout=None):
        if self._offload_wait is not None:
            timeout = _core._wait_request(self._offload_wait, timeout)
        return super().result(timeout)

    def exception(self, timeout=None):
        if self._offload_wait is not None:
            timeout = _core._wait_request(self._offload_wait, timeout)
        return super().exception(timeout)

    def done(self):
        if self._offload_wait is not None:
            _core._take_request(self._offload_wait, False)
        return super().done()

    def add_done_callback(self, fn):
        if self._offload_wait is not None:
            _core._take_request(self._offload_wait, True)
        super().add_done_callback(fn)


def _resolve_async(fut, value, is_exception):
    if fut.cancelled():
        return
    if is_exception:
        fut.set_exception(value)
    else:
        fut.set_result(value)


def _bfloat16():
    try:
        import ml_dtypes  # optional: numpy has no bfloat16 of its own
        import numpy

        return numpy.dtype(ml_dtypes.bfloat16)
    except ImportError:
        return None


_core._set_types(Result, _resolve_async, Future, _asyncio.get_running_loop, _bfloat16(), RequestError)


def _adopt(comm):
    """Runtime.adopt(comm): attaches to the MPI that mpi4py initialised, on a duplicate of
    `comm` (an mpi4py communicator); MPI needs MPI_THREAD_MULTIPLE (mpi4py's default)."""
    from mpi4py import MPI

    if not isinstance(comm, MPI.Comm):
        raise TypeError(f"Runtime.adopt: comm is {type(comm).__name__}, not an mpi4py communicator")
    level = MPI.Query_thread()
    if level != MPI.THREAD_MULTIPLE:
        names = {MPI.THREAD_SINGLE: "MPI_THREAD_SINGLE", MPI.THREAD_FUNNELED: "MPI_THREAD_FUNNELED",
                 MPI.THREAD_SERIALIZED: "MPI_THREAD_SERIALIZED"}
        raise MPIError(f"Runtime.adopt: MPI was initialised with {names.get(level, level)}, the library needs "
                       "MPI_THREAD_MULTIPLE: set mpi4py.rc.thread_level = 'multiple' (the default) before "
                       "importing mpi4py.MPI")
    return Runtime._adopt(MPI._handleof(comm))


Runtime.adopt = staticmethod(_adopt)


def python_kernel(fn=None, *, name=None, version="1", inputs=None, outputs=None, output_specs=None, joinable=False):
    """A kernel written in Python, to add to a registry (KernelRegistry.add):

        @mpi_offload.python_kernel(name="scale", inputs=[("x", "f32", [-1, 4])],
                                   outputs=[("y", "f32", [-1, 4])])
        def scale(inputs):
            return {"y": inputs["x"] * 2}

    `fn(inputs)` gets {name: read-only numpy array} (valid during the call only: copy what you
    keep) and returns {name: array} for every output. Tensors are (name, dtype, dims), dims
    with -1 for any size; when every tensor's first dim is -1 it counts rows and the outputs
    get the inputs' rows. `output_specs(specs) -> {name: (dtype, shape)}` sizes outputs the
    rows do not. The receiver and the fallback run it with the GIL held for the call only."""

    def make(f):
        return PythonKernel(f, name or getattr(f, "__name__", None), version, inputs, outputs, output_specs, joinable)

    return make if fn is None else make(fn)


def _shutdown():
    _core._shutdown()


_atexit.register(_shutdown)

__all__ = [n for n in dir(_sys.modules[__name__]) if not n.startswith("_")]
