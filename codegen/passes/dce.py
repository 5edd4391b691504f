"""dead-code elimination: keeps what the outputs and the gradients need, and the arguments."""
from __future__ import annotations

from codegen.graph import Graph, copy_without, node, roots, upstream


def eliminate_dead_code(g: Graph) -> Graph:
    live = upstream(g, roots(g))
    return copy_without(g, [n for n in g if n not in live and node(g, n).op != "var"])
