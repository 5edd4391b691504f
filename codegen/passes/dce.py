"""dead-code elimination: keeps what the outputs and the gradients need, and the arguments."""
from __future__ import annotations

import networkx as nx

from codegen.graph import copy_graph, node, roots


def eliminate_dead_code(g: nx.DiGraph) -> nx.DiGraph:
    live = set()
    stack = list(roots(g))
    while stack:
        nid = stack.pop()
        if nid not in live:
            live.add(nid)
            stack.extend(node(g, nid).inputs)
    keep = live | {n for n in g if node(g, n).op == "var"}
    g = copy_graph(g)
    g.remove_nodes_from([n for n in list(g) if n not in keep])
    return g
