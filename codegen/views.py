"""Which nodes are views, and the 2-D window each view makes of its source.

Every stored value is a `View(buffer, offset, rows, cols, ld, shape)`: rows are all axes but
the last, flattened with one row stride `ld`. A time step, a slice along the first or last
axis, a reshape that keeps the last axis and a broadcast of one row are windows of their
source, and cost nothing; any other data movement is a step of its own.
"""
from __future__ import annotations

import math

from codegen.graph import Graph, node
from runtime.program import View

VIEW_OPS = ("take", "split", "slice", "reshape", "broadcast_to")


def _rows(shape) -> int:
    return math.prod(shape[:-1]) if shape else 1


def _cols(shape) -> int:
    return shape[-1] if shape else 1


def whole(buffer: str, offset: int, shape) -> View:
    """A contiguous value of `shape` at `offset`."""
    shape = tuple(shape)
    return View(buffer, offset, _rows(shape), _cols(shape), _cols(shape), shape)


def is_view(g: Graph, nid: str) -> bool:
    n = node(g, nid)
    if n.op not in VIEW_OPS:
        return False
    src = node(g, n.inputs[0]).shape
    if n.op == "broadcast_to":
        lead = len(n.shape) - len(src)
        return bool(src) and src[-1] == n.shape[-1] and all(d == 1 for d in src[:-1]) \
            and lead >= 0
    if n.op == "reshape":
        return bool(src) and bool(n.shape) and src[-1] == n.shape[-1]
    if n.op == "take":
        return True
    axis = n.attr("axis") % len(src)
    return axis in (0, len(src) - 1) or all(d == 1 for d in src[:axis])


def view_of(g: Graph, nid: str, src: View) -> View:
    """The window node `nid` makes of its source, stored at `src`."""
    n = node(g, nid)
    shape, s = tuple(n.shape), src.shape
    if n.op in ("reshape", "broadcast_to"):
        ld = 0 if n.op == "broadcast_to" else src.ld
        return View(src.buffer, src.offset, _rows(shape), _cols(shape), ld, shape)
    if n.op == "take":
        return _rows_window(src, n.attr("index"), 1, s, shape)
    axis = n.attr("axis") % len(s)
    if n.op == "split":
        part = s[axis] // n.attr("num_outputs")
        begin = n.attr("index") * part
    else:
        begin, part = n.attr("begin"), n.attr("end") - n.attr("begin")
    if axis == len(s) - 1:
        return View(src.buffer, src.offset + begin, src.rows, part, src.ld, shape)
    return _rows_window(src, begin, part, s, shape, axis)


def _rows_window(src: View, begin: int, count: int, s, shape, axis: int = 0) -> View:
    """Entries [begin, begin + count) of axis `axis` (all earlier axes of size 1)."""
    if len(s) == 1:  # a vector: the axis is the columns
        return View(src.buffer, src.offset + begin, 1, count, src.ld, shape)
    per = math.prod(s[axis + 1:-1])  # rows per entry of the axis
    offset = src.offset + begin * per * src.ld
    return View(src.buffer, offset, max(_rows(shape), 1), _cols(shape), src.ld, shape)
