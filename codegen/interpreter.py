"""The reference interpreter: evaluates a graph with numpy, op by op, from the op table.

It defines correct; every compiled executor is tested against it. Values are kept in each
node's dtype (float32 or float64), and a value is dropped once nothing still needs it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.graph import Graph, node, topo_order
from codegen.ops import OPS


@dataclass(frozen=True)
class EvalContext:
    seed: int = 0
    is_train: bool = False


def evaluate(g: Graph, feeds: dict, wanted, ctx: EvalContext, keep=()) -> dict:
    """Values of the nodes in `wanted` (and in `keep`), given `feeds` for the variables and
    for any node already computed."""
    wanted = list(wanted)
    needed = _needed(g, wanted, feeds)
    order = [n for n in topo_order(g) if n in needed and n not in feeds]
    uses = dict.fromkeys(needed, 0)
    for n in order:
        for src in node(g, n).inputs:
            uses[src] += 1
    pinned = set(wanted) | set(keep)
    env = dict(feeds)
    for nid in order:
        n = node(g, nid)
        args = [env[i] for i in n.inputs]
        out = OPS[n.op].impl(ctx, n.attr_dict, *args)
        env[nid] = np.asarray(out, dtype=n.dtype).reshape(n.shape)
        for src in n.inputs:
            uses[src] -= 1
            if uses[src] == 0 and src not in pinned and src not in feeds:
                del env[src]
    return {k: env[k] for k in pinned if k in env}


def _needed(g, wanted, feeds) -> set:
    seen, stack = set(), list(wanted)
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        if nid in feeds:
            continue
        n = node(g, nid)
        if n.op == "var":
            raise KeyError(f"internal: variable '{nid}' has no value")
        stack.extend(n.inputs)
    return seen
