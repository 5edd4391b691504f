"""fold_stacks: a stack of every time step of one value, in order, is that value.

`stack(take(x, 0), take(x, 1), ..., take(x, n - 1))` with `x` of shape `(n, ...)` becomes
`reshape(x)` to its own shape: a view of `x`, under the stack's name (outputs and gradients
keep pointing at it).
batch_gemms leaves such stacks behind: the gradient of a layer's input is one GEMM for all
steps, cut into steps for the per-step graph and stacked again for the sequence's gradient.
Without the fold the stack is a copy of the whole sequence.
"""
from __future__ import annotations

from codegen.graph import Graph, copy_graph, make_node, node, set_node, topo_order


def fold_stacks(g: Graph) -> Graph:
    g = copy_graph(g)
    for nid in topo_order(g):
        n = node(g, nid)
        src = _restacked(g, n)
        if src is not None:
            set_node(g, nid, make_node("reshape", (src,), n.shape, n.dtype,
                                       {"shape": tuple(n.shape)}))
    return g


def _restacked(g, n) -> str | None:
    """`x` when node `n` stacks take(x, 0) .. take(x, len - 1), in order, else None."""
    if n.op != "stack" or not n.inputs:
        return None
    parts = [node(g, p) for p in n.inputs]
    if any(p.op != "take" for p in parts):
        return None
    src = parts[0].inputs[0]
    shape = node(g, src).shape
    ok = all(p.inputs[0] == src and p.attr("index") == i for i, p in enumerate(parts))
    return src if ok and tuple(shape) == n.shape else None  # every step, none twice
