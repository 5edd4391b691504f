"""Verifiers the driver runs: the graph's invariants, and memory safety of a planned graph.

`verify_memory` does not trust the planner's liveness: it replays the schedule on a shadow
arena that records, per element, which value last wrote it, and checks that every read —
and every output and gradient at the end — finds the value it expects. Two values that are
live at once and overlap are caught at the first read of the clobbered one.
"""
from __future__ import annotations

import numpy as np

from codegen.graph import CycleError, Graph, node, roots, topo_order
from codegen.ops import OPS, known
from codegen.passes.fuse import groups_acyclic
from codegen.passes.schedule import unit_map
from runtime.assemble import copies, in_place, part_windows


class VerifyError(AssertionError):
    pass


def verify_graph(g: Graph, after: str = "") -> None:
    where = f"after {after}: " if after else ""
    try:
        topo_order(g)
    except CycleError:
        raise VerifyError(f"{where}the graph has a cycle") from None
    for nid in g:
        n = node(g, nid)
        if n.op not in OPS:
            raise VerifyError(f"{where}{nid!r} has unknown op {n.op!r}")
        if set(g.predecessors(nid)) != set(n.inputs):
            raise VerifyError(f"{where}{nid!r}: edges do not match inputs {n.inputs}")
        if not known(n.shape):
            raise VerifyError(f"{where}{nid!r} has unknown shape {n.shape}")
    for r in roots(g):
        if r not in g:
            raise VerifyError(f"{where}output or gradient {r!r} is not in the graph")
    group_of = {n: ("group", name) for name, members in g.graph.get("groups", {}).items()
                for n in members}
    if group_of and not groups_acyclic(g, group_of):
        raise VerifyError(f"{where}the fused groups depend on each other in a cycle")


def verify_memory(g: Graph) -> None:
    """Replays a planned graph's schedule on a shadow arena; raises VerifyError on a clobber."""
    layout, groups = g.graph["layout"], g.graph.get("groups", {})
    shadow = {b: np.full(size, -1, np.int64) for b, size in g.graph["arena"].items()}
    unit_of = unit_map(g)
    steps = {u for u, _ in g.graph["schedule"]} | {m for ms in groups.values() for m in ms}
    ids: dict[str, int] = {}
    out = set(roots(g))
    for unit, _ in g.graph["schedule"]:
        members = groups.get(unit, (unit,))
        inside = set(members)
        for nid in members:
            for src in node(g, nid).inputs:
                if src not in inside:
                    _check(g, shadow, layout, ids, src, f"{unit} reads {src}", steps)
        for nid in members:
            if nid in layout and (nid in out or any(
                    unit_of.get(u) != unit for u in g.successors(nid))):
                for view in _written(g, nid, layout):
                    _write(shadow, view, ids.setdefault(nid, len(ids)))
    for r in out:
        _check(g, shadow, layout, ids, r, f"output or gradient {r}", steps)


def _elements(v) -> np.ndarray:
    rows = np.arange(v.rows)[:, None] * v.ld
    return (v.offset + rows + np.arange(v.cols)[None, :]).ravel()


def _write(shadow, view, value_id) -> None:
    if view.buffer in shadow:
        shadow[view.buffer][_elements(view)] = value_id


def _check(g, shadow, layout, ids, nid, what, steps) -> None:
    view = layout[nid]
    if view.buffer not in shadow:
        return
    expected = [ids[w] for w in _writers(g, nid, layout, steps) if w in ids]
    found = shadow[view.buffer][_elements(view)]
    bad = ~np.isin(found, expected)
    if bad.any():
        raise VerifyError(f"memory plan: {what}, but {int(bad.sum())} of its elements were "
                          f"last written by another value (ids {sorted(set(found[bad]))})")


def _writers(g, nid, layout, steps) -> list[str]:
    """The values whose writes make up `nid`: itself, its source through views, or the
    parts of an in-place stack or concat (nodes with no step of their own, or the parts
    stored in place of one whose step copies the others)."""
    found, stack = [], [nid]
    while stack:
        x = stack.pop()
        found.append(x)
        if x not in steps and node(g, x).op != "var":
            stack.extend(node(g, x).inputs)
        elif x in steps:
            stack.extend(_parts_in_place(g, x, layout))
    return found


def _parts_in_place(g, nid, layout) -> list[str]:
    """The parts of stack or concat `nid` stored as their windows of it."""
    n = node(g, nid)
    if not n.inputs or not all(p in layout for p in n.inputs):
        return []
    wins = part_windows(n.op, n.attr_dict, [layout[p] for p in n.inputs], layout[nid])
    return [p for p, w in zip(n.inputs, wins) if in_place(layout[p], w)] if wins else []


def _written(g, nid, layout) -> list:
    """The views the step of `nid` writes: its whole value, or for a stack or concat the
    windows of the parts not stored in place."""
    n = node(g, nid)
    if n.inputs and all(p in layout for p in n.inputs):
        parts = copies(n.op, n.attr_dict, [layout[p] for p in n.inputs], layout[nid])
        if parts is not None:
            return [w for _, w in parts]
    return [layout[nid]]
