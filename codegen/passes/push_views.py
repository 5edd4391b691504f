"""push_views: moves slices, splits and time steps above the elementwise ops they read.

`split_k(add(a, b))` becomes `add(split_k(a), split_k(b))` when every user of the add is a
view, so that the gate pre-activations of a cell need not be materialized: each gate's
kernel reads its slice of the two products directly. Ops whose value depends on the element
index (dropout and zoneout masks) are left alone, since a view would change the index.
"""
from __future__ import annotations

from collections import deque

from codegen.graph import (
    Graph,
    add_node,
    consumers,
    copy_graph,
    make_node,
    node,
    remove_node,
    set_node,
    topo_order,
)
from codegen.ops import OPS

VIEWS = ("split", "slice", "take")
INDEXED = ("dropout", "zoneout")


def push_views(g: Graph) -> Graph:
    g = copy_graph(g)
    work = deque(n for n in topo_order(g) if node(g, n).op in VIEWS)
    while work:
        nid = work.popleft()
        if nid not in g:
            continue
        src = node(g, nid).inputs[0]
        if _pushable(g, src):
            for view in consumers(g, src):
                work.extend(_push(g, view, src))
            remove_node(g, src)  # every user now reads the pushed views
    return g


def _pushable(g, src) -> bool:
    n = node(g, src)
    if not OPS[n.op].elementwise or n.op in INDEXED or not n.inputs:
        return False
    users = consumers(g, src)
    protected = set(g.graph.get("outputs", ())) | set(g.graph.get("grads", {}).values())
    return src not in protected and all(node(g, u).op in VIEWS for u in users)


def _push(g, view: str, src: str) -> list[str]:
    """Rewrites `view = V(op(x, y))` as `view = op(V(x), V(y))`; returns the new views."""
    v, e = node(g, view), node(g, src)
    new_inputs, new_views = [], []
    for i, x in enumerate(e.inputs):
        name = f"{view}.{i}"
        if node(g, x).op == "zeros":
            add_node(g, name, make_node("zeros", (), v.shape, v.dtype,
                                        {"shape": v.shape, "dtype": v.dtype}))
        else:
            add_node(g, name, v.with_(inputs=(x,)))
            new_views.append(name)
        new_inputs.append(name)
    set_node(g, view, e.with_(inputs=tuple(new_inputs), shape=v.shape))
    return new_views
