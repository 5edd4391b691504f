"""schedule: one order of the program's units (kernels, GEMMs, library ops), forward first.

A unit is a fused group or a single node that needs a step; views and variables need none.
A unit is in the forward pass when the outputs need it, else in the backward pass.
The order is topological over units; among ready units the forward pass comes first, then
the one whose first node came earliest in the graph's own order — which follows the time
steps, so each step's temporaries die before the next step's are born.
`graph["schedule"]` is the list of `(unit, phase)`.
"""
from __future__ import annotations

import heapq

from codegen.graph import Graph, node, topo_order, with_graph_attrs
from codegen.passes.fuse import forward_nodes
from codegen.views import is_view


def schedule(g: Graph) -> Graph:
    unit_of = unit_map(g)
    order = topo_order(g)
    position = {n: i for i, n in enumerate(order)}
    forward = forward_nodes(g)
    users: dict[str, set] = {u: set() for u in unit_of.values()}  # the graph of units
    for a, readers in g.users.items():
        ua = _unit_through_views(g, a, unit_of) if readers else None
        if ua is None:
            continue
        for b in readers:
            ub = unit_of.get(b)
            if ub is not None and ub != ua:
                users[ua].add(ub)
    first = {}
    for n, u in unit_of.items():
        first[u] = min(first.get(u, len(position)), position[n])
    phase = dict.fromkeys(users, "forward")
    for n, u in unit_of.items():
        if n not in forward:
            phase[u] = "backward"
    units = _kahn(users, lambda u: (phase[u] == "backward", first[u], u), phase)
    return with_graph_attrs(g, order, schedule=units)


def unit_map(g) -> dict:
    """node -> unit name, for every node that runs in a step."""
    unit_of = {}
    for name, members in g.graph.get("groups", {}).items():
        for n in members:
            unit_of[n] = name
    for n in g:
        if n not in unit_of and node(g, n).op != "var" and not is_view(g, n):
            unit_of[n] = n
    return unit_of


def _unit_through_views(g, nid, unit_of):
    """The unit that produces `nid`, looking through views; None for variables."""
    while nid not in unit_of:
        n = node(g, nid)
        if n.op == "var" or not n.inputs:
            return None
        nid = n.inputs[0]
    return unit_of[nid]


def _kahn(users, priority, phase) -> list:
    """Units in topological order, the ready unit of least `priority` first (priorities are
    distinct, so the order does not depend on how `users` is ordered)."""
    indeg = dict.fromkeys(users, 0)
    for vs in users.values():
        for v in vs:
            indeg[v] += 1
    ready = [(priority(u), u) for u in users if indeg[u] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, u = heapq.heappop(ready)
        order.append((u, phase[u]))
        for v in users[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                heapq.heappush(ready, (priority(v), v))
    if len(order) != len(users):
        raise RuntimeError("internal: the fused program has a cycle")
    return order
