"""common-subexpression elimination: nodes with equal records become one."""
from __future__ import annotations

import networkx as nx

from codegen.graph import copy_graph, node, replace_uses


def eliminate_common_subexpressions(g: nx.DiGraph) -> nx.DiGraph:
    g = copy_graph(g)
    seen: dict = {}
    heads = set(g.graph.get("outputs", ()))  # each head keeps its own incoming gradient
    for nid in list(nx.topological_sort(g)):
        n = node(g, nid)
        if n.op == "var" or nid in heads:
            continue
        first = seen.setdefault(n, nid)
        if first != nid:
            replace_uses(g, nid, first)
            g.remove_node(nid)
    return g
