"""dead-code elimination: keeps what the outputs and the gradients need, and the arguments."""
from __future__ import annotations

import networkx as nx

from codegen.graph import copy_without, node, roots, upstream


def eliminate_dead_code(g: nx.DiGraph) -> nx.DiGraph:
    live = upstream(g, roots(g))
    return copy_without(g, [n for n in g if n not in live and node(g, n).op != "var"])
