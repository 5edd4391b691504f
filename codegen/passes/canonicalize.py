"""canonicalize: FullyConnected -> dot with the transposed weight, plus a broadcast bias;
broadcast_rows(v, like) -> broadcast_to(v) of the shape it has (a view).

Runs before autodiff, so that the bias becomes an elementwise add the fuser can put in the
step kernel (its gradient a row sum), and every product in the graph is a plain `dot` that
batch_gemms can find.
"""
from __future__ import annotations

from codegen.graph import Graph, add_node, copy_graph, make_node, node, set_node, topo_order


def canonicalize(g: Graph) -> Graph:
    g = copy_graph(g)
    for nid in [n for n in topo_order(g) if node(g, n).op == "broadcast_rows"]:
        n = node(g, nid)
        set_node(g, nid, make_node("broadcast_to", n.inputs[:1], n.shape, n.dtype,
                                   {"shape": n.shape}))
    for nid in [n for n in topo_order(g) if node(g, n).op == "FullyConnected"]:
        n = node(g, nid)
        x, w = n.inputs[:2]
        product = make_node("dot", (x, w), n.shape, n.dtype, {"transpose_b": True})
        if len(n.inputs) == 2:
            set_node(g, nid, product)
            continue
        add_node(g, f"{nid}.gemm", product)
        bias = make_node("broadcast_to", (n.inputs[2],), n.shape, n.dtype, {"shape": n.shape})
        add_node(g, f"{nid}.bias", bias)
        set_node(g, nid, make_node("add", (f"{nid}.gemm", f"{nid}.bias"), n.shape, n.dtype))
    return g
