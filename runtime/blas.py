"""The thread count of numpy's BLAS, set from inside the process (as threadpoolctl does).

Small GEMMs (a training step's per-step products at N=32, H=256) run faster on one thread,
and OpenBLAS's threads collapse when another process holds a core: a fused forward measured
660 ms with 2 threads against 18 ms with 1 on this 2-core machine while it was busy. Training
loops therefore run with one BLAS thread by default; `blas_threads(None)` leaves BLAS alone.
"""
from __future__ import annotations

import contextlib
import ctypes

_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")


def _openblas():
    """(set, get) functions of the OpenBLAS loaded in this process, or None."""
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
                return setter, getter
    return None


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Runs the block with `n` BLAS threads (None: unchanged; no OpenBLAS: no effect)."""
    funcs = _openblas() if n else None
    if funcs is None:
        yield
        return
    setter, getter = funcs
    before = getter()
    setter(int(n))
    try:
        yield
    finally:
        setter(before)
