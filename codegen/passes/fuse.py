"""fuse_elementwise: maximal groups of elementwise ops between GEMMs become one kernel each.

Fusion labels the graph, it does not rewrite it: `graph["groups"]` maps a kernel name to
the ids of its nodes in topological order.

Two connected elementwise nodes may share a kernel only if no path between them leaves the
group through a barrier (a GEMM, a view, a library op), or the kernels could not be
ordered. Levels guarantee it: every node gets a level with `level(n) >= level(p)` on each
edge `p -> n`, plus one when `p` is a barrier; nodes joined by an edge share a kernel when
their levels are equal. A barrier path between them would have raised the level. Levels
start as early as possible (the longest barrier count from the inputs); then, from the
outputs back, an elementwise node moves up to the level of an elementwise user when no
other user forbids it — so the bias add of an input projection joins the step that reads
it instead of running alone. A forward node never shares a kernel with a node that only
serves gradients: those run in the backward pass, recomputing `y * (1 - y)` from `y`.

`fuse=False` gives every elementwise node its own kernel: the unrolled baseline.
"""
from __future__ import annotations

import hashlib
import itertools

import networkx as nx

from codegen.graph import copy_graph, node
from codegen.ops import OPS


def is_elementwise(g, nid) -> bool:
    return OPS[node(g, nid).op].elementwise


def forward_nodes(g) -> set:
    """What the outputs need; everything else only serves gradients."""
    heads = g.graph.get("outputs", ())
    return set(heads).union(*(nx.ancestors(g, h) for h in heads))


def fuse_elementwise(g: nx.DiGraph, fuse: bool = True) -> nx.DiGraph:
    g = copy_graph(g)
    order = list(nx.topological_sort(g))
    ew = [n for n in order if is_elementwise(g, n)]
    if not fuse:
        return _label(g, order, {n: n for n in ew})
    fwd = forward_nodes(g)
    level = _levels(g, order, fwd)
    groups = _union(g, ew, lambda p, n: level[p] == level[n] and (p in fwd) == (n in fwd))
    assert _acyclic(g, groups), "internal: fusion levels admitted a cycle"
    return _label(g, order, groups)


def _levels(g, order, fwd) -> dict:
    level = {}
    for n in order:
        level[n] = max((level[p] + (not is_elementwise(g, p)) for p in g.predecessors(n)),
                       default=0)
    for n in reversed(order):
        succ = list(g.successors(n))
        if not is_elementwise(g, n) or not succ:
            continue
        upper = min(level[s] for s in succ)
        if any(level[s] == upper and is_elementwise(g, s) and (s in fwd) == (n in fwd)
               for s in succ):
            level[n] = upper
    return level


def _union(g, ew, joinable) -> dict:
    """Union-find over elementwise edges allowed by `joinable`: node -> representative."""
    parent = {n: n for n in ew}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in ew:
        for p in g.predecessors(n):
            if p in parent and joinable(p, n):
                parent[find(p)] = find(n)
    for x in g:  # siblings: elementwise readers of one value at one level
        readers = [u for u in g.successors(x) if u in parent]
        for a, b in itertools.pairwise(readers):
            if joinable(a, b):
                parent[find(a)] = find(b)
    return {n: find(n) for n in ew}


def _acyclic(g, groups) -> bool:
    q = nx.DiGraph()
    q.add_nodes_from(groups.get(n, n) for n in g)
    q.add_edges_from((groups.get(a, a), groups.get(b, b)) for a, b in g.edges
                     if groups.get(a, a) != groups.get(b, b))
    return nx.is_directed_acyclic_graph(q)


def _label(g, order, groups) -> nx.DiGraph:
    members: dict[str, list[str]] = {}
    for n in order:
        if n in groups:
            members.setdefault(groups[n], []).append(n)
    labelled = {}
    for ids in members.values():
        ids = _canonical(g, ids)
        labelled[f"fused({ids[-1]})"] = tuple(ids)
    g.graph["groups"] = labelled
    return g


def _canonical(g, ids: list[str]) -> list[str]:
    """The members in an order that depends only on the group's structure (and, between
    equal structures, on the graph's order), so that the same step at every time step
    renders the same kernel: a post-order walk from the outputs, inputs in operand order."""
    inside = set(ids)
    position = {n: i for i, n in enumerate(ids)}
    shape = {}
    for n in ids:  # ids are in topological order
        rec = node(g, n)
        attrs = tuple((k, v) for k, v in rec.attrs if k != "mask_id")
        key = repr((rec.op, attrs, tuple(shape.get(i, "in") for i in rec.inputs)))
        shape[n] = hashlib.sha1(key.encode()).hexdigest()
    outs = [n for n in ids if any(u not in inside for u in g.successors(n))
            or not any(True for _ in g.successors(n))]
    outs.sort(key=lambda n: (shape[n], position[n]))
    done, walk = set(), []

    def visit(n):
        stack = [(n, False)]
        while stack:
            cur, expanded = stack.pop()
            if cur in done:
                continue
            if expanded:
                done.add(cur)
                walk.append(cur)
                continue
            stack.append((cur, True))
            stack.extend((i, False) for i in reversed(node(g, cur).inputs) if i in inside)

    for n in outs:
        visit(n)
    for n in ids:  # members no output needs (none after dead-code elimination)
        visit(n)
    return walk
