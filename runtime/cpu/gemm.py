"""The CPU engine's GEMMs behind one interface, the implementations side by side.

- `packed` (the default): symrnn's own packed-weight GEMM (runtime.cpu.packed_gemm): per-step
  products against a weight packed once per phase, the other products through numpy's cblas
  split over the engine's thread pool (or blocked and packed as they go: SYMRNN_BIG_GEMM);
- `blas`: numpy's `matmul` (OpenBLAS), which packs its operands on every call;
- `mkl`: MKL's packed-GEMM API (`cblas_sgemm_pack` / `cblas_sgemm_compute`) for the per-step
  products and `cblas_sgemm` for the rest, through ctypes (runtime.cpu.mkl_gemm; the `mkl` extra,
  `pip install 'symrnn[mkl]'`).

`SYMRNN_GEMM=packed|blas|mkl` chooses; `SYMRNN_PACKED_GEMM=0`, the older switch, means `blas`.
bench/gemm.py measures the three at the shapes of an LSTM (per step and over all steps); the
default is the fastest there.

An implementation answers, for the engine:

- `packs(dtype)`: whether products against one weight run against a packed copy of it;
- `packed(dtype, k, n, threads)`: that copy, with `pack_call(b)` (a callable filling it from
  `b`, K x N) and `gemm_call(a, c)` (a callable for `c = a @ B`);
- `product(a, b, c, threads, scratch)`: a callable for `c = a @ b` that runs once a phase;
- `scratch_size(k, n, dtype)`: the elements of scratch `product` wants (0: none);
- `own_pool`: whether the engine runs its phases on its own thread pool (runtime.cpu.blas.one_pool),
  lending it OpenBLAS's threads, and splits large kernels over it.

`threads` is the engine's one-element thread-count array, set per phase.
"""
from __future__ import annotations

import functools
import os
from functools import partial

import numpy as np

from runtime.cpu import packed_gemm
from runtime.errors import ConfigError

NAMES = ("packed", "blas", "mkl")
DEFAULT = "packed"


class PackedImpl:
    """symrnn's packed GEMM (runtime.cpu.packed_gemm); `blocked`: the products that run once
    on its blocked GEMM rather than numpy's cblas split over the pool (SYMRNN_BIG_GEMM, read
    when the implementation is selected, so that an engine keeps the path it was built with)."""

    name, own_pool = "packed", True

    def __init__(self, blocked: bool = False):
        self.blocked = blocked

    def packs(self, dtype: str) -> bool:
        return str(dtype) in packed_gemm.SUFFIX

    def packed(self, dtype: str, k: int, n: int, threads: np.ndarray):
        return _OwnPacked(packed_gemm.PackedGemm(dtype, k, n, threads))

    def product(self, a, b, c, threads, scratch):
        call = packed_gemm.big_call(a, b, c, False, threads, scratch, self.blocked)
        return call if call is not None else partial(np.matmul, a, b, out=c)  # odd layouts

    def scratch_size(self, k: int, n: int, dtype: str) -> int:
        return packed_gemm.scratch_size(k, n, dtype) if self.packs(dtype) else 0


class _OwnPacked:
    def __init__(self, pg: packed_gemm.PackedGemm):
        self.pg = pg

    def pack_call(self, b: np.ndarray):
        return self.pg.pack_call(b)

    def gemm_call(self, a: np.ndarray, c: np.ndarray):
        return self.pg.gemm_call(a, c, False)


class BlasImpl:
    """numpy's BLAS: every product through `np.matmul`."""

    name, own_pool = "blas", False

    def packs(self, dtype: str) -> bool:
        return False

    def packed(self, dtype, k, n, threads):
        raise ValueError("internal: the blas GEMM packs nothing")

    def product(self, a, b, c, threads, scratch):
        return partial(np.matmul, a, b, out=c)

    def scratch_size(self, k: int, n: int, dtype: str) -> int:
        return 0


def selected_name() -> str:
    """The implementation the environment asks for (SYMRNN_GEMM, else SYMRNN_PACKED_GEMM)."""
    name = os.environ.get("SYMRNN_GEMM", "").strip().lower()
    if not name:
        old = os.environ.get("SYMRNN_PACKED_GEMM", "1")
        return "blas" if old in ("", "0") else DEFAULT
    if name not in NAMES:
        raise ConfigError(f"SYMRNN_GEMM must be one of {', '.join(NAMES)}, given "
                          f"{os.environ['SYMRNN_GEMM']!r}")
    return name


def selected():
    """The GEMM implementation the environment asks for (see `selected_name`)."""
    name = selected_name()
    return implementation(name, name == "packed" and packed_gemm.blocked_selected())


@functools.cache
def implementation(name: str, blocked: bool = False):
    """The implementation called `name` (`blocked`: PackedImpl's); `mkl` raises
    BackendUnavailable without MKL."""
    if name == "packed":
        return PackedImpl(blocked)
    if name == "blas":
        return BlasImpl()
    if name == "mkl":
        from runtime.cpu.mkl_gemm import MklImpl

        return MklImpl()
    raise ConfigError(f"GEMM implementation must be one of {', '.join(NAMES)}, given {name!r}")
