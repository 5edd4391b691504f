"""The GPU behind the CUDA engine: PyCUDA for memory, modules and launches, cuBLAS through
runtime.cuda.cublas, CUDA graphs through the driver API with ctypes.

PyCUDA is imported here, lazily (runtime.cuda imports this module only when an engine is
built without a device of its own). The device works in the device's *primary* context,
retained and pushed once per process (`default_device()`), so memory and streams are shared
with the CUDA runtime and the libraries on it (cuBLAS, PyTorch, CuPy); it is popped at exit.
Calls must come from the thread that made the device.

All work goes to one stream of our own: launches (`prepared_async_call`), cuBLAS
(`cublasSetStream_v2`), copies (`memcpy_*_async`; a device->host copy then waits for the
stream) and graph capture. PyCUDA 2026.1 has no graph API, so `begin_capture`,
`end_capture` and `launch_graph` call `cuStreamBeginCapture_v2`, `cuStreamEndCapture`,
`cuGraphInstantiateWithFlags` and `cuGraphLaunch` from libcuda with ctypes.

Kernels are compiled from `Kernel.cuda_source` with `pycuda.compiler.SourceModule(...,
no_extern_c=True)` (the source declares `extern "C"` itself), which caches the binary on
disk keyed by source, options and nvcc version; modules are also kept in memory here. The
kernels of one program share their prelude (codegen/render.py), so they are compiled as one
module: the prelude once, then every kernel.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import shutil

from runtime.compile_cache import kernel_args
from runtime.errors import BackendUnavailable, CompileError

HINT = ("on a machine with an NVIDIA GPU and the CUDA toolkit, `pip install -e '.[cuda]'`; "
        "or use backend='cpu'")
MARKER = 'extern "C" __global__'  # where the shared prelude of a CUDA rendering ends
FORMAT = {ctypes.c_long: "q", ctypes.c_void_p: "P"}  # kernel_args ctype -> struct format
CAPTURE_THREAD_LOCAL = 1  # CUstreamCaptureMode
WORKSPACE_BYTES = 32 << 20  # cuBLAS workspace: set explicitly so capture never allocates


@functools.cache
def default_device(ordinal: int = 0) -> PyCudaDevice:
    """One device per process and ordinal: one context push, one stream, one cuBLAS handle."""
    return PyCudaDevice(ordinal)


def import_driver():
    """`pycuda.driver`, or BackendUnavailable naming the missing piece."""
    try:
        import pycuda  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable(f"backend 'cuda' needs PyCUDA, which is not installed "
                                 f"({e}): {HINT}") from e
    try:
        import pycuda.driver as cuda
    except ImportError as e:  # PyCUDA's extension could not load libcuda.so.1
        raise BackendUnavailable(f"backend 'cuda': PyCUDA is installed but the NVIDIA driver "
                                 f"library (libcuda.so.1) could not be loaded ({e}); install "
                                 f"the NVIDIA driver, or use backend='cpu'") from e
    return cuda


def find_nvcc() -> str:
    """nvcc, which PyCUDA needs even for cached modules (its version is in the cache key)."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for path in [shutil.which("nvcc"), *(os.path.join(r, "bin", "nvcc") for r in roots if r)]:
        if path and os.access(path, os.X_OK):
            return path
    raise BackendUnavailable(f"backend 'cuda' compiles its kernels with nvcc, which was not "
                             f"found on PATH or under CUDA_HOME: install the CUDA toolkit; "
                             f"{HINT}")


def primary_context(cuda, ordinal: int):
    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as e:
        raise BackendUnavailable(f"backend 'cuda': the CUDA driver did not start ({e}): no "
                                 f"usable NVIDIA GPU or driver here; use backend='cpu'") from e
    if count <= ordinal:
        raise BackendUnavailable(f"backend 'cuda': no CUDA device {ordinal} (found {count}); "
                                 f"use backend='cpu'")
    context = cuda.Device(ordinal).retain_primary_context()
    context.push()
    atexit.register(_pop, cuda, context)
    return context


class PyCudaDevice:
    """runtime.cuda.Device on a GPU."""

    def __init__(self, ordinal: int = 0):
        cuda = self.cuda = import_driver()
        self.context = primary_context(cuda, ordinal)
        self.name = cuda.Device(ordinal).name()
        self.nvcc = find_nvcc()
        from runtime.cuda.cublas import Cublas

        self.stream = cuda.Stream()
        self.blas = Cublas(self.stream.handle)
        self._allocations: dict = {}
        self.blas.set_workspace(self.alloc(WORKSPACE_BYTES), WORKSPACE_BYTES)
        self._modules: dict = {}
        self._functions: dict = {}
        self._driver = None

    def alloc(self, nbytes: int) -> int:
        allocation = self.cuda.mem_alloc(max(int(nbytes), 1))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr)
        with contextlib.suppress(self.cuda.Error):  # the context may be gone at exit
            allocation.free()

    def memcpy_htod(self, ptr: int, host) -> None:
        self.cuda.memcpy_htod_async(ptr, host, self.stream)

    def memcpy_dtoh(self, host, ptr: int) -> None:
        self.cuda.memcpy_dtoh_async(host, ptr, self.stream)
        self.stream.synchronize()

    def load_kernels(self, kernels: list) -> None:
        """Compiles the kernels not loaded yet, those with the same prelude in one module
        (one nvcc call per program rather than one per kernel)."""
        from pycuda.compiler import SourceModule

        batches: dict = {}
        for k in kernels:
            if k.name not in self._functions:
                prelude, marker, body = k.cuda_source.partition(MARKER)
                batches.setdefault(prelude, {})[k.name] = (k, marker + body)
        for prelude, batch in batches.items():
            source = prelude + "".join(body for _, body in batch.values())
            if source not in self._modules:
                try:
                    self._modules[source] = SourceModule(source, nvcc=self.nvcc,
                                                         no_extern_c=True)
                except Exception as e:  # pycuda.driver.CompileError, or nvcc failing
                    raise CompileError(f"nvcc refused kernels {sorted(batch)}:\n{e}") from e
            for name, (k, _) in batch.items():
                fn = self._modules[source].get_function(name)
                fn.prepare("".join(FORMAT[a.ctype] for a in kernel_args(k.n_in, k.n_out)))
                self._functions[name] = fn

    def launch(self, kernel: str, grid: tuple, block: tuple, args: tuple) -> None:
        self._functions[kernel].prepared_async_call(grid, block, self.stream, *args)

    def gemm(self, *args) -> None:
        self.blas.gemm(*args)

    def geam(self, *args) -> None:
        self.blas.geam(*args)

    # ---- CUDA graphs through the driver API ---------------------------------------------------
    def begin_capture(self) -> None:
        self._call("cuStreamBeginCapture_v2", ctypes.c_void_p(self.stream.handle),
                   ctypes.c_int(CAPTURE_THREAD_LOCAL))

    def end_capture(self):
        graph, exe = ctypes.c_void_p(), ctypes.c_void_p()
        self._call("cuStreamEndCapture", ctypes.c_void_p(self.stream.handle),
                   ctypes.byref(graph))
        self._call("cuGraphInstantiateWithFlags", ctypes.byref(exe), graph,
                   ctypes.c_ulonglong(0))
        self._call("cuGraphDestroy", graph)  # the executable graph keeps what it needs
        return exe

    def launch_graph(self, graph) -> None:
        self._call("cuGraphLaunch", graph, ctypes.c_void_p(self.stream.handle))

    def _call(self, name: str, *args) -> None:
        if self._driver is None:
            self._driver = ctypes.CDLL("libcuda.so.1")
        status = getattr(self._driver, name)(*args)
        if status != 0:
            text = ctypes.c_char_p()
            self._driver.cuGetErrorName(status, ctypes.byref(text))
            raise RuntimeError(f"{name} failed: {(text.value or b'?').decode()} ({status})")


def _pop(cuda, context) -> None:
    with contextlib.suppress(cuda.Error):  # already popped, or the driver is shutting down
        context.pop()
