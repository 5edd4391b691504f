"""Whether a loop of the C runner may run split by columns at one row (loop_runner.c's
`symrnn_loop_cols`), and its table.

At N=1 a recurrent step is a GEMV of the recurrent weight (`h · W^T`, 4H outputs for an LSTM)
and a gate kernel over H columns that reads the GEMV's output at four column offsets (the
gates i, f, g, o of the same unit). The step-by-step runner splits the GEMV's rows over the
pool and runs the kernel on the caller alone (one row is too small for the pool): the kernel
waits for both cores' products and reads the half of the gates the other core wrote. Split by
columns instead, a task owns a block of the kernel's columns (of hidden units): it computes
the GEMV rows of those units for every offset the kernel reads (the rows of i, f, g and o of
the same units), then runs the kernel over its columns. One dispatch per step, no wait
between the product and the kernel, and the kernel's work is split as well.

A loop qualifies (`col_split`) where its body is segments, each one GEMV of one row (the
in-place kernel, runtime.cpu.gemv) followed by fused kernels over one row and the same
columns, none drawing masks or reducing a row; every kernel view on the GEMV's output lies
at a fixed offset inside it, and those offsets tile its columns exactly (each output column
computed once, as before, so the numbers are those of the step-by-step runner). The tasks
of a segment must not race: in every iteration, a view written in the segment meets another
view of it only element for element (the same start: the same column of the same task), and
never meets the GEMV's A row or weight (read whole by every task). A segment is one call of
the pool, so a segment sees everything the segments before it wrote. A body that starts with a
kernel (a loop rotated so, as some RNN stacks are) keeps its runner.

Every other step runs backwards (loop_runner.c's `back`), so that each core first reads the
rows it read last, some of them still in its L2 (1 MiB; 2 MiB of an LSTM's 4 MiB weight per
core at H=512). A segment runs two tasks a thread (loop_runner.c sizes them from the thread
count at run time), blocks of whole vectors (ALIGN) of columns: the GEMV's rows fall in
groups of 8 from each gate's first row whatever the thread count, as in the step-by-step
split's blocks of 128 at H=512: there the numbers are the step-by-step runner's bit for bit
(elsewhere they differ by rounding, where its blocks end in a group of 4, summed otherwise).

Measured in one process, interleaved against SYMRNN_LOOP_ROWS=0 (the step-by-step runner of
the same tree), the loop's time per step at T=100, H=512, N=1 (2 cores, shared: load
1.3-1.7): lstm1 median 72 us against 87 (lower quartile 41 against 48; 101 rounds), gru1
38.8 against 41.4 (61 rounds). Without the backward steps, lstm1 took 47.5 us against 52.7
(load 0.65); 4 tasks a step (2 threads) were faster than 2, 8 or 16 (one task a thread leaves
the other idle when the machine's load delays one; 16 spend more on claiming, shorter runs).

The same split at N=2..8 against the packed weight (a task's panels of each gate, every row,
then the kernel over them; each other step's panels in reverse) was tried and dropped: the loop
took 7.04 / 9.93 / 16.46 ms at N=2 / 4 / 8 (1-layer LSTM, T=100, H=512, 2 threads, medians of
31 interleaved rounds, one process) against 6.89 / 9.88 / 16.13 step by step, GRU at N=4 6.69
against 6.96, with the bits unchanged; without the reversed steps, no better. There a step is
bound by reading the whole 4 MiB weight from L3, which the split does not change.
"""
from __future__ import annotations

import numpy as np

from runtime.cpu import gemv
from runtime.cpu.loop_rows import MAX_WORDS
from runtime.render_rows import has_reductions

ALIGN = 8  # a task's columns are a multiple of this (a vector of floats)


def col_split(engine, step, made: list):
    """`(table, ALIGN, item size)` for `symrnn_loop_cols` where loop `step` may run split by
    columns, else None; `made` holds (body step kind, C entry) for each of its C entries. The
    table: the kernels' columns, then per entry `0, G, offsets...` for a GEMV
    (its G runs of rows start at those rows plus the task's first column) or `1, 0` for a
    kernel."""
    from runtime.cpu.loop_runner import POOLED_TASKS, SERIAL_TASKS

    gemvs = {gemv.task_address(d) for d in gemv.SUFFIX}
    if len(made) != len(step.body) or not step.body or step.body[0].kind != "gemm" or \
            any(e[0] not in (SERIAL_TASKS, POOLED_TASKS) or len(e[2]) > MAX_WORDS or
                (kind == "gemm") != (e[1] in gemvs) for kind, e in made):
        return None
    segments, cols, items = [], set(), set()
    for body, stride in zip(step.body, step.strides):
        if body.kind == "gemm":
            g = engine.layout.gemm(body)
            if g.trans_a or not g.trans_b or g.a.rows != 1:
                return None
            items.add(np.dtype(engine._dtype_of(g.c)).itemsize)
            segments.append((g, stride, []))
            continue
        launch = engine.layout.launch(body) if body.kind == "kernel" else None
        ir = launch and launch.kernel.ir
        if ir is None or launch.rows != 1 or launch.kernel.n_masks or has_reductions(ir.body):
            return None
        cols.add(launch.cols)
        items.add(np.dtype(launch.kernel.dtype).itemsize)
        moves, n_in = (*stride.inputs, *stride.outputs), len(body.inputs)
        segments[-1][2].append([(v, d, i >= n_in)
                                for i, (v, d) in enumerate(zip(launch.views, moves))])
    if len(cols) != 1 or len(items) != 1 or any(not k for _, _, k in segments):
        return None
    (n,), (item,) = cols, items
    table = [n]
    for g, stride, kernels in segments:
        views = [v for k in kernels for v in k]
        runs = _runs(g, stride, views, n, step.trips)
        if runs is None or not _no_race(g, stride, views, n, step.trips):
            return None
        table += [0, len(runs), *runs] + [1, 0] * len(kernels)
    return np.array(table, np.int64), ALIGN, item


def _starts(v, d: int, trips: int) -> np.ndarray:
    return v.offset + d * np.arange(trips, dtype=np.int64)


def _runs(g, stride, views: list, n: int, trips: int):
    """The offsets in C's columns at which the kernels read the GEMV's output C (one row),
    if each is the same in every iteration, lies inside C, and together they tile C's
    columns in runs of `n`; else None."""
    c0 = _starts(g.c, stride.outputs[0], trips)
    found = set()
    for v, d, _ in views:
        if v.buffer != g.c.buffer:
            continue
        start = _starts(v, d, trips)
        if not (np.any(start < c0 + g.c.cols) and np.any(start + n > c0)):
            continue  # the kernel reads elsewhere in C's buffer: checked by _no_race
        rel = start - c0
        if np.any(rel != rel[0]) or rel[0] < 0 or rel[0] + n > g.c.cols:
            return None
        found.add(int(rel[0]))
    runs = sorted(found)
    return runs if runs == list(range(0, g.c.cols, n)) and len(runs) * n == g.c.cols \
        else None


def _no_race(g, stride, views: list, n: int, trips: int) -> bool:
    """Whether the segment's tasks (blocks of columns) never meet where one writes: every
    written view meets every other view of its buffer only at the same start (the same
    columns of the same task), and neither the GEMV's A row nor its weight (read whole by
    every task) meets a written view, in every iteration. The GEMV's output C is written
    in runs of `n` at C's start plus multiples of `n`."""
    c0 = _starts(g.c, stride.outputs[0], trips)
    mapped = [(v.buffer, _starts(v, d, trips), w) for v, d, w in views]
    mapped += [(g.c.buffer, c0 + r, True) for r in range(0, g.c.cols, n)]
    whole = [(g.a.buffer, _starts(g.a, stride.inputs[0], trips), g.a.cols),
             (g.b.buffer, _starts(g.b, stride.inputs[1], trips),
              (g.b.rows - 1) * g.b.ld + g.b.cols)]
    for i, (buf, start, written) in enumerate(mapped):
        if not written:
            continue
        for j, (buf2, start2, _) in enumerate(mapped):
            if j != i and buf2 == buf and np.any((start != start2) & (start < start2 + n)
                                                 & (start2 < start + n)):
                return False
        for buf2, start2, size in whole:
            if buf2 == buf and np.any((start < start2 + size) & (start2 < start + n)):
                return False
    return True
