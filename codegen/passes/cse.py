"""common-subexpression elimination: nodes with equal records become one."""
from __future__ import annotations

from codegen.graph import Graph, copy_graph, node, remove_node, replace_uses, topo_order


def eliminate_common_subexpressions(g: Graph) -> Graph:
    g = copy_graph(g)
    seen: dict = {}
    heads = set(g.graph.get("outputs", ()))  # each head keeps its own incoming gradient
    for nid in topo_order(g):
        n = node(g, nid)
        if n.op == "var" or nid in heads:
            continue
        first = seen.setdefault(n, nid)
        if first != nid:
            replace_uses(g, nid, first)
            remove_node(g, nid)
    return g
