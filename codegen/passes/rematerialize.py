"""rematerialize: a forward value that is one scalar op away from a value the backward reads
anyway is recomputed in the backward kernel instead of being stored for it.

The GRU's `1 - z` is read by its backward kernel next to `z`: the forward kernel stored both,
one 64x512 stream a step more to write, and to read back. Here the backward's elementwise
readers of `1 - z` get a copy of the op on `z`, which fuses into their kernel (fuse keeps
forward and gradient nodes apart: the copy serves gradients only); the forward value is then
stored only where something else still reads it.
"""
from __future__ import annotations

from codegen.graph import Graph, add_node, copy_graph, node, set_node, topo_order
from codegen.ops import OPS
from codegen.passes.fuse import forward_nodes

CHEAP = ("neg", "add_scalar", "mul_scalar", "rsub_scalar")  # one operation on one input


def rematerialize(g: Graph) -> Graph:
    fwd = forward_nodes(g)
    moves = []
    for nid in topo_order(g):
        n = node(g, nid)
        if n.op not in CHEAP or nid not in fwd:
            continue
        readers = [u for u in g.users[nid] if u not in fwd and OPS[node(g, u).op].elementwise]
        src = n.inputs[0]
        if readers and any(u not in fwd for u in g.users[src]):
            moves.append((nid, readers))
    if not moves:
        return g
    g = copy_graph(g)
    for nid, readers in moves:
        again = add_node(g, f"{nid}@backward", node(g, nid))
        for u in readers:
            r = node(g, u)
            set_node(g, u, r.with_(inputs=tuple(again if i == nid else i for i in r.inputs)))
    return g
