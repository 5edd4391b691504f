"""What the CUDA engine sends to a device, as plain records, and how steps become them.

Row-major onto column-major. cuBLAS reads a matrix at `ptr` with leading dimension `ld` as
column-major: element `(i, j)` at `ptr + (i + j * ld) * itemsize`. A row-major `R x C` matrix
with row stride `ld` is, read that way, its transpose `C x R`. So the row-major product
`C = op(A) op(B)` is computed as the column-major `C^T = op(B)^T op(A)^T`: one `gemm` with
the operands swapped, `transa` = the step's `trans_b`, `transb` = its `trans_a`,
`m, n, k = cols(C), rows(C), k`, and every leading dimension the row stride `ld` of the view.
No data moves and views with `ld > cols` (rows padded, or windows into wider rows) need no
copy. A copy or a transpose of a row-major window is one `geam` the same way.

Library ops (`op` steps) become cuBLAS calls where that is exact and cheap (`DEVICE_OPS`:
stack, concat along the first or last axis, sums and means over the leading axes as a GEMM
with a row of ones, 2-D transpose, reshape of contiguous data); any other op, or an op whose
views do not fit, runs on the host with runtime.library (`None` from the table means that).

Kernels are launched with block `(256, 1, 1)` and grid `(ceil(cols / 256), min(rows, 65535))`:
the CUDA rendering (codegen/render.py) walks rows over `blockIdx.y` and columns over the x
threads, both grid-stride, so the grid may be smaller than the index space.
"""
from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass

import numpy as np

from runtime.assemble import copies, flat2d
from runtime.compile_cache import kernel_args
from runtime.library import reduced_axes
from runtime.program import Kernel, Step

BLOCK = (256, 1, 1)
MAX_GRID_X, MAX_GRID_Y = 2**31 - 1, 65535
PACK = {ctypes.c_long: np.int64, ctypes.c_void_p: np.uintp}  # kernel_args ctype -> scalar


@dataclass(frozen=True)
class Matrix:
    """A row-major `rows x cols` matrix in device memory, row stride `ld` elements."""
    ptr: int
    rows: int
    cols: int
    ld: int

    @property
    def lead(self) -> int:
        """The leading dimension to give cuBLAS, which wants `ld >= max(1, cols)` even where
        one row makes the stride meaningless."""
        if self.rows <= 1:
            return max(self.ld, self.cols, 1)
        if self.ld < self.cols:
            raise ValueError(f"cuBLAS cannot read {self} (rows overlap: ld < cols)")
        return self.ld


@dataclass(frozen=True)
class Launch:
    kernel: str
    grid: tuple
    block: tuple
    args: tuple

    def issue(self, device) -> None:
        device.launch(self.kernel, self.grid, self.block, self.args)


@dataclass(frozen=True)
class Gemm:
    dtype: str
    transa: str
    transb: str
    m: int
    n: int
    k: int
    alpha: float
    a: int
    lda: int
    b: int
    ldb: int
    beta: float
    c: int
    ldc: int

    def issue(self, device) -> None:
        device.gemm(self.dtype, self.transa, self.transb, self.m, self.n, self.k, self.alpha,
                    self.a, self.lda, self.b, self.ldb, self.beta, self.c, self.ldc)


@dataclass(frozen=True)
class Geam:
    dtype: str
    transa: str
    transb: str
    m: int
    n: int
    alpha: float
    a: int
    lda: int
    beta: float
    b: int
    ldb: int
    c: int
    ldc: int

    def issue(self, device) -> None:
        device.geam(self.dtype, self.transa, self.transb, self.m, self.n, self.alpha, self.a,
                    self.lda, self.beta, self.b, self.ldb, self.c, self.ldc)


def launch_config(rows: int, cols: int) -> tuple[tuple, tuple]:
    """(grid, block) for an elementwise kernel over `rows x cols`, both at least 1."""
    grid_x = min(max(math.ceil(cols / BLOCK[0]), 1), MAX_GRID_X)
    return (grid_x, min(max(rows, 1), MAX_GRID_Y), 1), BLOCK


def launch_args(kernel: Kernel, rows: int, cols: int, operands: list, ctl: int,
                masks: int) -> tuple:
    """The kernel's arguments in `kernel_args` order, as numpy scalars of the C types:
    `operands` is `[(pointer, ld)]`, inputs then outputs."""
    values = [rows, cols, *(x for pair in operands for x in pair), ctl, masks]
    params = kernel_args(kernel.n_in, kernel.n_out)
    if len(values) != len(params):
        raise ValueError(f"kernel {kernel.name} takes {len(params)} arguments, given "
                         f"{len(values)}")
    return tuple(PACK[p.ctype](v) for p, v in zip(params, values))


def gemm_call(dtype: str, a: Matrix, b: Matrix, c: Matrix, trans_a: bool = False,
              trans_b: bool = False, alpha: float = 1.0, beta: float = 0.0) -> Gemm:
    """Row-major `C = alpha op(A) op(B) + beta C` as the column-major cuBLAS call
    `C^T = alpha op(B)^T op(A)^T + beta C^T`."""
    m, k = (a.cols, a.rows) if trans_a else (a.rows, a.cols)
    k_b, n = (b.cols, b.rows) if trans_b else (b.rows, b.cols)
    if k != k_b or (c.rows, c.cols) != (m, n):
        raise ValueError(f"gemm multiplies {(m, k)} by {(k_b, n)} into {(c.rows, c.cols)}")
    return Gemm(dtype, "T" if trans_b else "N", "T" if trans_a else "N", n, m, k, alpha,
                b.ptr, b.lead, a.ptr, a.lead, beta, c.ptr, c.lead)


def copy_call(dtype: str, src: Matrix, dst: Matrix, transpose: bool = False) -> Geam:
    """`dst = src` (or `src^T`) between row-major windows, as one column-major `geam`
    (`B` is `A` again with `beta = 0`, so it is a valid operand that is never read)."""
    want = (src.cols, src.rows) if transpose else (src.rows, src.cols)
    if (dst.rows, dst.cols) != want:
        raise ValueError(f"copy of {(src.rows, src.cols)} (transpose={transpose}) into "
                         f"{(dst.rows, dst.cols)}")
    op = "T" if transpose else "N"
    m, n = (src.rows, src.cols) if transpose else (src.cols, src.rows)
    return Geam(dtype, op, op, m, n, 1.0, src.ptr, src.lead, 0.0, src.ptr, src.lead, dst.ptr,
                dst.lead)


# ---- op steps on the device -----------------------------------------------------------------

DEVICE_OPS: dict = {}


def device_op(name: str):
    def register(fn):
        DEVICE_OPS[name] = fn
        return fn
    return register


@device_op("transpose")
def _transpose(step: Step, ctx) -> list | None:
    (x,), (y,) = step.inputs, step.outputs
    if len(x.shape) != 2 or not flat2d(x) or not flat2d(y):
        return None
    return [copy_call(ctx.dtype(y), ctx.matrix(x), ctx.matrix(y), transpose=True)]


@device_op("stack")
def _stack(step: Step, ctx) -> list | None:
    return _assemble("stack", step, ctx)


@device_op("concat")
def _concat(step: Step, ctx) -> list | None:
    return _assemble("concat", step, ctx)


def _assemble(op: str, step: Step, ctx) -> list | None:
    """One copy per part not already stored in its window (runtime.assemble)."""
    (y,) = step.outputs
    parts = copies(op, step.attrs, list(step.inputs), y)
    if parts is None:
        return None
    return [copy_call(ctx.dtype(y), ctx.matrix(x), ctx.matrix(w)) for x, w in parts]


@device_op("sum")
def _sum(step: Step, ctx, scale: bool = False) -> list | None:
    """Over the leading axes: `out (1 x C) = ones (1 x R) . x (R x C)`."""
    (x,), (y,) = step.inputs, step.outputs
    ndim = len(x.shape)
    if ndim < 2 or reduced_axes(step.attrs, ndim) != tuple(range(ndim - 1)) or not flat2d(x):
        return None
    if y.rows * y.cols != x.cols or not y.contiguous:
        return None
    alpha = 1.0 / x.rows if scale else 1.0
    out = Matrix(ctx.matrix(y).ptr, 1, x.cols, x.cols)
    return [gemm_call(ctx.dtype(y), ctx.ones(ctx.dtype(y), x.rows), ctx.matrix(x), out,
                      alpha=alpha)]


@device_op("mean")
def _mean(step: Step, ctx) -> list | None:
    return _sum(step, ctx, scale=True)


@device_op("reshape")
def _reshape(step: Step, ctx) -> list | None:
    (x,), (y,) = step.inputs, step.outputs
    if not (x.contiguous and y.contiguous) or x.rows * x.cols != y.rows * y.cols:
        return None
    size = x.rows * x.cols
    src, dst = ctx.matrix(x), ctx.matrix(y)
    return [copy_call(ctx.dtype(y), Matrix(src.ptr, 1, size, size),
                      Matrix(dst.ptr, 1, size, size))]
