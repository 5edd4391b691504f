"""numpy's BLAS, reached from inside the process: its thread count and its `cblas_?gemm`
(runtime.cpu.packed_gemm's big_call runs the products that run once through it, one
single-threaded call per thread of the engine's pool).

OpenBLAS's own threads collapse when another process holds a core: a fused forward measured
660 ms with 2 threads against 18 ms with 1 on this 2-core machine while it was busy. The CPU
engine therefore keeps OpenBLAS to one thread and runs its own pool (runtime.cpu.gemm_source), which
degrades to one thread instead. `blas_threads(n)` sets the count for a block (None: unchanged).

OpenBLAS's idle threads spin for about 2^28 cycles (0.1 s) after each threaded call, so a
threaded GEMM followed by work on a second thread pool (the packed per-step GEMMs) leaves that
pool one core short for the whole time loop (measured: a 2-thread loop after a 2-thread
OpenBLAS GEMM was no faster than a 1-thread one). `one_pool()` therefore sets OpenBLAS to one
thread for the length of a phase and tells the engine how many threads it had: the engine runs
its GEMMs and kernels on that many threads of its own pool (runtime.cpu.gemm_source).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from dataclasses import dataclass

_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")
_GEMMS = {  # symbol prefix and suffix of cblas_?gemm, and the BLAS's integer width
    ("scipy_cblas_", "64_"): 64, ("cblas_", "64_"): 64, ("scipy_cblas_", ""): 32,
    ("cblas_", ""): 32,
}


@dataclass(frozen=True)
class OpenBlas:
    set_threads: object  # ctypes function (int) -> None
    get_threads: object  # ctypes function () -> int
    gemm: dict  # "float32"/"float64" -> address of cblas_sgemm/dgemm; empty if not found
    int_bits: int  # 64 for an ILP64 build (blasint is a long), else 32


@functools.cache
def openblas() -> OpenBlas | None:
    """The OpenBLAS numpy loaded, or None (another BLAS, or no /proc)."""
    import numpy  # noqa: F401  (loads its BLAS)

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            get = name.replace("set_num", "get_num")
            if hasattr(lib, name) and hasattr(lib, get):
                setter, getter = getattr(lib, name), getattr(lib, get)
                setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                return OpenBlas(setter, getter, *_gemms(lib))
    return None


def _gemms(lib) -> tuple:
    for (prefix, suffix), bits in _GEMMS.items():
        names = {"float32": f"{prefix}sgemm{suffix}", "float64": f"{prefix}dgemm{suffix}"}
        if all(hasattr(lib, n) for n in names.values()):
            return ({d: ctypes.cast(getattr(lib, n), ctypes.c_void_p).value
                     for d, n in names.items()}, bits)
    return {}, 32


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Runs the block with `n` BLAS threads (None: unchanged; no OpenBLAS: no effect)."""
    blas = openblas() if n else None
    if blas is None:
        yield
        return
    before = blas.get_threads()
    blas.set_threads(int(n))
    try:
        yield
    finally:
        blas.set_threads(before)


class one_pool:
    """Yields the BLAS thread count, with OpenBLAS held to one thread inside the block
    (without OpenBLAS: yields 1 and changes nothing). A class, not a generator: it is entered
    once per phase of every forward, and a T=1 streaming chunk is ~100 us in all.

    Holders in several Python threads (executors run at once) share one hold: the first
    holder reads the count and sets one thread, every holder is told that count, and the last
    to leave restores it. Each read its own count before: a phase that began while another
    held OpenBLAS was told 1 and ran on one thread, its rounding then that of one thread (the
    products' splits, the column sums) and not the one it gave alone, and the first to leave
    restored the count while the other still ran its single-threaded BLAS calls."""

    __slots__ = ("_blas",)

    def __enter__(self) -> int:
        self._blas = blas = openblas()
        if blas is None:
            return 1
        with _HOLD:
            if _held[0] == 0:
                _held[1] = max(1, blas.get_threads())
                if _held[1] > 1:
                    blas.set_threads(1)
            _held[0] += 1
            return _held[1]

    def __exit__(self, *exc) -> None:
        if self._blas is None:
            return
        with _HOLD:
            _held[0] -= 1
            if _held[0] == 0 and _held[1] > 1:
                self._blas.set_threads(_held[1])


_HOLD = threading.Lock()
_held = [0, 1]  # one_pool's holders now, and the count the first of them found


def thread_count() -> int:
    """The thread count `one_pool` would yield, changing nothing: for a phase that calls no
    BLAS (every step one of symrnn's own C calls), where holding OpenBLAS is not needed."""
    blas = openblas()
    if blas is None:
        return 1
    with _HOLD:
        return _held[1] if _held[0] else max(1, blas.get_threads())
