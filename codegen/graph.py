"""The compiler graph: a `networkx.DiGraph` whose nodes carry one frozen `Node` record.

Every node has exactly one output. A node's inputs are listed, in order, in its record; the
graph's edges mirror them (input -> consumer) so that networkx's algorithms see the data flow.
Graph-level attributes:

- `g.graph["outputs"]`: the node ids of the heads, in order;
- `g.graph["grads"]`: after autodiff, `{argument: node id of its gradient}`;
- `g.graph["head_grads"]`: after autodiff, `{head: node id of the variable holding its
  incoming gradient}`.

Node ids are strings derived from the user's names (`lstm_l0_t3_i2h`), so that errors and
debug output speak the user's language.

Passes change graphs only through this module's helpers (`add_node`, `set_node`,
`remove_node`, `replace_uses`), never networkx's own methods: a copy shares its records and
adjacency dicts with its source, and the helpers copy a dict before changing it (copy on
write), so that copying a graph costs three dict copies rather than two per node. They work
on networkx's dicts directly, with the effect, orders included, of the networkx calls they
stand for: later topological orders depend on those orders.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

Shape = tuple  # of int, or of int | None while shapes are being inferred


def freeze(value: Any) -> Any:
    """Lists -> tuples, recursively, so attributes hash."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


_SAME: Any = object()  # Node.with_: this field keeps its value


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[str, ...] = ()
    attrs: tuple[tuple[str, Any], ...] = ()
    shape: Shape | None = None
    dtype: str = "float32"

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def attr_dict(self) -> dict:
        return dict(self.attrs)

    def with_(self, *, op=_SAME, inputs=_SAME, attrs=_SAME, shape=_SAME, dtype=_SAME) -> Node:
        """A copy with some fields changed (dataclasses.replace, without its overhead)."""
        return Node(self.op if op is _SAME else op,
                    self.inputs if inputs is _SAME else inputs,
                    self.attrs if attrs is _SAME else attrs,
                    self.shape if shape is _SAME else shape,
                    self.dtype if dtype is _SAME else dtype)


def make_node(op: str, inputs=(), shape=None, dtype="float32", attrs=None) -> Node:
    return Node(op, tuple(inputs), freeze(attrs or {}), None if shape is None else tuple(shape),
                dtype)


def new_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    g.graph["outputs"] = ()
    return g


def node(g: nx.DiGraph, nid: str) -> Node:
    return g._node[nid]["node"]  # g.nodes[nid] builds a view per call: hot in every pass


def consumers(g: nx.DiGraph, nid: str) -> list[str]:
    return sorted(g._succ[nid])


def roots(g: nx.DiGraph) -> list[str]:
    """The nodes a program must produce: outputs, then gradients."""
    return list(g.graph.get("outputs", ())) + list(g.graph.get("grads", {}).values())


def nodes(g: nx.DiGraph):
    """(id, Node) pairs in a deterministic topological order."""
    records = g._node
    for nid in topo_order(g):
        yield nid, records[nid]["node"]


def variables(g: nx.DiGraph) -> list[str]:
    """Ids of the graph's free variables (arguments), in topological-then-name order."""
    return [nid for nid, n in nodes(g) if n.op == "var"]


# ---- changes: through these helpers only --------------------------------------------------------

def add_node(g: nx.DiGraph, nid: str, node: Node) -> str:
    """Adds `node` under `nid`, with edges from its inputs; ids must be unique."""
    if nid in g._node:
        raise ValueError(f"internal: node id {nid!r} already in the graph")
    for src in node.inputs:
        if src not in g._node:
            raise ValueError(f"internal: {nid!r} reads {src!r}, which is not in the graph")
    pred = {}  # as g.add_node, then g.add_edge(src, nid) for each input
    for src in node.inputs:
        pred[src] = _own(g, src, SUCC).setdefault(nid, {})
    g._succ[nid], g._pred[nid] = {}, pred
    _made(g, nid, SUCC, PRED)
    g._node[nid] = {"node": node}
    return nid


def set_node(g: nx.DiGraph, nid: str, node: Node) -> None:
    """Replaces the record of `nid` and its in-edges, with the effect of removing every
    in-edge and adding one per input: `nid` moves to the end of each input's successors."""
    for src in g._pred[nid]:
        del _own(g, src, SUCC)[nid]
    pred = {}
    for src in node.inputs:
        pred[src] = _own(g, src, SUCC).setdefault(nid, {})
    g._pred[nid] = pred
    _made(g, nid, PRED)
    g._node[nid] = {"node": node}  # a new dict: copies of the graph share the old one


def remove_node(g: nx.DiGraph, nid: str) -> None:
    """Removes `nid` and its edges (g.remove_node)."""
    for src in g._pred.pop(nid):
        del _own(g, src, SUCC)[nid]
    for user in g._succ.pop(nid):
        del _own(g, user, PRED)[nid]
    del g._node[nid]
    _made(g, nid)


def replace_uses(g: nx.DiGraph, old: str, new: str) -> None:
    """Points every consumer of `old` (and the graph's outputs and grads) at `new`."""
    for user in consumers(g, old):
        n = node(g, user)
        set_node(g, user, n.with_(inputs=tuple(new if i == old else i for i in n.inputs)))
    outputs = g.graph.get("outputs")
    if outputs is None or old in outputs:
        g.graph["outputs"] = tuple(new if o == old else o for o in outputs or ())
    if old in g.graph.get("grads", {}).values():
        g.graph["grads"] = {a: (new if v == old else v) for a, v in g.graph["grads"].items()}
    if old in g.graph.get("head_grads", {}):
        g.graph["head_grads"] = {(new if h == old else h): v
                                 for h, v in g.graph["head_grads"].items()}


# ---- copies: shared until changed ---------------------------------------------------------------

def copy_graph(g: nx.DiGraph) -> nx.DiGraph:
    """A copy that passes may change through the helpers above. It shares with `g` the
    record dicts (which set_node replaces, never changes) and each node's adjacency dicts
    until a helper changes them, in either graph."""
    h = nx.DiGraph()
    h.graph = dict(g.graph)
    # A fresh graph has made no views of its dicts yet, so they can be replaced.
    h._node = g._node.copy()
    h._succ = g._succ.copy()  # networkx points _adj at it too
    h._pred = g._pred.copy()
    h.__dict__[_OWNED] = (set(), set())
    g.__dict__[_OWNED] = (set(), set())  # g's own changes must now copy first as well
    return h


def with_graph_attrs(g: nx.DiGraph, order: list[str] | None = None, /, **attrs) -> nx.DiGraph:
    """A copy of `g` with `attrs` added to its graph attributes: for passes that only label
    a graph. The copy keeps `order`, g's `topo_order` if the caller has it (else the order
    `g` keeps), so that later passes need not sort the same nodes again; changing the copy
    drops it."""
    h = copy_graph(g)
    h.graph.update(attrs)
    order = g.__dict__.get(_ORDER) if order is None else order
    if order is not None:
        h.__dict__[_ORDER] = tuple(order)
    return h


def copy_without(g: nx.DiGraph, dead) -> nx.DiGraph:
    """A copy of `g` without the nodes in `dead` and their edges."""
    h = copy_graph(g)
    for nid in dead:
        remove_node(h, nid)
    return h


SUCC, PRED = 0, 1
_OWNED = "_symrnn_owned"  # on a graph that shares adjacency dicts: ({nodes whose successors
# dict it made or copied}, {... predecessors dict ...}); graphs without it own every dict


def _own(g: nx.DiGraph, nid: str, side: int) -> dict:
    """The successors (SUCC) or predecessors (PRED) dict of `nid`, ready to be changed:
    copied first if another graph may share it."""
    adj = g._pred if side else g._succ
    owned = g.__dict__.get(_OWNED)
    if owned is not None and nid not in owned[side]:
        adj[nid] = adj[nid].copy()
        owned[side].add(nid)
    return adj[nid]


def _made(g: nx.DiGraph, nid: str, *sides: int) -> None:
    """Records a change around `nid`, whose dicts on `sides` `g` has just made itself; the
    order a labelled graph keeps no longer holds."""
    owned = g.__dict__.get(_OWNED)
    if owned is not None:
        for side in sides:
            owned[side].add(nid)
    g.__dict__.pop(_ORDER, None)


_ORDER = "_symrnn_topo_order"  # where a labelled graph keeps its topological order


# ---- walks --------------------------------------------------------------------------------------

def topo_order(g: nx.DiGraph) -> list[str]:
    """The node ids in `nx.topological_sort`'s order (Kahn's algorithm, first in first out,
    from the sources in insertion order), without its generator overhead."""
    known = g.__dict__.get(_ORDER)
    if known is not None:
        return list(known)
    succ, pred = g._succ, g._pred
    order = [nid for nid in g._node if not pred[nid]]
    waiting = {nid: len(p) for nid, p in pred.items() if p}
    for nid in order:  # grows while it is walked: a queue
        for user in succ[nid]:
            left = waiting[user] - 1
            if left:
                waiting[user] = left
            else:
                del waiting[user]
                order.append(user)
    if waiting:
        raise nx.NetworkXUnfeasible("Graph contains a cycle")
    return order


def upstream(g: nx.DiGraph, nids) -> set:
    """`nids` and every node they depend on."""
    return _reach(g._pred, nids)


def downstream(g: nx.DiGraph, nids) -> set:
    """`nids` and every node that depends on them."""
    return _reach(g._succ, nids)


def _reach(adj, nids) -> set:
    seen = set(nids)
    stack = list(seen)
    while stack:
        for nxt in adj[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


# ---- comparing and printing ---------------------------------------------------------------------

def same_graph(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """Structural equality: same ids, same records, same outputs."""
    if set(a) != set(b) or a.graph.get("outputs") != b.graph.get("outputs"):
        return False
    return all(a.nodes[n]["node"] == b.nodes[n]["node"] for n in a)


def format_graph(g: nx.DiGraph) -> str:
    """One line per node, in topological order: `id = op(inputs) attrs : shape dtype`."""
    lines = []
    for nid, n in nodes(g):
        attrs = " ".join(f"{k}={v}" for k, v in n.attrs)
        lines.append(f"{nid} = {n.op}({', '.join(n.inputs)}) {attrs} : {n.shape} {n.dtype}")
    lines.append(f"outputs: {', '.join(g.graph.get('outputs', ()))}")
    return "\n".join(lines)
