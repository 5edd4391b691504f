"""Reverse-mode autodiff as a graph transformation: gradient nodes from each op's vjp rule.

For each head `h` a variable `head_grad(h)` holds the incoming gradient. Nodes are visited in
reverse topological order; the contributions reaching a node are combined into one gradient:
the pads of slices and the puts of time steps that land on one tensor become a single concat
or stack (no zero-filled copies), and whatever remains is summed.

The result records `graph["grads"] = {argument: gradient node}` and
`graph["head_grads"] = {head: variable}`. Only arguments in `wrt` get gradients, and only
nodes between them and the heads are differentiated.
"""
from __future__ import annotations

import itertools
import re

from codegen.builder import Builder
from codegen.graph import Graph, copy_graph, downstream, node, topo_order, upstream
from codegen.ops import OPS

_STEP = re.compile(r"\d+")


def head_grad_name(head: str) -> str:
    return f"head_grad({head})"


def autodiff(g: Graph, wrt) -> Graph:
    g = copy_graph(g)
    b = Builder(g)
    heads = list(g.graph["outputs"])
    live = _between(g, wrt, heads)
    contribs: dict[str, list[str]] = {}
    head_grads = {}
    for h in heads:
        n = node(g, h)
        head_grads[h] = b.var(head_grad_name(h), n.shape, n.dtype, kind="head_grad")
        contribs.setdefault(h, []).append(head_grads[h])
    grads = {}
    for nid in reversed(topo_order(g)):
        if nid not in live or nid not in contribs:
            continue
        grad = _combine(b, nid, contribs.pop(nid))
        n = node(g, nid)
        if n.op == "var":
            grads[nid] = grad
            continue
        for src, gi in zip(n.inputs, OPS[n.op].vjp(b, nid, n, grad)):
            if gi is not None and src in live:
                contribs.setdefault(src, []).append(gi)
    for w in wrt:
        if w not in grads:
            n = node(g, w)
            grads[w] = b.add("zeros", [], f"grad({w})", shape=n.shape, dtype=n.dtype)
    g.graph["grads"] = {w: grads[w] for w in wrt}
    g.graph["head_grads"] = head_grads
    return g


def _between(g, wrt, heads) -> set:
    """Nodes on some path from an argument in `wrt` to a head."""
    return downstream(g, wrt) & upstream(g, heads)


def _combine(b: Builder, nid: str, parts: list[str]) -> str:
    g = b.g
    puts, pads, rest = [], [], []
    for p in sorted(parts, key=_pattern):
        op = node(g, p).op
        (puts if op == "put" else pads if op == "pad" else rest).append(p)
    if len(puts) > 1:
        rest.append(_stack_puts(b, nid, puts))
    else:
        rest += puts
    if len(pads) > 1:
        rest += _concat_pads(b, nid, pads)
    else:
        rest += pads
    total = rest[0]
    for i, p in enumerate(rest[1:]):
        total = b.add("add", [total, p], f"grad({nid}).sum{i}")
    return total


def _pattern(name: str) -> str:
    """A contribution's name without its step numbers: they are summed in this order, the
    same at every step (the reversed topological order they arrive in is not: for a
    bidirectional layer, it flips where the two directions cross)."""
    return _STEP.sub("#", name)


def _stack_puts(b, nid, puts) -> str:
    """put(g_t, index=t) for several t -> stack of the g_t, zeros where no step lands."""
    by_step: dict[int, list[str]] = {}
    for p in puts:
        by_step.setdefault(node(b.g, p).attr("index"), []).append(node(b.g, p).inputs[0])
    size = node(b.g, puts[0]).attr("size")
    items = []
    for t in range(size):
        items.append(_sum_or_zeros(b, f"grad({nid}).t{t}", by_step.get(t, []), nid, 1))
    return b.add("stack", items, f"grad({nid}).stack")


def _concat_pads(b, nid, pads) -> list[str]:
    """pad(g_k, axis, begin, end) pieces that do not overlap -> one concat along the axis."""
    recs = sorted((node(b.g, p) for p in pads), key=lambda n: n.attr("begin"))
    axis, size = recs[0].attr("axis"), recs[0].attr("size")
    spans = [(r.attr("begin"), r.attr("end")) for r in recs]
    same_axis = all(r.attr("axis") == axis and r.attr("size") == size for r in recs)
    disjoint = all(a[1] <= c[0] for a, c in itertools.pairwise(spans))
    if not (same_axis and disjoint):
        return list(pads)
    items, at = [], 0
    for r, (begin, end) in zip(recs, spans):
        if begin > at:
            items.append(_gap(b, nid, r, axis, at, begin))
        items.append(r.inputs[0])
        at = end
    if at < size:
        items.append(_gap(b, nid, recs[-1], axis, at, size))
    return [b.add("concat", items, f"grad({nid}).concat", axis=axis)]


def _gap(b, nid, rec, axis, begin, end) -> str:
    shape = list(b.shape_of(rec.inputs[0]))
    shape[axis] = end - begin
    return b.add("zeros", [], f"grad({nid}).gap{begin}", shape=tuple(shape),
                 dtype=b.dtype_of(rec.inputs[0]))


def _sum_or_zeros(b, name, items, nid, drop) -> str:
    if not items:
        shape = node(b.g, nid).shape[drop:]
        return b.add("zeros", [], name, shape=shape, dtype=node(b.g, nid).dtype)
    total = items[0]
    for i, p in enumerate(items[1:]):
        total = b.add("add", [total, p], f"{name}.sum{i}")
    return total
