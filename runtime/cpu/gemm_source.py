"""The C sources of runtime.cpu.packed_gemm: the packed-weight GEMM (per step, and blocked for the
products that run once) and the thread pool it shares with the row-split kernels. The C lives
in gemm_pool.c and gemm_template.c next to this file (package data). They are three libraries:
the pool (`pool_source()`) and the GEMMs of each C type (`typed_source("f32")`), which call the
pool through a pointer set when they are loaded. A float32 program compiles only the float32
GEMMs: the whole in one translation unit took 2.7 s of CPU to compile (GCC 12, -O3, 12
instantiations of the micro-kernel per type), the float32 part alone 1.4 s, and 0.85 s with
one micro-kernel for every product (six instantiations, MR rows and each tail: a transposed A
is copied row-major before its block; see gemm_template.c).

Plain C with GCC vector extensions, so `-march=native` picks the vector width the host has;
float and double come from one template.

The pool. A job is a count of tasks (panels of B, or parts of C); the caller publishes it and
then claims tasks itself, one compare-and-swap each, alongside whichever workers are awake. It
waits only for tasks a worker has claimed, never for a worker that has not started: on a busy
machine, where a worker may not get a core for milliseconds, the caller simply does every task
(an OpenMP loop measured 5x slower than one thread there, waiting at its barrier). Idle
workers spin briefly, then sleep on a condition variable. After a fork the child has no
workers; the caller then runs every task itself.
"""
from __future__ import annotations

from importlib import resources

VECTOR_BYTES = 64  # the widest vector (AVX-512's): what packed operands are aligned to
MR = 6  # rows of C per micro-kernel call
MC, KC = 192, 512  # a block of a product that runs once: rows of A, and of K (measured best
#                    of 48-384 by 128-1024 on an input projection, a data and a weight gradient)
COLSUM_PARTS = 16  # at most this many row blocks (threads) in a column sum (a bias gradient)
PARALLEL = {  # below these sizes (multiply-adds, or elements packed) one thread is faster
    "PARALLEL_GEMM": 1 << 19, "PARALLEL_PACK": 1 << 16}
WIDTH = "gemm_width.h"  # the vector width, shared with runtime.cpu.gemv (package data)
POOL = "gemm_pool.c"  # the thread pool (package data)
TEMPLATE = "gemm_template.c"  # packing and the micro-kernel, for one C type `real`
BLAS = "gemm_blas.c"  # the products that run once through numpy's cblas, split over the pool
BLAS_INT = {"32": "int", "64": "long"}  # the BLAS's integer, by its width in bits
C_TYPE = {"f32": "float", "f64": "double"}


# what a typed library knows of the pool: the task type, and the pool's parallel_for
POOL_POINTER = """typedef void (*task_fn)(const void* job, long index);
typedef void (*parallel_fn)(long count, int threads, task_fn fn, const void* job);
static parallel_fn parallel_for; /* symrnn_parallel_for of the pool's library */
"""


def pool_source() -> str:
    """The pool's translation unit: gemm_pool.c (`symrnn_parallel`, `symrnn_parallel_for`)."""
    return _text(POOL)


def typed_source(suffix: str) -> str:
    """The GEMMs of one C type (`suffix` 'f32' or 'f64'): the sizes above as macros, then
    gemm_template.c (`real`, `_SUF` -> `_f32`, TAILS expanded), whose `symrnn_use_pool_f32`
    takes the pool's `symrnn_parallel_for`, and gemm_blas.c once per BLAS integer width
    (`symrnn_blas_64_f32`, `symrnn_blas_32_f32`)."""
    head = "".join(f"#define {k} {v}L\n" for k, v in PARALLEL.items())
    template = _text(TEMPLATE).replace("TAILS", " ".join(f"TAIL({m})" for m in range(1, MR)))
    blas = [_text(BLAS).replace("_BITS", f"_{bits}").replace("bint", c_int)
            for bits, c_int in BLAS_INT.items()]
    return "".join([f"#define MR {MR}\n#define MC {MC}\n#define KC {KC}\n#define COLSUM_PARTS {COLSUM_PARTS}\n",
                    head, _text(WIDTH),
                    POOL_POINTER, f"#define real {C_TYPE[suffix]}\n",
                    *(part.replace("_SUF", f"_{suffix}") for part in [template, *blas])])


def width_source() -> str:
    """gemm_width.h: the panel width (VB, NV) for the host's vector ISA."""
    return _text(WIDTH)


def text(name: str) -> str:
    """The text of a C file of this package (package data)."""
    return _text(name)


def _text(name: str) -> str:
    return resources.files("runtime.cpu").joinpath(name).read_text()
