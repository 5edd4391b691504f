"""Shape inference over a whole graph: every op's shape rule, run to a fixed point.

Rules refine partial shapes in both directions, so a weight's shape follows from the data
it multiplies and an initial state's batch size from the step it enters. Shapes given by the
caller are checked against what the declared shapes already imply, one at a time, so that an
error names the argument the caller got wrong.
"""
from __future__ import annotations

import numbers

from codegen.graph import Graph, copy_graph, node, set_node, topo_order
from codegen.ops import OPS, Mismatch, known, unify
from runtime.errors import ShapeError, fmt_shape


def infer_shapes(g: Graph, given: dict | None = None, where: str = "infer_shape"):
    """A copy of `g` with every shape refined; `given` maps argument names to shapes."""
    g = copy_graph(g)
    order = topo_order(g)
    _fixpoint(g, order, where, None, set(order))
    given = dict(given or {})
    # States last: a conflict between the data and a state then names the state.
    for name, shape in sorted(given.items(), key=lambda kv: _is_state(g, kv[0])):
        if name not in g or node(g, name).op != "var":
            raise ShapeError(f"{where}: {name!r} is not an argument of the graph")
        shape = _check_dims(name, shape, where)
        current = node(g, name).shape
        try:
            merged = unify(current, tuple(shape))
        except Mismatch:
            raise ShapeError(f"{where}: '{name}' has shape {fmt_shape(shape)} but the graph "
                             f"expects {fmt_shape(current)}") from None
        set_node(g, name, node(g, name).with_(shape=merged))
        _fixpoint(g, order, where, name, {name, *g.users[name]})
    return g


def _is_state(g, name) -> bool:
    return name in g and node(g, name).attr("kind") == "state"


def require_known(g: Graph, where: str = "bind") -> None:
    """Every shape must be known before a graph is evaluated or compiled."""
    for nid in g:
        n = node(g, nid)
        if not known(n.shape):
            what = "argument" if n.op == "var" else f"'{n.op}' node"
            raise ShapeError(f"{where}: cannot infer the shape of {what} '{nid}' (so far "
                             f"{fmt_shape(n.shape)}); give it as a keyword, e.g. {nid}=(...)")


def _check_dims(name, shape, where) -> tuple:
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape):
        raise ShapeError(f"{where}: '{name}' must be a tuple of ints, given {shape!r}")
    if any(d <= 0 for d in shape):
        raise ShapeError(f"{where}: '{name}' has shape {fmt_shape(shape)}; every dimension "
                         f"must be positive")
    return tuple(int(d) for d in shape)


def _fixpoint(g, order, where, culprit, dirty: set):
    """Sweeps forward and back until no rule changes a shape. A rule reads only its node's
    and its inputs' shapes, so a node is skipped (`dirty` says which are not) when none of
    them changed since its rule last ran and changed nothing: it would change nothing again.
    """
    changed = True
    while changed:
        changed = False
        for nids in (order, reversed(order)):
            for nid in nids:
                if nid in dirty:
                    dirty.discard(nid)
                    changed |= _apply_rule(g, nid, where, culprit, dirty)


def _apply_rule(g, nid, where, culprit, dirty) -> bool:
    n = node(g, nid)
    ins = [node(g, i).shape for i in n.inputs]
    try:
        new_ins, out = OPS[n.op].shape(n.attr_dict, ins, n.shape)
    except Mismatch as e:
        blame = f"'{culprit}' leads to a conflict: " if culprit else ""
        raise ShapeError(
            f"{where}: {blame}'{nid}' ({n.op}) {e.what}: expected {fmt_shape(e.expected)}, "
            f"given {fmt_shape(e.given)}; inputs {', '.join(map(repr, n.inputs))} have "
            f"shapes {', '.join(fmt_shape(s) for s in ins)}") from None
    changed = False
    for src, old, new in zip(n.inputs, ins, new_ins):
        if new != old:
            set_node(g, src, node(g, src).with_(shape=new))
            changed = True
            dirty.add(src)
            dirty.update(g.users[src])
    if out != n.shape:
        set_node(g, nid, n.with_(shape=out))
        changed = True
        dirty.add(nid)
        dirty.update(g.users[nid])
    return changed
