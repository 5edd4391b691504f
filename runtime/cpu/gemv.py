"""Small-batch products against an unpacked weight: `C = A @ W^T` for a few rows of `A`.

At inference with N = 1..8 sequences a per-step product `(N x K)·(K x 4H)` is a GEMV or a
skinny GEMM: bound by reading the weight once per step, not by multiply-adds. The packed GEMM
(runtime.cpu.packed_gemm) reads the same bytes, but it packs the weight first (once per forward
call for the per-step products, and on every call for a product that runs once, as in a T=1
chunk of a stream), and its 6-row micro-kernel runs one row at a time at N=1. Here the
weight is read in place: row `n` of `W` (`trans_b`, the layout of every i2h and h2h weight)
is contiguous, so each output `c[r, n]` is a dot product of two contiguous rows: one row of
`A` against 8 rows of `W` at a time, or up to RB rows of `A` against four of `W`, in vector
registers (GCC vector extensions, as runtime.cpu.gemm_source), the accumulators summed 4 or 8
at a time with AVX. The rows of `W` are split into blocks, the tasks of the engine's thread
pool (runtime.cpu.packed_gemm's `symrnn_parallel`).

The CPU engine runs here every product of at most ENGINE_ROWS rows, per-step ones included
(`in_place`: they join no packing group). One thread, CPU time (time.thread_time, so that the
shared machine's load drops out), medians of 15 interleaved rounds, (M x 512)·(512 x 2048)
float32: at M=1 this kernel 117 us, the packed GEMM 110 (before its packing, which the
per-step products paid at every forward), OpenBLAS's sgemv 111; at M=2 148 against 125, at
M=4 198 against 130 and at M=8 364 against 280: from 2 rows on the packed GEMM's broadcast
micro-kernel does fewer loads per multiply-add, so ENGINE_ROWS stays 1.

`call(a, b, c, threads)` gives the callable for a product this handles, else None: float32 or
float64, `a` with at most MAX_ROWS rows and unit column stride, `b` the transpose of a
row-major weight (`b.T` C-ordered rows), `c` with unit column stride.
"""
from __future__ import annotations

import ctypes
import functools
from functools import partial

import numpy as np

from runtime.cpu.gemm_source import PARALLEL, text, width_source

MAX_ROWS = 8  # rows of A the kernel takes
ENGINE_ROWS = 1  # rows of A for which the CPU engine uses it (see `engine_call`)
TASKS = 16  # blocks of W's rows per product, claimed by the pool's threads
SUFFIX = {"float32": "f32", "float64": "f64"}
_WORDS = ("M", "N", "K", "lda", "ldw", "ldc", "accumulate", "block", "a", "w", "c")
WORD = {name: i for i, name in enumerate(_WORDS)}

_TEMPLATE = "gemv_template.c"  # the kernel, for one C type `real` (package data)

C_TYPE = {"f32": "float", "f64": "double"}


def c_source() -> str:
    parts = ["#if defined(__AVX512F__)\n#define RB 4\n#else\n#define RB 2\n#endif\n",
             width_source()]
    tails = " ".join(f"TAIL({m})" for m in range(1, 4))
    for suffix, c_type in C_TYPE.items():
        parts.append(f"#define real {c_type}\n"
                     + text(_TEMPLATE).replace("TAILS", tails).replace("_SUF", f"_{suffix}")
                     + "#undef real\n")
    return "".join(parts)


@functools.cache
def library() -> ctypes.CDLL:
    from runtime.compile_cache import load_library

    lib = load_library(c_source(), "the small-batch GEMV")
    for s in SUFFIX.values():
        fn = getattr(lib, f"symrnn_gemv_all_{s}")
        fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_long], None
    return lib


def engine_call(a: np.ndarray, b: np.ndarray, c: np.ndarray, threads: np.ndarray):
    """`call` for the CPU engine's products with at most ENGINE_ROWS rows (`in_place`), those
    per step included: they read the weight in place, packing nothing. Measured in one
    process, interleaved, against the path it replaces (packed_gemm.big_call, which packs the
    weight on every call), a T=1 LSTM chunk (H=512) at N=1 took 2.08 ms against 3.85 (load 8.9
    on 2 cores); at N=4 it took 5.1 against 2.7. Per step at N=1 it reads the weight at the
    rate the packed GEMM reads its panels, and the panels are not packed at each forward: the
    inference programs at N=1 (T=100, H=512; one thread, CPU time, medians of 9 interleaved
    rounds, with the branch's packing changes) took 0.79 (lstm1), 0.86 (lstm2), 0.94 (gru1)
    and 0.80 (gru2) of the time they took when every per-step product was packed."""
    return call(a, b, c, threads) if a.shape[0] <= ENGINE_ROWS else None


def in_place(step, dtype_of) -> bool:
    """Whether the CPU engine runs gemm `step` here, not against a packed copy of its weight
    (runtime.cpu.packed_gemm.plan's `skip`): at most ENGINE_ROWS rows of an untransposed A
    against a row-major weight (`trans_b`) of a dtype this takes."""
    from runtime.cpu.packed_gemm import transposed

    a, b = step.inputs[:2]
    return (step.kind == "gemm" and not transposed(step, "a") and transposed(step, "b")
            and a.rows <= ENGINE_ROWS
            and str(dtype_of(b)) in SUFFIX and str(dtype_of(a)) == str(dtype_of(b))
            and (b.rows == 1 or b.ld >= b.cols))


def handles(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> bool:
    """Whether `c = a @ b` is a product for this kernel (see the module's docstring)."""
    w = b.T
    return (a.dtype.name in SUFFIX and a.dtype == b.dtype == c.dtype and a.ndim == 2
            and 0 < a.shape[0] <= MAX_ROWS and a.strides[1] == a.itemsize
            and c.strides[1] == c.itemsize and w.strides[1] == w.itemsize
            and w.strides[0] >= w.shape[1] * w.itemsize)


def call(a: np.ndarray, b: np.ndarray, c: np.ndarray, threads: np.ndarray,
         accumulate: bool = False):
    """The callable for `c = a @ b` (or `+=`), or None where `handles` says no."""
    found = job(a, b, c, accumulate)
    if found is None:
        return None
    from runtime.cpu import packed_gemm

    words, tasks, pooled = found
    suffix = SUFFIX[a.dtype.name]
    if not pooled:
        fn = partial(getattr(library(), f"symrnn_gemv_all_{suffix}"), words.ctypes.data, tasks)
    else:
        fn = partial(packed_gemm.library().symrnn_parallel, task_address(a.dtype.name),
                     words.ctypes.data, tasks, threads.ctypes.data)
    fn.keep = (words, a, b, c)  # the job's words and the arrays they point at
    return fn


def job(a: np.ndarray, b: np.ndarray, c: np.ndarray, accumulate: bool = False):
    """`(words, tasks, pooled)` for `c = a @ b`: the job's 64-bit words (`_WORDS`; `a`, `w`,
    `c` the addresses, at WORD["a"], ...), its task count, and whether it is large enough for
    the pool; None where `handles` says no."""
    if not handles(a, b, c):
        return None
    (m, k), n, item = a.shape, b.shape[1], a.itemsize
    block = -(-n // min(TASKS, -(-n // 4)) // 4) * 4
    tasks = -(-n // block)
    words = np.array([m, n, k, a.strides[0] // item, b.T.strides[0] // item,
                      c.strides[0] // item, int(accumulate), block, _addr(a), _addr(b),
                      _addr(c)], np.int64)
    return words, tasks, m * k * n >= PARALLEL["PARALLEL_GEMM"]


def task_address(dtype: str) -> int:
    """The address of `symrnn_gemv_task_SUF(job, task)` for `dtype`."""
    fn = getattr(library(), f"symrnn_gemv_task_{SUFFIX[str(dtype)]}")
    return ctypes.cast(fn, ctypes.c_void_p).value


def _addr(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]
