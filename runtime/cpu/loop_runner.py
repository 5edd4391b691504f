"""Loop steps of the CPU engine in one C call: `symrnn_loop_run` (loop_runner.c) runs every
iteration of a loop's body, no Python between steps.

Each body step becomes one or two entries of a plan: a C function and its 64-bit job words at
iteration 0, and the words that move per iteration with their step in bytes, read off the
Program's `LoopStride` (view `i` moves `stride.inputs[i]` or `stride.outputs[i]` elements per
iteration), not inferred from built calls. The functions are those the engine calls one step
at a time:

- a fused kernel: `NAME_task(job, task)` (codegen.render), its rows split over the engine's
  pool (`symrnn_parallel`) where the engine splits them, else one task on the caller;
- a per-step product of a packed group (runtime.cpu.packed_gemm.plan): `symrnn_pack_SUF`
  in iteration 0 where the group's first step is the loop's, then `symrnn_gemm_SUF`;
- another product: the in-place GEMV of one row (runtime.cpu.gemv), else `symrnn_big_SUF`;
- a stack or concat op (runtime.assemble.copies): a row-wise copy of each part not in place.

Mask ids: a table of one row per iteration (`mask_table`, from `LoopStride.masks_at`, which
reads the per-iteration table or the affine ids), whose row pointer moves like a view. Ids
affine in the step could later be computed in C from iteration 0's and their increments; the
table is where that hook sits.

Where every body step is a kernel or a packed product over the same rows and no step reads
a row another writes under another row number (runtime.cpu.loop_rows), the loop runs split by
rows instead: each thread of the pool runs every iteration over a block of rows of its own
(`symrnn_loop_rows`; SYMRNN_LOOP_ROWS=0 keeps the step-by-step split), where each thread
gets at least ROW_SPLIT_MIN rows. Where the loop has one
row (N=1 inference: a GEMV and a gate kernel a step), it may run split by columns instead
(runtime.cpu.loop_cols): each task of a step computes the GEMV rows of its block of hidden
units, every gate's, then the kernel over those units (`symrnn_loop_cols`; the same switch).

`loop_call(engine, index, step)` is None where some body step has no C form here (a library
op, numpy's or MKL's GEMM, a hand-written kernel without `NAME_task`, a packing plan that
differs between iterations): the engine then runs the loop in Python (runtime.cpu.loop).
Backward hooks wrap the loop's call, as they wrap the Python loop: they fire at its end.
"""
from __future__ import annotations

import ctypes
import functools
from functools import partial

import numpy as np

from runtime import assemble
from runtime.cpu import gemv, packed_gemm
from runtime.cpu.gemm_source import text
from runtime.cpu.loop_cols import col_split
from runtime.cpu.loop_rows import row_split
from runtime.program import LoopStride, Step, View, iteration

SERIAL_TASKS, POOLED_TASKS, PACKED_GEMM, PACK, BIG_GEMM, COPY = range(6)
# Rows a thread must get for the split by rows, else the loop runs step by step (checked in C
# at each call, against the pool's thread count then). Under it each core's product reads the
# whole weight for a few rows: a 1-layer LSTM's inference (T=100, H=512, 2 threads; forward
# ms, medians of 15 interleaved rounds, one process, split / step by step) took 14.8 / 11.5
# at N=2, 20.0 / 16.4 and 18.4 / 15.0 at N=4, 30.1 / 30.2 at N=8, 39.8 / 41.5 at N=12, and
# were at parity from N=16 to 64 (GRU: 11.8 / 8.9 at N=2, 14.6 / 12.3 at N=4, 19.2 / 19.8 at
# N=8). Six is the micro-kernel's block of rows (runtime.cpu.packed_gemm's MR).
ROW_SPLIT_MIN = 6
SUFFIX = packed_gemm.SUFFIX


class NoCForm(Exception):
    """A body step the C runner does not run."""


@functools.cache
def library() -> ctypes.CDLL:
    from runtime.compile_cache import load_library

    lib = load_library(text("loop_runner.c"), "the loop runner")
    lib.symrnn_loop_run.argtypes = [ctypes.c_void_p, ctypes.c_long]
    lib.symrnn_loop_run.restype = None
    lib.symrnn_loop_rows.argtypes = [ctypes.c_void_p] + [ctypes.c_long] * 4
    lib.symrnn_loop_rows.restype = ctypes.c_int
    lib.symrnn_loop_cols.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_long, ctypes.c_long]
    lib.symrnn_loop_cols.restype = None
    return lib


def loop_call(engine, index: int, step: Step):
    """The callable running loop `step` (the engine's step `index`) in one C call, or None."""
    if engine._gemms.name != "packed":
        return None
    try:
        made = [(step.body[j].kind, e) for j in range(len(step.body))
                for e in _entries(engine, index, step, j)]
    except NoCForm:
        return None
    entries = [e for _, e in made]
    plan, keep = _plan(entries, engine._threads)
    split = row_split(engine, step, made) if engine.loop_rows else None
    cols = col_split(engine, step, made) if engine.loop_rows and split is None else None
    if split is not None:  # every thread runs every iteration over rows of its own
        call = partial(library().symrnn_loop_rows, plan.ctypes.data, step.trips, *split,
                       ROW_SPLIT_MIN)
    elif cols is not None:  # one row: each task a block of columns, GEMV and kernels
        keep.append(cols[0])
        call = partial(library().symrnn_loop_cols, plan.ctypes.data, step.trips,
                       cols[0].ctypes.data, *cols[1:])
    else:
        call = partial(library().symrnn_loop_run, plan.ctypes.data, step.trips)
    call.keep = (plan, keep)
    return call


def _plan(entries: list, threads: np.ndarray) -> tuple[np.ndarray, list]:
    """The plan's words (see loop_runner.c) and the arrays they point at."""
    par = ctypes.cast(packed_gemm.library().symrnn_parallel, ctypes.c_void_p).value
    words, keep = [par, threads.ctypes.data, len(entries)], [threads]
    for kind, fn, job, first_only, ntasks, moves, owned in entries:
        both = np.concatenate([job, job]).astype(np.int64)
        keep += [both, owned]
        words += [kind, fn, both.ctypes.data, int(first_only), ntasks, len(job), len(moves)]
        for word, delta in moves:
            words += [word, delta]
    return np.array(words, np.int64), keep


def _entries(engine, index: int, step: Step, j: int) -> list:
    body, stride = step.body[j], step.strides[j]
    if body.kind == "kernel":
        return [_kernel(engine, body, stride, step.trips)]
    if body.kind == "gemm":
        return _gemm(engine, index, step, j)
    if body.kind == "op":
        return _copies(engine, body, stride, step.trips)
    raise NoCForm(body.kind)


def _address(engine, v: View, rows: int, cols: int) -> int:
    return _data(engine._view(View(v.buffer, v.offset, rows, cols, v.ld, v.shape)))


def _kernel(engine, body: Step, stride: LoopStride, trips: int) -> tuple:
    from runtime.cpu.engine import KERNEL_TASKS, PARALLEL_KERNEL

    launch = engine.layout.launch(body)
    task = getattr(engine._kernels[launch.kernel.name], "task", None)
    if not task:
        raise NoCForm(launch.kernel.name)
    rows, cols = launch.rows, launch.cols
    pooled = rows > 1 and rows * cols >= PARALLEL_KERNEL
    per = -(-rows // min(rows, KERNEL_TASKS)) if pooled else rows
    masks = mask_table(body, stride, trips)
    item = np.dtype(launch.kernel.dtype).itemsize
    job = [rows, cols, per, engine._ctl.ctypes.data, masks.ctypes.data]
    moves = [(4, masks.shape[1] * 4)] if masks.shape[0] > 1 else []
    for i, (v, d) in enumerate(zip(launch.views, (*stride.inputs, *stride.outputs))):
        job += [_address(engine, v, rows, cols), v.ld]
        if d:
            moves.append((5 + 2 * i, d * item))
    kind = POOLED_TASKS if pooled else SERIAL_TASKS
    return kind, task, job, False, -(-rows // per), moves, masks


def mask_table(body: Step, stride: LoopStride, trips: int) -> np.ndarray:
    """The mask ids of every iteration, (trips, masks) uint32; one row (0,) without masks."""
    first = tuple(body.attrs.get("masks", ()))
    if not first:
        return np.zeros((1, 1), np.uint32)
    if not (stride.masks or stride.mask_table):
        return np.array([first], np.int64).astype(np.uint32)
    return np.array([stride.masks_at(k, first) for k in range(trips)], np.int64) \
        .astype(np.uint32)


def _gemm(engine, index: int, step: Step, j: int) -> list:
    plan, trips = engine._pack_plan, step.trips
    keys = sorted({k for k in (0, 1, 2, trips - 1) if k < trips})
    found = [plan.get((index, k, j)) for k in keys]
    body, stride = step.body[j], step.strides[j]
    if found[0] is None:
        if any(f is not None for f in found):
            raise NoCForm("packed after iteration 0")
        return [_unpacked(engine, body, stride)]
    group = found[0][0]
    if any(f is None or f[0] != group or f[1] for f in found[1:]):
        raise NoCForm("a packing plan that changes between iterations")
    return _packed(engine, body, stride, group, found[0][1])


def _packed(engine, body: Step, stride: LoopStride, group, first: bool) -> list:
    if stride.inputs[1]:
        raise NoCForm("a packed weight that moves")
    engine._packed_gemm(body, group, first)  # the group's packed copy, made once
    pg = engine._packed[group].pg
    a, b, c = engine._operands(body)
    item = c.itemsize
    gemm = pg.gemm_call(a, c, False)
    moves = [(w, d * item) for w, d in ((3, stride.inputs[0]), (6, stride.outputs[0])) if d]
    fn = _fn_address(gemm.func)
    entries = [(PACKED_GEMM, fn, list(gemm.args), False, 1, moves, None)]
    if first:
        pack = pg.pack_call(b)
        entries.insert(0, (PACK, _fn_address(pack.func), list(pack.args), True, 1, [], None))
    return entries


def _unpacked(engine, body: Step, stride: LoopStride) -> tuple:
    a, b, c = engine._operands(body)
    item, steps = c.itemsize, (stride.inputs[0], stride.inputs[1], stride.outputs[0])
    found = gemv.job(a, b, c) if a.shape[0] <= gemv.ENGINE_ROWS else None
    if found is not None:
        words, tasks, pooled = found
        moves = [(gemv.WORD[w], d * item) for w, d in zip("awc", steps) if d]
        kind = POOLED_TASKS if pooled else SERIAL_TASKS
        return kind, gemv.task_address(c.dtype.name), list(words), False, tasks, moves, None
    big = packed_gemm.big_call(a, b, c, False, engine._threads,
                               engine._big_scratch.get(c.dtype.name), engine._gemms.blocked)
    if big is None:
        raise NoCForm("a product numpy runs")
    moves = [(w, d * item) for w, d in zip((5, 7, 9), steps) if d]
    return BIG_GEMM, _fn_address(big.func), list(big.args), False, 1, moves, None


def _copies(engine, body: Step, stride: LoopStride, trips: int) -> list:
    """A stack or concat whose parts are not all in place: a row-wise copy per part; the
    parts' moves are those of the views they are cut from, read off iterations 0 and 1."""
    def parts(k: int):
        op = engine.layout.op(iteration(body, stride, k))
        found = assemble.copies(op.name, op.attrs, op.inputs, op.output)
        dtypes = {engine._dtype_of(v) for v in [*op.inputs, op.output]}
        if found is None or len(dtypes) != 1:
            raise NoCForm(f"library op {op.name!r}")
        return found, [op.inputs.index(x) for x, _ in found]

    (now, which), (then, which_then) = parts(0), parts(min(1, trips - 1))
    moves = [(x1.offset - x.offset, w1.offset - w.offset) for (x, w), (x1, w1) in zip(now, then)]
    if which != which_then or any(_meets(x, w, dx, dw, trips)
                                  for (x, w), (dx, dw) in zip(now, moves)):
        raise NoCForm("parts stored in place in some iterations only")
    return [_copy(engine, x, w, dx, dw) for (x, w), (dx, dw) in zip(now, moves)]


def _meets(x: View, w: View, dx: int, dw: int, trips: int) -> bool:
    """Whether part `x`, moving `dx` per iteration, is its window `w` (moving `dw`) in some
    iteration: it is then stored in place there, and copies(...) leaves it out."""
    if (x.buffer, x.rows, x.cols, x.ld) != (w.buffer, w.rows, w.cols, w.ld) or dx == dw:
        return False
    k, rest = divmod(w.offset - x.offset, dx - dw)
    return rest == 0 and 0 <= k < trips


def _copy(engine, x: View, w: View, dx: int, dw: int) -> tuple:
    src, dst = engine._view(x), engine._view(w)
    if src.shape != dst.shape or src.strides[1] != src.itemsize or \
            dst.strides[1] != dst.itemsize:
        raise NoCForm("a copy that broadcasts or is strided")
    item = src.itemsize
    job = [src.shape[0], src.shape[1] * item, _data(src), src.strides[0], _data(dst),
           dst.strides[0]]
    moves = [(i, d * item) for i, d in ((2, dx), (4, dw)) if d]
    return COPY, 0, job, False, 1, moves, None


def _data(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]


def _fn_address(fn) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value
