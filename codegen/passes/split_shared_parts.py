"""split_shared_parts: a value that is a part of several stacks or concats gets a copy for
each after the first, an elementwise `copy` node that fuses into its producer's kernel.

plan_memory builds a container in place only where each of its parts is stored in its
window, and a value has one place: a part shared by two containers was copied into the
second by a copy step. The GRU's reset and update gate gradients are parts of the gate
gradients of both its input and its recurrent product (cuDNN's form applies the reset gate
after the recurrent product, so only the candidate's gradient differs): two copies of 64x1024
every step, where now the backward kernel writes both windows.

Only values an elementwise node computes are copied (their copy joins that node's kernel);
a variable or a GEMM's output keeps its copy step.
"""
from __future__ import annotations

from codegen.graph import Graph, add_node, copy_graph, make_node, node, set_node, topo_order
from codegen.ops import OPS

CONTAINERS = ("stack", "concat")


def split_shared_parts(g: Graph) -> Graph:
    order = topo_order(g)
    containers = [c for c in order if node(g, c).op in CONTAINERS]
    seen: set = set()
    changes = []
    for c in containers:
        parts = node(g, c).inputs
        if len(set(parts)) != len(parts):
            continue  # a part twice in one container stays a copy step (plan_memory)
        shared = [p for p in parts if p in seen and _elementwise(g, p)]
        seen.update(parts)
        if shared:
            changes.append((c, set(shared)))
    if not changes:
        return g
    g = copy_graph(g)
    for c, shared in changes:
        n = node(g, c)
        inputs = []
        for p in n.inputs:
            if p in shared:
                src = node(g, p)
                p = add_node(g, f"{p}@{c}", make_node("copy", (p,), src.shape, src.dtype))
            inputs.append(p)
        set_node(g, c, n.with_(inputs=tuple(inputs)))
    return g


def _elementwise(g, nid) -> bool:
    op = OPS[node(g, nid).op]
    return op.elementwise and op.name != "zeros"
