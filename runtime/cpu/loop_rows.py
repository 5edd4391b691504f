"""Whether a loop of the C runner may run split by rows (loop_runner.c's `symrnn_loop_rows`).

A recurrent step is row-local: row `r` of a layer's state at step `t + 1` depends only on row
`r` of its state and inputs at step `t` (a batch element never meets another). Where every
body step of a loop is a fused kernel over the same M rows or a product against a packed
weight whose A and C have those M rows, each thread of the pool can run every iteration over
a block of rows of its own, with no wait between the steps, and keep its rows of the state
and of the gates in its own core's cache (the per-step split waits twice a step, and each
kernel reads gate rows that both cores' products wrote).

That holds only if no step reads or writes, under another row number, what a step writes:
two views of one buffer, one of them written (or a written view and itself), meet, in any
pair of iterations, only at rows equal modulo M (views of different row strides, or a
repeated row, must never meet a written one). `row_split(...)` checks it from the Program's
views and strides; where it cannot tell, the loop runs step by step as before. Where a thread
would get fewer than runtime.cpu.loop_runner's ROW_SPLIT_MIN rows (N=2..8 at 2 threads), the
C runner runs it step by step too, at each call: the thread count is read then.
"""
from __future__ import annotations

import numpy as np

MAX_WORDS = 256  # loop_runner.c's copy of an entry's job words


def row_split(engine, step, made: list):
    """`(M, item size)` where loop `step` may run split by rows, else None; `made` holds
    (body step kind, C entry) for each of its C entries (runtime.cpu.loop_runner)."""
    from runtime.cpu.loop_runner import PACK, PACKED_GEMM, POOLED_TASKS, SERIAL_TASKS

    allowed = {"kernel": (SERIAL_TASKS, POOLED_TASKS), "gemm": (PACKED_GEMM, PACK)}
    if any(e[0] not in allowed.get(kind, ()) or len(e[2]) > MAX_WORDS for kind, e in made):
        return None
    views, rows, items = [], set(), set()
    for body, stride in zip(step.body, step.strides):
        if body.kind == "kernel":
            launch = engine.layout.launch(body)
            rows.add(launch.rows)
            moves = (*stride.inputs, *stride.outputs)
            n_in = len(body.inputs)
            views += [(v, launch.rows, launch.cols, d, i >= n_in)
                      for i, (v, d) in enumerate(zip(launch.views, moves))]
            items.add(np.dtype(launch.kernel.dtype).itemsize)
        elif body.kind == "gemm":
            g = engine.layout.gemm(body)
            if g.trans_a:
                return None
            rows.add(g.a.rows)
            views += [(g.a, g.a.rows, g.a.cols, stride.inputs[0], False),
                      (g.c, g.c.rows, g.c.cols, stride.outputs[0], True)]
            items.add(np.dtype(engine._dtype_of(g.c)).itemsize)
        else:
            return None
    if len(rows) != 1 or len(items) != 1:
        return None
    (m,), (item,) = rows, items
    if m < 2 or not _row_local(views, m, step.trips):
        return None
    return m, item


def _row_local(views: list, m: int, trips: int) -> bool:
    by_buffer: dict = {}
    for v in views:
        if v[0].ld == 0 and v[4]:
            return False  # a repeated row, written
        by_buffer.setdefault(v[0].buffer, []).append(v)
    for found in by_buffer.values():
        for i, a in enumerate(found):
            for b in found[i if a[4] else i + 1:]:  # a written view meets itself later
                if (a[4] or b[4]) and not _apart(a, b, m, trips):
                    return False
    return True


def _apart(a: tuple, b: tuple, m: int, trips: int) -> bool:
    """Whether views `a` and `b` (view, rows, cols, move, written) never hold one element
    under row numbers that differ modulo `m`, in any pair of iterations."""
    (va, ra, ca, da, _), (vb, rb, cb, db, _) = a, b
    k = np.arange(trips, dtype=np.int64)
    start_a, start_b = va.offset + k[:, None] * da, vb.offset + k[None, :] * db
    if va.ld != vb.ld or va.ld == 0:  # then they must never meet
        end_a = start_a + (ra - 1) * va.ld + ca
        end_b = start_b + (rb - 1) * vb.ld + cb
        return not bool(np.any((start_a < end_b) & (start_b < end_a)))
    ld = va.ld
    # row i of a holds element (j, c') of b where i - j == q and rem + c' < ca, or
    # i - j == q + 1 and c' >= ld - rem (q, rem: how far b starts after a, in rows of ld)
    q, rem = np.divmod(start_b - start_a, ld)
    for gap, possible in ((q, rem < ca), (q + 1, ld - rem < cb)):
        if np.any(possible & (gap % m != 0) & (gap > -rb) & (gap < ra)):
            return False
    return True
