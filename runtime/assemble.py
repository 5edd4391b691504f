"""Stacks and concats as copies of their parts into windows of the result.

A `stack` (along the first axis) or a `concat` along the first or last axis of values stored
row-major (codegen.views: leading axes flattened into rows) writes each part into one window
of its output. `part_windows(step)` gives those windows, or None where the step is not such an
assembly; the engines then copy part by part (and build no temporary).

codegen's plan_memory builds a container in place where it can: a part computed straight
into its window is the window (the same View), and is not copied again. Where only some parts
can be (a variable among them, or a part that also belongs to another container), the step
stays and copies the others: `copies(...)` lists them.
"""
from __future__ import annotations

import math

from runtime.library import axis_of
from runtime.program import View


def flat2d(v: View) -> bool:
    """Whether `v` is its value's leading axes flattened into rows over the last axis."""
    cols = v.shape[-1] if v.shape else 1
    return v.rows * v.cols == math.prod(v.shape) and v.cols == cols


def window(v: View, row: int, col: int, rows: int, cols: int) -> View:
    """The sub-window of `v` at (row, col)."""
    return View(v.buffer, v.offset + row * v.ld + col, rows, cols, v.ld, (rows, cols))


def part_windows(op: str, attrs: dict, xs: list, y: View) -> list | None:
    """The window of output `y` that each input `xs[i]` of a stack or concat fills (the op's
    `attrs`), or None."""
    if op not in ("stack", "concat") or not xs or not all(map(flat2d, [*xs, y])):
        return None
    ndim = len(xs[0].shape)
    if op == "stack":  # runtime.library stacks along the first axis
        if len({(x.rows, x.cols) for x in xs}) != 1:
            return None
        along_cols = False
    else:
        axis = axis_of(attrs, ndim) if ndim else -1
        if axis not in (0, ndim - 1):
            return None
        along_cols = axis == ndim - 1 and ndim > 1
    found, at = [], 0
    for x in xs:
        if (along_cols and x.rows != y.rows) or (not along_cols and x.cols != y.cols):
            return None
        row, col = (0, at) if along_cols else (at, 0)
        found.append(window(y, row, col, x.rows, x.cols))
        at += x.cols if along_cols else x.rows
    return found if at == (y.cols if along_cols else y.rows) else None


def in_place(part: View, win: View) -> bool:
    """Whether `part` is stored as its window already."""
    return (part.buffer, part.offset, part.rows, part.cols, part.ld) == \
        (win.buffer, win.offset, win.rows, win.cols, win.ld)


def copies(op: str, attrs: dict, xs: list, y: View) -> list | None:
    """[(part, window)] for the parts of a stack or concat not stored in place, or None."""
    wins = part_windows(op, attrs, xs, y)
    if wins is None:
        return None
    return [(x, w) for x, w in zip(xs, wins) if not in_place(x, w)]
