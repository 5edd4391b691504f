"""The CPU engine's GEMMs: a packed-weight GEMM for the per-step products, and for the products
that run once (input projections, data and weight gradients over all steps) numpy's cblas split
over the same pool, or a blocked GEMM on the same micro-kernel that packs as it goes.

`h_t @ W` runs T times against the same `W`. OpenBLAS packs its right operand into cache-sized
panels on every call (DESIGN.md section 5: the 100 per-step GEMMs of an LSTM forward cost more
than PyTorch's whole forward); here `W` is packed once per phase and every step multiplies
against the panels. On the Cascade Lake development machine, one thread, float32:
(64x512)·(512x2048) ran at about 100 GFLOP/s against OpenBLAS's 70, and (32x256)·(256x1024) at
95 against 50.

Layout: `B` (K x N) becomes ceil(N / NR) panels of K rows by NR = NV vectors of columns, zero
padded at the right edge. The micro-kernel keeps an MR x NR block of `C` in NV * MR vector
registers and, for each k, loads NV vectors of the panel and broadcasts MR elements of `A`.
With AVX-512 that is 6 x 4 = 24 of the 32 registers, 10 loads per 24 multiply-adds, against
10 per 16 for the 8 x 2 block it had before, which ran 5-35% slower in an interleaved
one-thread A/B ((64x512)·(512x2048): 53 against 73 GFLOP/s median; (64x256)·(256x1024): 80
against 84). With AVX (16 registers) it is 6 x 2 (runtime.cpu.gemm_source's WIDTH).
Panels are shared among the threads of runtime.cpu.gemm_source's pool.

The products that run once (`big_call`) go through numpy's OpenBLAS where it is found
(`blas_call`, gemm_blas.c): C's larger side cut into one part per thread of the pool, each a
single-threaded `cblas_?gemm` (OpenBLAS is held to one thread in the phase), so that one pool
serves the program and no idle OpenBLAS thread spins against it. On the 2-core AMD EPYC (AVX2,
no AVX-512), float32, interleaved in one process (bench/big_gemm.py, GFLOP/s over wall time,
against the blocked GEMM below and numpy's matmul on OpenBLAS's own two threads), two runs at
load 1.9 and 2.3: the weight gradients (M x 6400)·(6400x512), `A` transposed, at 126-147 /
114-162 / 128 for M = 2048 / 1536 / 1024 against 103-134 / 98-152 / 105 blocked and 125-160 /
112-176 / 121 numpy; over CPU time (what a core gave, robust to the load) the data gradients
(6400x2048)·(2048x512) at 131-174 against 102-132 (numpy 117-164) and (6400x1536)·(1536x512)
129-166 against 109-134, the input projection (6400x512)·(512x2048) 127-178 against 127-154.
One core, CPU time: OpenBLAS's kernel gives 75-79 GFLOP/s, the blocked GEMM's
63-70. (An earlier split, four parts for two threads, was measured at 121-128 against the
blocked GEMM's 143-156 on the input projection and dropped; four parts ran here as two did.)
Whole training steps (`bench/big_gemm.py --steps gru1,lstm1`, 11 rounds, load 2.7): a 1-layer
GRU's forward+backward in 834 ms against 885 blocked, an LSTM's in 599 against 644 (medians;
the blocked executors then built the steps reading `data` at their first call, on the split
path: the switch is now read when the engine is built). Old code against new in alternating
processes (20 samples each): LSTM 717 -> 615 ms, GRU 542 -> 476, with the loop changes too.

The blocked GEMM (`SYMRNN_BIG_GEMM=blocked`, and where numpy's BLAS is not an OpenBLAS) runs
blocks of MC rows of `A` by KC of `K`, each block a job of the pool: the per-step product
again, with `A`'s block kept in cache. It packs KC rows of `B` at a time into a scratch of the
engine's (packing all of `B` first ran no faster, and a weight gradient's `B` is 13 MB), and a
transposed `A` (a weight gradient's `dG^T`) has its block copied row-major at the front of the
same scratch: read in place, one cache line per k and MR rows, it ran at half the speed.
Packing it into micro-panels of MR rows k-major instead (a contiguous copy of dG's rows, read
by the same micro-kernel with strides) ran no faster (0.94-1.04x, one and two threads), nor did
KC = 256 or MC = 96, 144, 384 (0.85-1.06x).

`column_sum_call`: a bias gradient, the sum of dG's T*N rows, one block of rows a thread
(numpy's `sum` reads them on one): 6400 x 2048 float32 in 2.6 ms against 3.8 (1.3-1.4x, 31
interleaved rounds at load 2.6; parity on one thread).

Threads: the engine runs every phase inside `runtime.cpu.blas.one_pool()`, which holds OpenBLAS
to one thread and hands its thread count to `threads` (a one-element array the C code reads at
each call); the pool's caller never waits for a worker that has not started
(runtime.cpu.gemm_source).

`plan(steps)` finds the steps that can use the packed GEMM: a gemm of one phase whose right
operand (same view, same transposition) is used by at least two gemm steps of that phase, is not
written between its first and last use, and whose left operand is not transposed.
"""
from __future__ import annotations

import ctypes
import functools
import os
import threading
from functools import partial

import numpy as np

from runtime.cpu.blas import openblas
from runtime.cpu.gemm_source import (
    BLAS_INT,
    C_TYPE,
    COLSUM_PARTS,
    KC,
    MC,
    VECTOR_BYTES,
    pool_source,
    typed_source,
)
from runtime.program import Step, View

SUFFIX = {"float32": "f32", "float64": "f64"}
A_BLOCK = MC * KC  # big_call's block of a transposed A: the packed B after it stays aligned
_LONG, _PTR, _INT = ctypes.c_long, ctypes.c_void_p, ctypes.c_int


_libraries: dict = {}
_libraries_lock = threading.Lock()


def library(extra_flags: tuple = ()) -> Library:
    """The compiled helpers, argtypes set (`extra_flags`: for the tests of other ISAs); one
    per process and flags, whichever thread asks first (runtime.cpu.engine.prepare's)."""
    with _libraries_lock:
        if extra_flags not in _libraries:
            _libraries[extra_flags] = Library(tuple(extra_flags))
        return _libraries[extra_flags]


class Library:
    """The pool's library and each C type's GEMMs (runtime.cpu.gemm_source) as one namespace:
    `library().symrnn_parallel`, `library().symrnn_gemm_f32`. A type's library is compiled
    (or loaded from the cache) when one of its functions is first asked for, or by
    `prepare`."""

    def __init__(self, extra_flags: tuple):
        from runtime.compile_cache import toolchain

        self._flags = toolchain().flags + ("-pthread", *extra_flags)
        self._locks = {w: threading.Lock() for w in ("pool", *C_TYPE)}
        self._parts: dict = {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        suffix = name.rsplit("_", 1)[-1]
        fn = getattr(self.part(suffix if suffix in C_TYPE else "pool"), name)
        setattr(self, name, fn)  # the same function object every time (tests compare them)
        return fn

    def part(self, which: str) -> ctypes.CDLL:
        """The pool's library ('pool'), or the GEMMs of C type `which` ('f32', 'f64')."""
        with self._locks[which]:
            if which not in self._parts:
                self._parts[which] = self._load(which)
            return self._parts[which]

    def prepare(self, suffixes) -> None:
        """Loads the pool and the libraries of `suffixes` (runtime.cpu.engine.prepare runs
        this in a thread while the program compiles)."""
        for which in ["pool", *suffixes]:
            self.part(which)

    def _load(self, which: str) -> ctypes.CDLL:
        from runtime.compile_cache import load_library

        if which == "pool":
            lib = load_library(pool_source(), "the GEMMs' thread pool", flags=self._flags)
            _declare(lib, "symrnn_parallel", [_PTR, _PTR, _LONG, _PTR])
            return lib
        pool = self.part("pool")
        lib = load_library(typed_source(which), f"the packed-weight GEMM ({which})",
                           flags=self._flags)
        getattr(lib, f"symrnn_use_pool_{which}")(ctypes.cast(pool.symrnn_parallel_for, _PTR))
        width = getattr(lib, f"symrnn_panel_width_{which}")
        width.argtypes, width.restype = [], _LONG
        _declare(lib, f"symrnn_pack_{which}", [_LONG, _LONG, _PTR, _LONG, _INT, _PTR, _PTR])
        _declare(lib, f"symrnn_gemm_{which}",
                 [_LONG, _LONG, _LONG, _PTR, _LONG, _PTR, _PTR, _LONG, _INT, _PTR])
        _declare(lib, f"symrnn_big_{which}", [_INT, _INT, _LONG, _LONG, _LONG, _PTR, _LONG, _PTR,
                                              _LONG, _PTR, _LONG, _INT, _PTR, _PTR])
        _declare(lib, f"symrnn_colsum_{which}", [_LONG, _LONG, _PTR, _LONG, _PTR, _PTR, _PTR])
        for bits in BLAS_INT:
            _declare(lib, f"symrnn_blas_{bits}_{which}", [_PTR, _INT, _INT, _LONG, _LONG, _LONG,
                                                          _PTR, _LONG, _PTR, _LONG, _PTR, _LONG,
                                                          _INT, _PTR])
        return lib


def _declare(lib, name: str, argtypes: list) -> None:
    fn = getattr(lib, name)
    fn.argtypes, fn.restype = argtypes, None


def panel_width(dtype: str) -> int:
    """Columns of a panel of packed B, as the library was compiled for this host."""
    return int(getattr(library(), f"symrnn_panel_width_{SUFFIX[str(dtype)]}")())


def packed_size(k: int, n: int, dtype: str) -> int:
    """Elements of a packed K x N operand: its panels, the last one padded."""
    width = panel_width(dtype)
    return -(-n // width) * width * k


def scratch_size(k: int, n: int, dtype: str) -> int:
    """Elements of `big_call`'s scratch for a K x N right operand: a block of A, then KC rows
    of B's panels."""
    return A_BLOCK + packed_size(min(k, KC), n, dtype)


class PackedGemm:
    """A packed copy of one right operand: `pack_call(b)` fills it, `gemm_call(a, c, acc)`
    multiplies against it. `threads` is the engine's one-element thread-count array.

    >>> pg = PackedGemm("float32", 512, 2048, threads)     # doctest: +SKIP
    """

    def __init__(self, dtype: str, k: int, n: int, threads: np.ndarray):
        self.dtype, self.k, self.n = str(dtype), int(k), int(n)
        self.threads = threads
        lib, suffix = library(), SUFFIX[self.dtype]
        self._pack = getattr(lib, f"symrnn_pack_{suffix}")
        self._gemm = getattr(lib, f"symrnn_gemm_{suffix}")
        self.packed = aligned(packed_size(self.k, self.n, self.dtype), self.dtype)

    def pack_call(self, b: np.ndarray):
        """A callable packing `b` (K x N, either storage order) into the panels."""
        layout = _layout(b)
        if b.shape != (self.k, self.n) or b.dtype != self.packed.dtype or layout is None:
            raise ValueError(f"packed gemm: B is {b.dtype}{b.shape} with strides {b.strides}, "
                             f"expected {self.packed.dtype}{(self.k, self.n)}")
        trans, ld = layout
        return _keeping((b, self), partial(self._pack, self.k, self.n, _address(b), ld, trans,
                                           _address(self.packed), _address(self.threads)))

    def gemm_call(self, a: np.ndarray, c: np.ndarray, accumulate: bool):
        """A callable for `c = a @ B` (or `c += a @ B`) against the packed B."""
        m = a.shape[0]
        la, lc = _layout(a), _layout(c)
        if a.shape != (m, self.k) or c.shape != (m, self.n) or \
                {a.dtype, c.dtype} != {self.packed.dtype} or \
                la is None or la[0] or lc is None or lc[0]:
            raise ValueError(f"packed gemm: {a.dtype}{a.shape} (strides {a.strides}) @ "
                             f"{(self.k, self.n)} into {c.dtype}{c.shape} (strides {c.strides})")
        return _keeping((a, c, self), partial(
            self._gemm, m, self.n, self.k, _address(a), la[1], _address(self.packed),
            _address(c), lc[1], int(bool(accumulate)), _address(self.threads)))


def blocked_selected() -> bool:
    """Whether the environment asks the products that run once for the blocked GEMM
    (`SYMRNN_BIG_GEMM=blocked`); the CPU engine reads it once, when it is built."""
    return os.environ.get("SYMRNN_BIG_GEMM", "blas") == "blocked"


def big_call(a: np.ndarray, b: np.ndarray, c: np.ndarray, accumulate: bool,
             threads: np.ndarray, scratch: np.ndarray | None, blocked: bool | None = None):
    """A callable for `c = a @ b` (or `+=`): numpy's cblas split over the pool (`blas_call`)
    where that BLAS is found and `blocked` is false, else block by block, packing its operands
    as it goes into `scratch` (`scratch_size` elements at least); None where the dtypes or
    layouts do not fit or `scratch` is too small. `blocked` None: `blocked_selected()`."""
    if not (blocked_selected() if blocked is None else blocked):
        call = blas_call(a, b, c, accumulate, threads)
        if call is not None:
            return call
    layouts = _layouts(a, b, c)
    if layouts is None or scratch is None or scratch.dtype != c.dtype:
        return None
    (la, lb, lc), (m, k), n = layouts, a.shape, b.shape[1]
    if scratch.size < scratch_size(k, n, c.dtype.name):
        return None
    fn = getattr(library(), f"symrnn_big_{SUFFIX[c.dtype.name]}")
    return _keeping((a, b, c, scratch, threads), partial(
        fn, la[0], lb[0], m, n, k, _address(a), la[1], _address(b), lb[1], _address(c), lc[1],
        int(bool(accumulate)), _address(scratch), _address(threads)))


def blas_call(a: np.ndarray, b: np.ndarray, c: np.ndarray, accumulate: bool,
              threads: np.ndarray):
    """A callable for `c = a @ b` (or `+=`) through numpy's cblas, C's larger side cut into
    one part per thread of the pool, each a single-threaded call (gemm_blas.c; OpenBLAS must
    run one thread, as inside runtime.cpu.blas.one_pool), or None where that BLAS or these
    layouts are not available."""
    found, layouts = openblas(), _layouts(a, b, c)
    if found is None or layouts is None or c.dtype.name not in found.gemm \
            or not blas_agrees(c.dtype.name):
        return None
    return _blas_partial(found, a, b, c, accumulate, threads, layouts)


@functools.cache
def blas_agrees(dtype: str) -> bool:
    """Whether the cblas found (its symbol, its integer width: runtime.cpu.blas) gives numpy's
    product on a small case with both transpositions, once per process: a BLAS whose calling
    convention was guessed wrong is not used (big_call falls back to the blocked GEMM)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((3, 7)).astype(dtype)
    c, one = np.zeros((5, 3), dtype), np.ones(1, np.int32)
    layouts = _layouts(a.T, b.T, c)
    if layouts is None:
        return False
    _blas_partial(openblas(), a.T, b.T, c, False, one, layouts)()
    return bool(np.allclose(c, a.T @ b.T, rtol=1e-4, atol=1e-4))


def _blas_partial(found, a, b, c, accumulate, threads, layouts):
    (la, lb, lc), (m, k), n = layouts, a.shape, b.shape[1]
    fn = getattr(library(), f"symrnn_blas_{found.int_bits}_{SUFFIX[c.dtype.name]}")
    return _keeping((a, b, c, threads), partial(
        fn, found.gemm[c.dtype.name], la[0], lb[0], m, n, k, _address(a), la[1], _address(b),
        lb[1], _address(c), lc[1], int(bool(accumulate)), _address(threads)))


def column_sum_call(x: np.ndarray, y: np.ndarray, threads: np.ndarray):
    """A callable for `y = x.sum(axis=0)` (x 2-D, rows apart; y its columns, contiguous)
    over the pool, one block of rows a thread (a bias gradient over all steps), or None where
    the dtypes or layouts do not fit."""
    lx = _layout(x)
    if x.dtype.name not in SUFFIX or y.dtype != x.dtype or lx is None or lx[0] \
            or y.size != x.shape[1] or 0 in x.shape or not y.flags.c_contiguous:
        return None
    fn = getattr(library(), f"symrnn_colsum_{SUFFIX[x.dtype.name]}")
    sums = np.zeros(COLSUM_PARTS * x.shape[1], x.dtype)  # each thread's
    return _keeping((x, y, threads, sums), partial(
        fn, x.shape[0], x.shape[1], _address(x), lx[1], _address(y), _address(sums),
        _address(threads)))


def _layouts(a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """The layouts of a product's operands (C row-major, nothing empty), or None."""
    if c.dtype.name not in SUFFIX or {a.dtype, b.dtype} != {c.dtype}:
        return None
    la, lb, lc = _layout(a), _layout(b), _layout(c)
    if la is None or lb is None or lc is None or lc[0] or 0 in c.shape or a.shape[1] == 0:
        return None
    return la, lb, lc


def plan(steps: list, dtype_of, skip=None) -> dict:
    """step index -> (group, first) for the gemm steps that run against a packed operand.

    `group` is the (phase, B view, transposition) the step multiplies by; `first` is True for
    the step that packs it (the group's first in its phase). `dtype_of(view)` is the view's dtype;
    a gemm step for which `skip(step)` is true joins no group (the engine's small-batch
    products, which read their weight in place: runtime.cpu.gemv).
    """
    groups: dict = {}
    for i, s in enumerate(steps):
        if s.kind != "gemm" or transposed(s, "a") or dtype_of(s.inputs[1]) not in SUFFIX \
                or not (_rows_apart(s.inputs[0]) and _rows_apart(s.outputs[0])) \
                or (skip is not None and skip(s)):
            continue
        groups.setdefault((s.phase, s.inputs[1], transposed(s, "b")), []).append(i)
    found = {}
    for group, users in groups.items():
        if len(users) < 2 or _written_between(steps, group[1], users[0], users[-1]):
            continue
        for i in users:
            found[i] = (group, i == users[0])
    return found


def transposed(step: Step, which: str) -> bool:
    """Whether a gemm step's operand `which` ('a' or 'b') is transposed (`trans_a`, or the dot
    op's `transpose_a`)."""
    attrs = step.attrs
    return bool(attrs.get(f"trans_{which}", attrs.get(f"transpose_{which}")))


def _rows_apart(v: View) -> bool:
    """Rows that do not overlap (a view with ld 0 repeats one row)."""
    return v.rows == 1 or v.ld >= v.cols


def _span(v: View) -> tuple:
    return v.offset, v.offset + (v.rows - 1) * v.ld + v.cols


def _written_between(steps: list, b: View, first: int, last: int) -> bool:
    lo, hi = _span(b)
    for s in steps[first:last + 1]:
        for out in s.outputs:
            start, end = _span(out)
            if out.buffer == b.buffer and start < hi and lo < end:
                return True
    return False


def _layout(x: np.ndarray):
    """(transposed, leading dimension) of a 2-D array BLAS can read, or None."""
    rows, cols = x.shape
    item = x.itemsize
    if cols == 1 or x.strides[1] == item:
        ld = x.strides[0] // item if rows > 1 else cols
        return (0, ld) if ld >= max(1, cols) and x.strides[0] % item == 0 else None
    if rows == 1 or x.strides[0] == item:
        ld = x.strides[1] // item if cols > 1 else rows
        return (1, ld) if ld >= max(1, rows) and x.strides[1] % item == 0 else None
    return None


def in_order(*calls):
    """Calls each of `calls`, in order."""
    for call in calls:
        call()


def _keeping(owners: tuple, call):
    """`call`, holding on to the arrays (and packed copies) whose addresses it carries."""
    call.keep = owners
    return call


def aligned(size: int, dtype: str) -> np.ndarray:
    """`size` zeros starting on a VECTOR_BYTES boundary."""
    item = np.dtype(dtype).itemsize
    raw = np.zeros(size + VECTOR_BYTES // item, dtype)
    skip = (-_address(raw) % VECTOR_BYTES) // item
    return raw[skip:skip + size]


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]
