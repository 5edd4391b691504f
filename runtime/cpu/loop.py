"""Loop steps on the CPU engine: a body's calls built a few times, then shifted per iteration.

This is the Python runner, for the loops runtime.cpu.loop_runner (one C call per loop) cannot
run: a body step that is a library op other than a stack or concat, numpy's or MKL's GEMM.

A `loop` step (runtime.program) runs its body `trips` times, each view a constant stride
further per iteration. Building one bound call per iteration would make the engine's size
grow with T; instead, each body step is built (with the engine's own builders) for iterations
0, 1 and 2. Iteration 0 runs its own call (the first of a packed GEMM group packs there).
Calls 1 and 2 are compared argument by argument: equal arguments stay, addresses and other
integers move by their difference per iteration, arrays (numpy's GEMM) are re-windowed. The
small arrays a kernel call owns (its mask ids, the job words of a split kernel) are those of
call 1, refilled before each iteration with their values at that iteration (mask ids from
the loop's table).

Where calls 1 and 2 do not line up (an unexpected callable), the body step falls back to one
call per iteration, built at construction: correct, and only as large as before rolling.
"""
from __future__ import annotations

import ctypes
from functools import partial

import numpy as np

from runtime.program import Step, iteration

SAMPLED = (0, 1, 2)  # the iterations built for every loop; the last is sampled for planning


class NotShiftable(Exception):
    pass


def planning_steps(steps: list) -> tuple[list, list]:
    """The steps a plan over the whole program (runtime.packed_gemm.plan) sees, and for each
    where it comes from: `(index, None)` for a top-level step, `(index, (k, j))` for body
    step `j` of the loop at `index` in iteration `k` (iterations 0, 1, 2 and the last)."""
    flat, where = [], []
    for i, s in enumerate(steps):
        if s.kind != "loop":
            flat.append(s)
            where.append((i, None))
            continue
        for k in sorted({k for k in (*SAMPLED, s.trips - 1) if k < s.trips}):
            for j, (b, d) in enumerate(zip(s.body, s.strides)):
                flat.append(iteration(b, d, k))
                where.append((i, (k, j)))
    return flat, where


def loop_call(step: Step, build):
    """The call that runs loop `step`; `build(body step at iteration k, k, j)` is the
    engine's builder for body step `j` at iteration `k`."""
    runs = [_body_run(step, j, build) for j in range(len(step.body))]
    return partial(_run_loop, step.trips, runs)


def _run_loop(trips: int, runs: list) -> None:
    for k in range(trips):
        for run in runs:
            run(k)


def _body_run(step: Step, j: int, build):
    body, stride = step.body[j], step.strides[j]
    calls = [build(iteration(body, stride, k), k, j) for k in SAMPLED if k < step.trips]
    if len(calls) < 3:
        return partial(_indexed, calls)
    try:
        owned = _owned_pairs(calls[1], calls[2])
        shifted = _shifted(calls[1], calls[2], owned, _mask_rows(body, stride, step.trips))
    except NotShiftable:
        calls = [build(iteration(body, stride, k), k, j) for k in range(step.trips)]
        return partial(_indexed, calls)
    return partial(_first_then, calls[0], shifted)


def _indexed(calls: list, k: int) -> None:
    calls[k]()


def _first_then(first, shifted, k: int) -> None:
    if k == 0:
        first()
    else:
        shifted(k - 1)


def _owned_pairs(c1, c2) -> list:
    """The arrays calls 1 and 2 own (kept alongside them, holding their own data), paired."""
    k1, k2 = (_kept(c) for c in (c1, c2))
    if len(k1) != len(k2):
        raise NotShiftable("calls keep different arrays")
    return [(a, b) for a, b in zip(k1, k2) if a is not b and a.base is None and
            b.base is None and a.shape == b.shape and a.dtype == b.dtype]


def _kept(call) -> list:
    keep = getattr(call, "keep", ())
    keep = keep if isinstance(keep, tuple) else (keep,)
    return [x for x in keep if isinstance(x, np.ndarray)]


def _mask_rows(body: Step, stride, trips: int):
    """The mask ids of every iteration, (trips, masks) uint32, or None without masks."""
    first = tuple(body.attrs.get("masks", ()))
    if not first:
        return None
    return np.array([stride.masks_at(k, first) for k in range(trips)], np.int64) \
        .astype(np.uint32)


def _shifted(c1, c2, owned: list, masks):
    """A function of `k` that runs call 1 moved `k` iterations on (call 2 is one on);
    `masks` the mask ids of every iteration (or None)."""
    moved = {_address(b): _address(a) for a, b in owned}
    fill = []
    for a, b in owned:
        if masks is not None and a.dtype == np.uint32 and a.shape == masks.shape[1:] \
                and (a == masks[1]).all() and (b == masks[2]).all():
            fill.append(partial(_copy_row, a, masks[1:]))
        else:
            fill.append(partial(_copy_linear, a, *_deltas(a, b, moved)))
    run = partial(_invoke, _arg(c1, c2, moved))
    if fill:
        return partial(_refill_then, fill, run)
    return run


def _deltas(a: np.ndarray, b: np.ndarray, moved: dict) -> tuple:
    base = a.astype(np.int64)
    step = b.astype(np.int64) - base
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        if moved.get(y) == x:
            step[i] = 0  # the address of an owned array: call 1's stays
    return base, step


def _refill_then(fill: list, run, k: int) -> None:
    for refill in fill:
        refill(k)
    run(k)


def _copy_row(array: np.ndarray, rows: np.ndarray, k: int) -> None:
    array[:] = rows[k]


def _copy_linear(array: np.ndarray, base: np.ndarray, step: np.ndarray, k: int) -> None:
    np.copyto(array, base + k * step, casting="unsafe")


def _arg(a, b, moved: dict):
    """A function of `k` giving argument `a` moved `k` iterations on (`b` is one on)."""
    if a is b:
        return partial(_const, a)
    if isinstance(a, partial) and isinstance(b, partial):
        return _partial(a, b, moved)
    if isinstance(a, (ctypes.c_void_p, ctypes.c_long)) and type(a) is type(b):
        x, y = a.value or 0, b.value or 0
        if moved.get(y) == x or x == y:
            return partial(_const, a)
        return partial(_ctype, type(a), x, y - x)
    if isinstance(a, int) and not isinstance(a, bool) and type(a) is type(b):
        if moved.get(b) == a or a == b:
            return partial(_const, a)
        return partial(_linear, a, b - a)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return _array(a, b)
    if callable(a) or type(a) is not type(b) or not _equal(a, b):
        raise NotShiftable(f"argument {a!r} against {b!r}")
    return partial(_const, a)


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _partial(a: partial, b: partial, moved: dict):
    if a.func is not b.func or len(a.args) != len(b.args) or \
            set(a.keywords) != set(b.keywords):
        raise NotShiftable(f"{a.func!r} against {b.func!r}")
    func = a.func if not isinstance(a.func, partial) else _arg(a.func, b.func, moved)
    args = [_arg(x, y, moved) for x, y in zip(a.args, b.args)]
    keywords = {k: _arg(a.keywords[k], b.keywords[k], moved) for k in a.keywords}
    return partial(_bound, func, args, keywords, isinstance(a.func, partial))


def _bound(func, args, keywords, func_moves: bool, k: int) -> partial:
    """The call at iteration `k`: `func` with its arguments moved on."""
    fn = func(k) if func_moves else func
    return partial(fn, *[f(k) for f in args], **{n: f(k) for n, f in keywords.items()})


def _invoke(make, k: int) -> None:
    make(k)()


def _array(a: np.ndarray, b: np.ndarray):
    if a.shape != b.shape or a.strides != b.strides or a.dtype != b.dtype:
        raise NotShiftable("arrays of different layouts")
    return partial(_window, a, _address(b) - _address(a))


def _window(a: np.ndarray, delta: int, k: int) -> np.ndarray:
    """`a` moved `k * delta` bytes on, in the same allocation (the engine's buffer)."""
    if not delta or not k:
        return a
    base = a
    while isinstance(base.base, np.ndarray):
        base = base.base
    start = _address(a) + k * delta - _address(base)
    return np.ndarray(a.shape, a.dtype, base, start, a.strides)


def _const(value, k: int):
    return value


def _linear(value: int, step: int, k: int) -> int:
    return value + k * step


def _ctype(kind, value: int, step: int, k: int):
    return kind(value + k * step)


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]
