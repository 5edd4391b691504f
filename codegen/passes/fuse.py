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
it instead of running alone — and moves back where that cut it from an elementwise producer
left behind (a state kept past a sample's length, zoneout's mix: both would be stored). A
forward node never shares a kernel with a node that only serves gradients: those run in the
backward pass, recomputing `y * (1 - y)` from `y`.

`fuse=False` gives every elementwise node its own kernel: the unrolled baseline.
"""
from __future__ import annotations

import hashlib
import itertools

from codegen.graph import Graph, node, topo_order, upstream, with_graph_attrs
from codegen.ops import OPS


def is_elementwise(g, nid) -> bool:
    return fusable(OPS[node(g, nid).op])


def fusable(op) -> bool:
    """Elementwise ops and row reductions (a kernel's `Reduce` statements) fuse."""
    return op.elementwise or op.row_reduction


def forward_nodes(g) -> set:
    """What the outputs need; everything else only serves gradients."""
    return upstream(g, g.graph.get("outputs", ()))


def fuse_elementwise(g: Graph, fuse: bool = True) -> Graph:
    order = topo_order(g)
    elementwise = {name for name, op in OPS.items() if fusable(op)}
    ew = [n for n in order if node(g, n).op in elementwise]
    if not fuse:
        return _label(g, order, {n: n for n in ew})
    fwd = forward_nodes(g)
    level = _levels(g, order, set(ew), fwd)
    # joinable: at one level, and both forward or both serving gradients
    kind = {n: 2 * level[n] + (n in fwd) for n in ew}
    return _label(g, order, _union(g, ew, kind))


def _levels(g, order, ew, fwd) -> dict:
    pred, succ = g.sources, g.users
    level = {}
    for n in order:
        inputs = pred[n]
        level[n] = max([level[p] + (p not in ew) for p in inputs]) if inputs else 0
    first = dict(level)
    for n in reversed(order):
        users = succ[n]
        if not users or n not in ew:
            continue
        upper = min([level[s] for s in users])
        forward = n in fwd
        for s in users:
            if level[s] == upper and s in ew and (s in fwd) == forward:
                level[n] = upper
                break
    return _rejoin_producers(order, ew, fwd, pred, first, level)


def _rejoin_producers(order, ew, fwd, pred, first: dict, level: dict) -> dict:
    """Moves back down each node that moving up cut from an elementwise producer of its
    kind left at their common level, as early as its inputs allow: the move would store the
    producer's value and read it again one kernel later, where the node, fused with its
    producer, writes only its own (a state kept past a sample's length, zoneout's mix)."""
    for n in order:
        if n not in ew or level[n] == first[n]:
            continue
        kind = n in fwd
        if any(p in ew and (p in fwd) == kind and first[p] == first[n] and level[p] < level[n]
               for p in pred[n]):
            level[n] = max(level[p] + (p not in ew) for p in pred[n])
    return level


def _union(g, ew, kind) -> dict:
    """Union-find over edges between elementwise nodes of one kind: node -> representative."""
    parent = {n: n for n in ew}
    pred, succ = g.sources, g.users

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in ew:
        for p in pred[n]:
            if p in parent and kind[p] == kind[n]:
                parent[find(p)] = find(n)
    for users in succ.values():  # siblings: elementwise readers of one value at one level
        if len(users) > 1:
            readers = [u for u in users if u in parent]
            for a, b in itertools.pairwise(readers):
                if kind[a] == kind[b]:
                    parent[find(a)] = find(b)
    return {n: find(n) for n in ew}


def groups_acyclic(g, groups) -> bool:
    """Whether the graph of fused groups (and single nodes) has no cycle: the levels promise
    it; SYMRNN_DEBUG checks it (codegen.verify)."""
    users: dict[str, set] = {groups.get(n, n): set() for n in g.records}
    for a, readers in g.users.items():
        ga = groups.get(a, a)
        users[ga].update(groups.get(b, b) for b in readers)
    waiting = dict.fromkeys(users, 0)
    for ga, gbs in users.items():
        gbs.discard(ga)
        for gb in gbs:
            waiting[gb] += 1
    ready = [u for u, k in waiting.items() if k == 0]
    for u in ready:
        for v in users[u]:
            waiting[v] -= 1
            if waiting[v] == 0:
                ready.append(v)
    return len(ready) == len(users)


def _label(g, order, groups) -> Graph:
    members: dict[str, list[str]] = {}
    for n in order:
        if n in groups:
            members.setdefault(groups[n], []).append(n)
    labelled, digests = {}, {}
    for ids in members.values():
        ids = _canonical(g, ids, digests) if len(ids) > 1 else ids
        named = [n for n in ids if node(g, n).op != "copy"] or ids  # not after a second copy
        labelled[f"fused({named[-1]})"] = tuple(ids)
    return with_graph_attrs(g, order, groups=labelled)


def _canonical(g, ids: list[str], digests: dict) -> list[str]:
    """The members in an order that depends only on the group's structure (and, between
    equal structures, on the graph's order), so that the same step at every time step
    renders the same kernel: a post-order walk from the outputs, inputs in operand order.
    `digests` remembers the hash of each structure: most repeat at every time step."""
    inside = set(ids)
    shape = {}
    for n in ids:  # ids are in topological order
        rec = node(g, n)
        ins = tuple([shape.get(i, "in") for i in rec.inputs])
        # without attributes the key holds only strings, and equal tuples have equal reprs
        key = repr((rec.op, _structural(rec.attrs), ins)) if rec.attrs else (rec.op, ins)
        digest = digests.get(key)
        if digest is None:
            text = key if rec.attrs else repr((rec.op, (), ins))
            digest = digests[key] = hashlib.sha1(text.encode()).hexdigest()
        shape[n] = digest
    succ = g.users
    outs = [n for n in ids if not succ[n] or not inside.issuperset(succ[n])]
    outs.sort(key=shape.__getitem__)  # stable: equal structures stay in the graph's order
    done, walk = set(), []
    for n in outs + ids:  # then members no output needs (none after dead-code elimination)
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
            for i in reversed(node(g, cur).inputs):
                if i in inside:
                    stack.append((i, False))
    return walk


def _structural(attrs) -> tuple:
    return tuple(kv for kv in attrs if kv[0] != "mask_id")
