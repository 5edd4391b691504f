"""pretranspose: a weight multiplied transposed at every time step is transposed once.

`dot(h_t, W, transpose_b)` for many t reads `W` against its storage order at every step;
BLAS is faster on a contiguous `W^T` (DESIGN.md measured 47 ms against 63 ms for 100 steps).
A variable that is the transposed right operand of more than one product gets one
`transpose` node, and those products read it untransposed.
"""
from __future__ import annotations

from collections import defaultdict

import networkx as nx

from codegen.graph import add_node, copy_graph, make_node, node, set_node


def pretranspose(g: nx.DiGraph) -> nx.DiGraph:
    g = copy_graph(g)
    users = defaultdict(list)
    for nid in sorted(g):
        n = node(g, nid)
        if n.op == "dot" and n.attr("transpose_b", False) and not n.attr("transpose_a", False) \
                and node(g, n.inputs[1]).op == "var":
            users[n.inputs[1]].append(nid)
    for w, dots in users.items():
        if len(dots) < 2:
            continue
        wn = node(g, w)
        wt = add_node(g, f"{w}.T", make_node("transpose", (w,), wn.shape[::-1], wn.dtype))
        for d in dots:
            n = node(g, d)
            set_node(g, d, n.with_(inputs=(n.inputs[0], wt), attrs=()))
    return g
