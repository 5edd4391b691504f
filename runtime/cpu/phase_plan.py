"""A phase's step calls, run where they can as one C call (runtime.cpu.loop_runner's
`symrnn_loop_run` over a plan of one iteration), not one ctypes call each.

Three kinds of built calls have a C form, read off what the engine built (nothing is
rebuilt):

- a call of the pool's `symrnn_parallel(fn, job, count, threads)` on the engine's thread count
  (the GEMVs of one row, runtime.cpu.gemv, and the kernels split over rows): a POOLED_TASKS
  entry with the same `fn`, `job` and `count`;
- a GEMV on the calling thread, `symrnn_gemv_all_SUF(job, tasks)`, which runs its tasks in
  order: a SERIAL_TASKS entry of `symrnn_gemv_task_SUF` on the same job;
- a kernel on the calling thread whose `task_job` the engine set (the kernel's `NAME_task`
  and its job words, the rows in one task): a SERIAL_TASKS entry. `NAME_task` and the
  kernel itself both call `NAME_rows(0, rows, ...)` (codegen.render), so the numbers are the
  same bits; the saving is the ctypes call with two words per view (a fused LSTM step's
  kernel has 42 arguments: ~6 us of a T=1 streaming chunk's ~100, measured).

Each entry holds its job by pointer (`nwords` 0: the runner passes `job` itself and moves no
word), so the plan keeps the built calls, which own the words, alive. A run of at least two
such calls, or one kernel, becomes one call; any other call (numpy's, a library op, a loop,
a packed product, a backward hook) stays as it is, in its place. `blas_free` says whether a
phase calls nothing but symrnn's own C code, which needs OpenBLAS held to nothing.

`same_arrays` is the engine's other per-call shortcut: whether a call's arguments are the
arrays bound last time, in one pass (~0.7 us for 7 arguments, against ~1.5 through the
per-buffer check it stands for).
"""
from __future__ import annotations

import ctypes
from functools import partial
from operator import is_, itemgetter

import numpy as np

from runtime.cpu import gemv, loop_runner, packed_gemm

SERIAL, POOLED = loop_runner.SERIAL_TASKS, loop_runner.POOLED_TASKS


def entry(call, parallel, threads: int):
    """`(kind, fn, job address, tasks)` of a built call with a C form, or None."""
    found = getattr(call, "task_job", None)
    if found is not None:
        fn, words = found
        return SERIAL, fn, words.ctypes.data, 1  # the kernel's rows in one task
    if not isinstance(call, partial) or call.keywords:
        return None
    if call.func is parallel and len(call.args) == 4 and call.args[3] == threads:
        fn, job, count, _ = call.args
        return POOLED, fn, job, count
    name = getattr(call.func, "__name__", "")
    if name.startswith("symrnn_gemv_all_") and len(call.args) == 2:
        for dtype, suffix in gemv.SUFFIX.items():
            if call.func is getattr(gemv.library(), f"symrnn_gemv_all_{suffix}"):
                return SERIAL, gemv.task_address(dtype), call.args[0], call.args[1]
    return None


def task_words(rows: int, cols: int, per: int, ctl, masks, args: list) -> np.ndarray:
    """A kernel's job for `NAME_task` (codegen.render), its rows in tasks of `per`, from the
    kernel's ctypes arguments `args` (rows, cols, a pointer and a row stride per view, the
    control block, the mask ids)."""
    return np.array([rows, cols, per, ctl.ctypes.data, masks.ctypes.data,
                     *(a.value for a in args[2:-2])], np.int64)


def fused(calls: list, thread_count: np.ndarray, own_pool: bool = True) -> tuple[list, bool]:
    """(the calls to run in order, whether every one is symrnn's own C code); without the
    engine's own pool (SYMRNN_GEMM=blas or mkl) the calls as they are."""
    if not own_pool:
        return list(calls), False
    parallel = packed_gemm.library().symrnn_parallel
    threads, out, run = thread_count.ctypes.data, [], []
    entries = [entry(c, parallel, threads) for c in calls]
    for call, e in zip(calls, entries):
        if e is None:
            out += _flush(run, thread_count)
            out.append(call)
        else:
            run.append((call, e))
    out += _flush(run, thread_count)
    return out, all(e is not None for e in entries)


def _flush(run: list, thread_count: np.ndarray) -> list:
    """The pending calls: as they are where one C call would save nothing, else that call."""
    pending, run[:] = list(run), []
    if not pending or (len(pending) == 1 and pending[0][1][0] != SERIAL):
        return [c for c, _ in pending]
    par = packed_gemm.library().symrnn_parallel
    words = [_address(par), thread_count.ctypes.data, len(pending)]
    for _, (kind, fn, job, tasks) in pending:
        words += [kind, fn, job, 0, tasks, 0, 0]  # not first-only, no words moved
    plan = np.array(words, np.int64)
    call = partial(loop_runner.library().symrnn_loop_run, plan.ctypes.data, 1)
    call.keep = (plan, thread_count, [c for c, _ in pending])
    return [call]


def _address(fn) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value


def same_arrays(bound: dict):
    """`args -> bool`: whether `args` holds exactly the arrays of `bound` ({argument:
    array}) by identity; None where some argument has no array to compare (staged)."""
    if any(a is None for a in bound.values()):
        return None
    names, arrays = tuple(bound), tuple(bound.values())
    if len(names) < 2:  # itemgetter of one name gives the item, not a tuple
        names, arrays = names * 2, arrays * 2
    get = itemgetter(*names) if names else (lambda args: ())

    def same(args: dict) -> bool:
        try:
            return all(map(is_, get(args), arrays))
        except (KeyError, TypeError):
            return False
    return same
