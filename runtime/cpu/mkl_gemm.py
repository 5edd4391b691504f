"""MKL's GEMMs through ctypes: the packed-GEMM API for products against one weight, and
`cblas_?gemm` for the rest (runtime.cpu.gemm's `mkl`). The optional `mkl` extra (PyPI `mkl`)
installs `libmkl_rt`; without it, `MklImpl()` raises BackendUnavailable.

    size = cblas_sgemm_pack_get_size(CblasBMatrix, m, n, k)
    cblas_sgemm_pack(CblasRowMajor, CblasBMatrix, trans, m, n, k, 1.0, b, ldb, packed)
    cblas_sgemm_compute(CblasRowMajor, CblasNoTrans, CblasPacked, m, n, k, a, lda,
                        packed, ldb, 0.0, c, ldc)

MKL packs for a given `m`; a packed copy of B made for one `m` serves every product with that
many rows, so `packed` packs per row count it is asked for (the per-step products of an RNN
all have `batch` rows). MKL runs its own (OpenMP) threads; `threads` is not read.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from functools import partial
from pathlib import Path

import numpy as np

from runtime.cpu.packed_gemm import _layout, aligned
from runtime.errors import BackendUnavailable

ROW_MAJOR, NO_TRANS, TRANS, PACKED, B_MATRIX = 101, 111, 112, 151, 162
PREFIX = {"float32": "s", "float64": "d"}
_INT, _PTR, _LP64 = ctypes.c_int, ctypes.c_void_p, ctypes.c_int  # MKL_INT: 32-bit (LP64)


def _candidates() -> list[str]:
    dirs = {Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib"}
    found = [str(p) for d in sorted(dirs) for p in sorted(d.glob("libmkl_rt.so*"))]
    name = ctypes.util.find_library("mkl_rt")
    return found + ([name] if name else [])


@functools.cache
def library() -> ctypes.CDLL:
    """libmkl_rt, its GEMM functions declared; BackendUnavailable where it is missing."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "cblas_sgemm_pack"):
            _declare(lib)
            return lib
    raise BackendUnavailable("SYMRNN_GEMM=mkl: libmkl_rt with the packed-GEMM API "
                             "(cblas_sgemm_pack) is not installed; pip install 'symrnn[mkl]' "
                             "(PyPI mkl), or choose SYMRNN_GEMM=packed or blas")


def _declare(lib) -> None:
    for p, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
        size = getattr(lib, f"cblas_{p}gemm_pack_get_size")
        size.argtypes, size.restype = [_INT, _LP64, _LP64, _LP64], ctypes.c_size_t
        pack = getattr(lib, f"cblas_{p}gemm_pack")
        pack.argtypes = [_INT, _INT, _INT, _LP64, _LP64, _LP64, real, _PTR, _LP64, _PTR]
        compute = getattr(lib, f"cblas_{p}gemm_compute")
        compute.argtypes = [_INT, _LP64, _LP64, _LP64, _LP64, _LP64, _PTR, _LP64, _PTR, _LP64,
                            real, _PTR, _LP64]
        gemm = getattr(lib, f"cblas_{p}gemm")
        gemm.argtypes = [_INT, _INT, _INT, _LP64, _LP64, _LP64, real, _PTR, _LP64, _PTR, _LP64,
                         real, _PTR, _LP64]
        for fn in (pack, compute, gemm):
            fn.restype = None


def set_threads(n: int) -> None:
    """MKL's thread count, for the process (bench/gemm.py's --threads)."""
    fn = library().MKL_Set_Num_Threads
    fn.argtypes, fn.restype = [ctypes.c_int], None
    fn(int(n))


class MklImpl:
    """runtime.cpu.gemm's `mkl`."""

    name, own_pool = "mkl", False

    def __init__(self):
        self.lib = library()

    def packs(self, dtype: str) -> bool:
        return str(dtype) in PREFIX

    def packed(self, dtype: str, k: int, n: int, threads=None):
        return MklPacked(self.lib, str(dtype), int(k), int(n))

    def product(self, a, b, c, threads=None, scratch=None):
        la, lb, lc = _layout(a), _layout(b), _layout(c)
        dtype = c.dtype.name
        if dtype not in PREFIX or {a.dtype, b.dtype} != {c.dtype} or None in (la, lb, lc) \
                or lc[0] or 0 in c.shape or a.shape[1] == 0:
            return partial(np.matmul, a, b, out=c)
        (m, k), n = a.shape, b.shape[1]
        fn = getattr(self.lib, f"cblas_{PREFIX[dtype]}gemm")
        return _keeping((a, b, c), partial(
            fn, ROW_MAJOR, TRANS if la[0] else NO_TRANS, TRANS if lb[0] else NO_TRANS, m, n, k,
            1.0, _address(a), la[1], _address(b), lb[1], 0.0, _address(c), lc[1]))

    def scratch_size(self, k: int, n: int, dtype: str) -> int:
        return 0


class MklPacked:
    """A K x N right operand packed by MKL, once per row count of the left operands."""

    def __init__(self, lib, dtype: str, k: int, n: int):
        self.lib, self.dtype, self.k, self.n = lib, dtype, k, n
        p = PREFIX[dtype]
        self._size = getattr(lib, f"cblas_{p}gemm_pack_get_size")
        self._pack = getattr(lib, f"cblas_{p}gemm_pack")
        self._compute = getattr(lib, f"cblas_{p}gemm_compute")
        self._copies: dict = {}  # rows -> packed buffer
        self._b = None  # (B, its layout), set by pack_call

    def _copy_for(self, m: int) -> np.ndarray:
        if m not in self._copies:
            nbytes = int(self._size(B_MATRIX, m, self.n, self.k))
            self._copies[m] = aligned(nbytes // np.dtype(self.dtype).itemsize + 1, self.dtype)
        return self._copies[m]

    def pack_call(self, b: np.ndarray):
        """A callable packing `b` (K x N, either storage order) for every row count used."""
        lb = _layout(b)
        if b.shape != (self.k, self.n) or b.dtype != np.dtype(self.dtype) or lb is None:
            raise ValueError(f"mkl packed gemm: B is {b.dtype}{b.shape}, expected "
                             f"{self.dtype}{(self.k, self.n)}")
        self._b = (b, lb)
        return _keeping((b, self), partial(self._pack_all))

    def _pack_all(self) -> None:
        b, (trans, ld) = self._b
        for m, dest in self._copies.items():
            self._pack(ROW_MAJOR, B_MATRIX, TRANS if trans else NO_TRANS, m, self.n, self.k,
                       1.0, _address(b), ld, _address(dest))

    def gemm_call(self, a: np.ndarray, c: np.ndarray):
        """A callable for `c = a @ B` against the packed copy for `a`'s row count."""
        m = a.shape[0]
        la, lc = _layout(a), _layout(c)
        if a.shape != (m, self.k) or c.shape != (m, self.n) or la is None or la[0] \
                or lc is None or lc[0]:
            raise ValueError(f"mkl packed gemm: {a.dtype}{a.shape} @ {(self.k, self.n)} into "
                             f"{c.dtype}{c.shape}")
        dest = self._copy_for(m)
        return _keeping((a, c, self), partial(
            self._compute, ROW_MAJOR, NO_TRANS, PACKED, m, self.n, self.k, _address(a), la[1],
            _address(dest), self.n, 0.0, _address(c), lc[1]))


def _keeping(owners: tuple, call):
    call.keep = owners
    return call


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]

