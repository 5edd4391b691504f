"""plan_memory: where every value lives. Liveness over the schedule, offsets in one arena.

- Variables live in their own external buffers (arguments, head gradients).
- Views are windows of their source (codegen.views).
- A stack or concat is built in place when it can be: its parts are computed straight into
  their windows of it, and the copy step disappears from the schedule. Parts written by a
  GEMM or a library op must stay contiguous, so only kernels write into column windows.
- Every other value gets an arena range, reused once its last reader has run. Outputs and
  gradients live to the end. Ranges are placed largest first at the lowest free offset.

Results: `graph["layout"]` ({node: View}), `graph["arena"]` ({buffer: elements}),
`graph["schedule"]` without the in-place copies, `graph["liveness"]` ({root: (start, end)})
and `graph["unplanned"]` ({buffer: elements if every value had its own range}).
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np

from codegen.graph import copy_graph, node, roots
from codegen.passes.schedule import unit_map
from codegen.views import is_view, view_of, whole
from runtime.program import View

ALIGN = 16  # elements: 64 bytes in float32
CONTAINERS = ("stack", "concat")


def plan_memory(g: nx.DiGraph) -> nx.DiGraph:
    g = copy_graph(g)
    unit_of = unit_map(g)
    owners = _owners(g, unit_of)
    parent = _in_place(g, owners, unit_of)
    in_place = set(parent.values())
    schedule = [(u, ph) for u, ph in g.graph["schedule"] if u not in in_place]
    pos = {u: i for i, (u, _) in enumerate(schedule)}
    root = {o: _root(o, parent) for o in owners}
    live = _liveness(g, owners, root, unit_of, pos, len(schedule), in_place)
    offsets, sizes = _place(g, live, root)
    layout = _layout(g, owners, parent, root, offsets)
    unplanned: dict[str, int] = {}
    for o in owners:
        if o not in parent:
            buf = arena_name(node(g, o).dtype)
            unplanned[buf] = unplanned.get(buf, 0) + _aligned(math.prod(node(g, o).shape))
    g.graph.update(schedule=schedule, layout=layout, arena=sizes, liveness=live,
                   unplanned=unplanned)
    return g


def _aligned(n: int) -> int:
    return -(-max(n, 1) // ALIGN) * ALIGN


def arena_name(dtype: str) -> str:
    return f"arena.{dtype}"


def _owners(g, unit_of) -> list[str]:
    """Nodes whose value is stored: step outputs that someone outside their unit reads."""
    out = set(roots(g))
    owners = []
    for nid in nx.topological_sort(g):
        if nid not in unit_of:
            continue
        users = [u for u in g.successors(nid) if unit_of.get(u) != unit_of[nid]]
        if users or nid in out:
            owners.append(nid)
    return owners


def _in_place(g, owners, unit_of) -> dict:
    """{part: container} for stacks and concats built in place, outermost first."""
    owner_set, parent = set(owners), {}
    containers = [o for o in owners if node(g, o).op in CONTAINERS]
    for c in reversed(containers):
        n = node(g, c)
        rank = len(n.shape)
        axis = 0 if n.op == "stack" else n.attr("axis") % rank
        columns = axis == rank - 1 and rank > 1
        parts = n.inputs
        ok = len(set(parts)) == len(parts) and (axis in (0, rank - 1)) and all(
            p in owner_set and p not in parent and node(g, p).shape != ()
            # GEMMs and library ops write contiguous rows; only kernels write columns
            and (not columns or unit_of[p] != p)
            for p in parts)
        if ok:
            for p in parts:
                parent[p] = c
    return parent


def _root(o, parent) -> str:
    while o in parent:
        o = parent[o]
    return o


def _liveness(g, owners, root, unit_of, pos, end, in_place) -> dict:
    """{root: (first step that writes it, last step that reads it)}."""
    live: dict[str, list[int]] = {}
    out = set(roots(g))
    for o in owners:
        r = root[o]
        u = unit_of[o]
        start = pos.get(u, None)
        span = live.setdefault(r, [end, 0])
        if start is not None:
            span[0] = min(span[0], start)
        for reader in _readers(g, o, unit_of, in_place):
            if reader in pos:
                span[1] = max(span[1], pos[reader])
        if o in out or _viewed_by_roots(g, o, out):
            span[1] = end
    for span in live.values():
        span[1] = max(span[1], span[0])
    return {r: tuple(s) for r, s in live.items()}


def _readers(g, nid, unit_of, in_place) -> list[str]:
    """Units that read `nid`, directly or through views and in-place containers."""
    found, stack = [], [nid]
    while stack:
        x = stack.pop()
        for u in g.successors(x):
            if u in in_place or is_view(g, u):
                stack.append(u)
            elif unit_of.get(u) != unit_of.get(nid):
                found.append(unit_of[u])
    return found


def _viewed_by_roots(g, nid, out) -> bool:
    stack = [nid]
    while stack:
        x = stack.pop()
        if x in out:
            return True
        stack.extend(u for u in g.successors(x) if is_view(g, u))
    return False


def _place(g, live, root) -> tuple[dict, dict]:
    """Offsets for each root: largest first, lowest offset free during its live range."""
    placed: dict[str, np.ndarray] = {}  # rows of (offset, end offset, first step, last step)
    count: dict[str, int] = {}
    offsets, sizes = {}, {}
    for r in sorted(live, key=lambda r: (-math.prod(node(g, r).shape), r)):
        n = node(g, r)
        buf, size = arena_name(n.dtype), _aligned(math.prod(n.shape))
        start, end = live[r]
        rows = placed.setdefault(buf, np.zeros((len(live), 4), np.int64))[:count.get(buf, 0)]
        busy = rows[(rows[:, 2] <= end) & (start <= rows[:, 3])]
        at = _first_fit(busy[:, 0], busy[:, 1], size)
        placed[buf][len(rows)] = (at, at + size, start, end)
        count[buf] = len(rows) + 1
        offsets[r] = (buf, at)
        sizes[buf] = max(sizes.get(buf, 0), at + size)
    return offsets, sizes


def _first_fit(lo: np.ndarray, hi: np.ndarray, size: int) -> int:
    """The lowest offset where `size` elements miss every busy range [lo, hi)."""
    if not len(lo):
        return 0
    order = np.argsort(lo, kind="stable")
    lo, covered = lo[order], np.maximum.accumulate(hi[order])
    starts = np.concatenate([[0], covered])
    ends = np.concatenate([lo, [np.iinfo(np.int64).max]])
    return int(starts[np.argmax(ends - starts >= size)])


def _layout(g, owners, parent, root, offsets) -> dict:
    layout: dict[str, View] = {}

    def place(o) -> View:
        if o in layout:
            return layout[o]
        if o in parent:
            layout[o] = _part_window(g, parent[o], o, place(parent[o]))
        else:
            buf, at = offsets[o]
            layout[o] = whole(buf, at, node(g, o).shape)
        return layout[o]

    for o in owners:
        place(o)
    for nid in nx.topological_sort(g):
        n = node(g, nid)
        if n.op == "var":
            kind = "head_grad" if n.attr("kind") == "head_grad" else "arg"
            layout[nid] = whole(f"{kind}:{nid}", 0, n.shape)
        elif nid not in layout and is_view(g, nid) and n.inputs[0] in layout:
            layout[nid] = view_of(g, nid, layout[n.inputs[0]])
    return layout


def _part_window(g, c, part, at: View) -> View:
    """The window of part `part` inside container `c` stored at `at`."""
    n = node(g, c)
    k = n.inputs.index(part)
    shape = node(g, part).shape
    if n.op == "stack":
        step = math.prod(shape) // max(_cols(shape), 1)
        rows = max(step, 1)
        return View(at.buffer, at.offset + k * rows * at.ld, rows, _cols(shape), at.ld, shape)
    axis = n.attr("axis") % len(n.shape)
    begin = sum(node(g, p).shape[axis] for p in n.inputs[:k])
    if axis == len(n.shape) - 1:
        return View(at.buffer, at.offset + begin, at.rows, shape[-1], at.ld, shape)
    per = math.prod(n.shape[axis + 1:-1])
    return View(at.buffer, at.offset + begin * per * at.ld, math.prod(shape[:-1]),
                _cols(shape), at.ld, shape)


def _cols(shape) -> int:
    return shape[-1] if shape else 1
