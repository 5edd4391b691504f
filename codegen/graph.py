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
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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

    def with_(self, **changes) -> Node:
        return replace(self, **changes)


def make_node(op: str, inputs=(), shape=None, dtype="float32", attrs=None) -> Node:
    return Node(op, tuple(inputs), freeze(attrs or {}), None if shape is None else tuple(shape), dtype)


def new_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    g.graph["outputs"] = ()
    return g


def add_node(g: nx.DiGraph, nid: str, node: Node) -> str:
    """Adds `node` under `nid`, with edges from its inputs; ids must be unique."""
    if nid in g:
        raise ValueError(f"internal: node id {nid!r} already in the graph")
    for src in node.inputs:
        if src not in g:
            raise ValueError(f"internal: {nid!r} reads {src!r}, which is not in the graph")
    g.add_node(nid, node=node)
    for src in node.inputs:
        g.add_edge(src, nid)
    return nid


def set_node(g: nx.DiGraph, nid: str, node: Node) -> None:
    """Replaces the record of `nid` (and its in-edges) in place; callers own `g`."""
    for src in list(g.predecessors(nid)):
        g.remove_edge(src, nid)
    g._node[nid] = {"node": node}  # a new dict: copies of the graph share the old one
    for src in node.inputs:
        g.add_edge(src, nid)


def node(g: nx.DiGraph, nid: str) -> Node:
    return g._node[nid]["node"]  # g.nodes[nid] builds a view per call: hot in every pass


def nodes(g: nx.DiGraph):
    """(id, Node) pairs in a deterministic topological order."""
    for nid in nx.topological_sort(g):
        yield nid, g.nodes[nid]["node"]


def variables(g: nx.DiGraph) -> list[str]:
    """Ids of the graph's free variables (arguments), in topological-then-name order."""
    return [nid for nid, n in nodes(g) if n.op == "var"]


def copy_graph(g: nx.DiGraph) -> nx.DiGraph:
    """A copy that passes may mutate. Records are frozen and edges carry no data, so the
    adjacency is copied one level deep: much faster than networkx's generic copy."""
    h = nx.DiGraph()
    h.graph = dict(g.graph)
    h._node.update(g._node)  # node dicts are replaced, never mutated (set_node)
    h._succ.update((n, dict(s)) for n, s in g._succ.items())
    h._pred.update((n, dict(p)) for n, p in g._pred.items())
    return h


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


def consumers(g: nx.DiGraph, nid: str) -> list[str]:
    return sorted(g.successors(nid))


def replace_uses(g: nx.DiGraph, old: str, new: str) -> None:
    """Points every consumer of `old` (and the graph's outputs and grads) at `new`."""
    for user in consumers(g, old):
        n = node(g, user)
        set_node(g, user, n.with_(inputs=tuple(new if i == old else i for i in n.inputs)))
    g.graph["outputs"] = tuple(new if o == old else o for o in g.graph.get("outputs", ()))
    if "grads" in g.graph:
        g.graph["grads"] = {a: (new if v == old else v) for a, v in g.graph["grads"].items()}
    if old in g.graph.get("head_grads", {}):
        g.graph["head_grads"] = {(new if h == old else h): v
                                 for h, v in g.graph["head_grads"].items()}


def roots(g: nx.DiGraph) -> list[str]:
    """The nodes a program must produce: outputs, then gradients."""
    return list(g.graph.get("outputs", ())) + list(g.graph.get("grads", {}).values())
