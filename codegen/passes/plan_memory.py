"""plan_memory: where every value lives. Liveness over the schedule, offsets in one arena.

- Variables live in their own external buffers (arguments, head gradients).
- Views are windows of their source (codegen.views).
- A stack or concat is built in place where it can be: its parts are computed straight into
  their windows of it, and the copy step disappears from the schedule. Parts written by a
  GEMM or a library op must stay contiguous, so only kernels write into column windows. Where
  some parts cannot be (a variable, a part of another container), those alone are copied.
- Every other value gets an arena range, reused once its last reader has run. Outputs and
  gradients live to the end. Ranges are placed largest first at the lowest free offset
  (ties in natural name order: step t before step t+1). With `strided`, in the order of
  `_placing` instead, which makes the layout of a time step repeat at a constant stride
  at every T (what codegen.extrapolate needs), at the price of some reuse (the 2-layer
  LSTM, H=512, T=100: arena 354 MiB against 300).

Results: `graph["layout"]` ({node: View}), `graph["arena"]` ({buffer: elements}),
`graph["schedule"]` without the in-place copies, `graph["liveness"]` ({root: (start, end)})
and `graph["unplanned"]` ({buffer: elements if every value had its own range}).
"""
from __future__ import annotations

import math
import re

import numpy as np

from codegen.graph import Graph, node, roots, topo_order, with_graph_attrs
from codegen.passes.schedule import unit_map
from codegen.views import VIEW_OPS, is_view, view_of, whole
from runtime.program import View

ALIGN = 16  # elements: 64 bytes in float32
_DIGITS = re.compile(r"(\d+)")
CONTAINERS = ("stack", "concat")


def plan_memory(g: Graph, strided: bool = False) -> Graph:
    unit_of = unit_map(g)
    order = topo_order(g)
    views = {n for n in order if node(g, n).op in VIEW_OPS and is_view(g, n)}
    placed_by_source = [n for n in order if n in views or node(g, n).op == "var"]
    owners = _owners(g, unit_of, order)
    parent = _in_place(g, owners, unit_of)
    in_place = {c for c in set(parent.values())  # built whole: its copy step goes
                if all(parent.get(p) == c for p in node(g, c).inputs)}
    schedule = [(u, ph) for u, ph in g.graph["schedule"] if u not in in_place]
    pos = {u: i for i, (u, _) in enumerate(schedule)}
    root = {o: _root(o, parent) for o in owners}
    live = _liveness(g, owners, root, unit_of, pos, len(schedule), in_place, views)
    offsets, sizes = _offsets(g, live, strided)
    layout = _layout(g, owners, parent, offsets, placed_by_source)
    unplanned: dict[str, int] = {}
    for o in owners:
        if o not in parent:
            buf = arena_name(node(g, o).dtype)
            unplanned[buf] = unplanned.get(buf, 0) + _aligned(math.prod(node(g, o).shape))
    return with_graph_attrs(g, order, schedule=schedule, layout=layout, arena=sizes,
                            liveness=live, unplanned=unplanned)


def _aligned(n: int) -> int:
    return -(-max(n, 1) // ALIGN) * ALIGN


def arena_name(dtype: str) -> str:
    return f"arena.{dtype}"


def _owners(g, unit_of, order) -> list[str]:
    """Nodes whose value is stored: step outputs that someone outside their unit reads."""
    out, succ = set(roots(g)), g.users
    owners = []
    for nid in order:
        unit = unit_of.get(nid)
        if unit is None:
            continue
        if nid in out or any(unit_of.get(u) != unit for u in succ[nid]):
            owners.append(nid)
    return owners


def _in_place(g, owners, unit_of) -> dict:
    """{part: container} for the parts of stacks and concats computed in their windows,
    outermost container first. A part can be: a stored value of one container only (a
    variable cannot), written by a kernel where the window is columns (GEMMs and library ops
    write contiguous rows). The container's copy step goes where all its parts can; otherwise
    it stays and copies the other parts (runtime.assemble)."""
    owner_set, parent = set(owners), {}
    containers = [o for o in owners if node(g, o).op in CONTAINERS]
    for c in reversed(containers):
        n = node(g, c)
        rank = len(n.shape)
        axis = 0 if n.op == "stack" else n.attr("axis") % rank
        columns = axis == rank - 1 and rank > 1
        parts = n.inputs
        if len(set(parts)) != len(parts) or axis not in (0, rank - 1):
            continue
        for p in parts:
            if p in owner_set and p not in parent and node(g, p).shape != () \
                    and (not columns or unit_of[p] != p):
                parent[p] = c
    return parent


def _root(o, parent) -> str:
    while o in parent:
        o = parent[o]
    return o


def _liveness(g, owners, root, unit_of, pos, end, in_place, views) -> dict:
    """{root: (first step that writes it, last step that reads it)}."""
    through = in_place | views
    live: dict[str, list[int]] = {}
    out = set(roots(g))
    for o in owners:
        r = root[o]
        u = unit_of[o]
        start = pos.get(u, None)
        span = live.setdefault(r, [end, 0])
        if start is not None:
            span[0] = min(span[0], start)
        for reader in _readers(g, o, unit_of, through):
            if reader in pos:
                span[1] = max(span[1], pos[reader])
        if o in out or _viewed_by_roots(g, o, out, views):
            span[1] = end
    for span in live.values():
        span[1] = max(span[1], span[0])
    return {r: tuple(s) for r, s in live.items()}


def _readers(g, nid, unit_of, through) -> list[str]:
    """Units that read `nid`, directly or through views and in-place containers."""
    found, stack, succ, unit = [], [nid], g.users, unit_of.get(nid)
    while stack:
        for u in succ[stack.pop()]:
            if u in through:
                stack.append(u)
            elif unit_of.get(u) != unit:
                found.append(unit_of[u])
    return found


def _viewed_by_roots(g, nid, out, views) -> bool:
    stack, succ = [nid], g.users
    while stack:
        x = stack.pop()
        if x in out:
            return True
        stack.extend(u for u in succ[x] if u in views)
    return False


def _offsets(g, live, strided: bool) -> tuple[dict, dict]:
    """Offsets for each root: the lowest offset free during its live range, in the order
    of `_placing`, each group above every value of the groups before it."""
    # per buffer, the ranges placed so far, sorted by offset, as the columns (offset, end
    # offset, first step, last step) of a table, and how many there are
    tables: dict[str, np.ndarray] = {}
    count: dict[str, int] = {}
    offsets, sizes, floors = {}, {}, {}
    for r, group in _placing(g, live) if strided else _largest_first(g, live):
        n = node(g, r)
        buf, size = arena_name(n.dtype), _aligned(math.prod(n.shape))
        start, end = live[r]
        if buf not in tables:
            tables[buf], count[buf] = np.zeros((4, len(live)), np.int64), 0
        if (buf, group) not in floors:
            floors[buf, group] = sizes.get(buf, 0)
        table, k = tables[buf], count[buf]
        lo, hi, first, last = table[:, :k]
        busy = (first <= end) & (start <= last)
        floor = floors[buf, group]
        at = _first_fit(np.concatenate([[0], lo[busy]]), np.concatenate([[floor], hi[busy]]),
                        size)
        i = int(lo.searchsorted(at))
        table[:, i + 1:k + 1] = table[:, i:k]  # keeps it sorted
        table[:, i] = (at, at + size, start, end)
        count[buf] = k + 1
        offsets[r] = (buf, at)
        sizes[buf] = max(sizes.get(buf, 0), at + size)
    return offsets, sizes


def _largest_first(g, live) -> list:
    """[(root, 0)], largest first (ties in natural name order), one group: the tightest."""
    size = {r: math.prod(node(g, r).shape) for r in live}
    return [(r, 0) for r in sorted(live, key=lambda r: (-size[r], _natural(r)))]


def _placing(g, live) -> list:
    """[(root, group)] in the order they are placed: group 0, what lives to the end (outputs,
    gradients); 1, the large values (an eighth of the largest of the rest or more: the
    sequences); 2, the small ones (the steps' values), one group per kind of value (its name
    without the step numbers: `d(rnn_r1_t#_h2h.gemm).0`); each group above the ones before
    it, in the order it is written. So a step's values land at the same place relative to the
    step before, whatever the length of the sequence (a constant stride, which codegen.roll
    folds into a loop), rather than in gaps whose sizes grow with T; the price is that a
    group does not reuse the space of another. (With one group for all the small values, two
    chains of steps running side by side, the two directions of a bidirectional layer, took
    turns over a few shared ranges in a cycle of three steps or so, not affine in T.)"""
    final = max((e for _, e in live.values()), default=0)
    size = {r: math.prod(node(g, r).shape) for r in live}
    big = max((size[r] for r in live if live[r][1] < final), default=0) / 8
    group = {r: 0 if live[r][1] >= final else 1 if size[r] >= big else 2 for r in live}
    order = sorted(live, key=lambda r: (group[r], live[r][0], -size[r], _natural(r)))
    return [(r, (2, _DIGITS.sub("#", r)) if group[r] == 2 else group[r]) for r in order]


def _natural(name: str) -> tuple:
    """`name` with its numbers compared as numbers: the values of step t are placed before
    those of step t+1 (t2 before t10), so that the layout repeats from one step to the next,
    with a constant stride, which lets codegen.roll fold the steps into a loop."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _first_fit(lo: np.ndarray, hi: np.ndarray, size: int) -> int:
    """The lowest offset where `size` elements miss every busy range [lo, hi); `lo` sorted.
    Only 0 and the ends of ranges are candidates: the gap after the first k ranges runs
    from the furthest end among them to the start of the next."""
    if not len(lo) or lo[0] >= size:
        return 0
    covered = np.maximum.accumulate(hi)
    gaps = np.flatnonzero(lo[1:] - covered[:-1] >= size)
    return int(covered[gaps[0]] if len(gaps) else covered[-1])


def _layout(g, owners, parent, offsets, placed_by_source) -> dict:
    """Views of the owners, then (in topological order) of the variables and the views."""
    layout: dict[str, View] = {}
    for o in owners:
        _place(g, o, parent, offsets, layout)
    for nid in placed_by_source:
        n = node(g, nid)
        if n.op == "var":
            kind = "head_grad" if n.attr("kind") == "head_grad" else "arg"
            layout[nid] = whole(f"{kind}:{nid}", 0, n.shape)
        elif nid not in layout and n.inputs[0] in layout:
            layout[nid] = view_of(g, nid, layout[n.inputs[0]])
    return layout


def _place(g, o, parent, offsets, layout) -> View:
    """The view of owner `o`: its own arena range, or its window of the container it is
    built in (a module-level function: a nested recursive one would make a reference cycle
    that keeps the graph alive until the garbage collector runs)."""
    if o not in layout:
        if o in parent:
            at = _place(g, parent[o], parent, offsets, layout)
            layout[o] = _part_window(g, parent[o], o, at)
        else:
            buf, at = offsets[o]
            layout[o] = whole(buf, at, node(g, o).shape)
    return layout[o]


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
