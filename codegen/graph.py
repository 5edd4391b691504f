"""The compiler graph: a small `Graph` of our own whose nodes carry one frozen `Node` record.

Every node has exactly one output. A node's inputs are listed, in order, in its record; the
graph keeps, besides the records, each node's users and sources (the data flow, input ->
consumer) in insertion order. `to_networkx` gives a `networkx.DiGraph` for drawing and
analysis; passes never need one. Graph-level attributes (`g.graph`, named as networkx names
them):

- `g.graph["outputs"]`: the node ids of the heads, in order;
- `g.graph["grads"]`: after autodiff, `{argument: node id of its gradient}`;
- `g.graph["head_grads"]`: after autodiff, `{head: node id of the variable holding its
  incoming gradient}`.

Node ids are strings derived from the user's names (`lstm_l0_t3_i2h`), so that errors and
debug output speak the user's language.

Passes change graphs only through this module's helpers (`add_node`, `set_node`,
`remove_node`, `replace_uses`). A copy shares its records and adjacency dicts with its
source, and the helpers copy a dict before changing it (copy on write), so that copying a
graph costs three dict copies rather than two per node. Orders follow what networkx's calls
would do (`to_networkx` keeps them): later topological orders depend on them.
"""
from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runtime.errors import ConfigError

Shape = tuple  # of int, or of int | None while shapes are being inferred


def freeze(value: Any) -> Any:
    """Lists -> tuples, recursively, so attributes hash."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


_DIGITS = re.compile(r"(\d+)")
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


class Graph:
    """Records, users and sources of each node, in insertion order, and the graph's attributes.

    Read it through `node`, `consumers`, `nodes`, `topo_order` (or `in`, `len`, iteration,
    `edges`); change it through the helpers below, which keep the three dicts in step.
    """

    __slots__ = ("_order", "_owned", "graph", "records", "sources", "users")

    def __init__(self):
        self.records: dict[str, Node] = {}
        self.users: dict[str, dict] = {}  # nid -> {consumer: None}, in insertion order
        self.sources: dict[str, dict] = {}  # nid -> {input: None}, in operand order
        self.graph: dict = {"outputs": ()}
        # ({nodes whose users dict this graph made or copied}, {... sources dict ...}) while it
        # shares adjacency dicts with a copy; None when it owns every dict
        self._owned: tuple[set, set] | None = None
        self._order: tuple | None = None  # a topological order a labelled copy keeps

    def __contains__(self, nid) -> bool:
        return nid in self.records

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """(input, consumer) pairs, one per distinct pair."""
        return [(a, b) for a, users in self.users.items() for b in users]

    def successors(self, nid: str):
        return iter(self.users[nid])

    def predecessors(self, nid: str):
        return iter(self.sources[nid])


def new_graph() -> Graph:
    return Graph()


def to_networkx(g: Graph):
    """The same nodes (attribute `node`), edges and orders as a `networkx.DiGraph`, for
    drawing and analysis (networkx, the `graph` extra, is imported here only: compiling
    never needs it)."""
    try:
        import networkx as nx
    except ImportError:
        raise ConfigError("to_networkx: needs networkx (pip install 'symrnn[graph]')") from None

    h = nx.DiGraph()
    h.graph.update(g.graph)
    h.add_nodes_from((nid, {"node": n}) for nid, n in g.records.items())
    h.add_edges_from(g.edges)
    return h


def node(g: Graph, nid: str) -> Node:
    return g.records[nid]


def consumers(g: Graph, nid: str) -> list[str]:
    """The users of `nid` in natural name order (`t2` before `t10`): what a pass makes of
    them comes in step order, whatever the number of steps."""
    return sorted(g.users[nid], key=natural_key)


def natural_key(name: str) -> tuple:
    """`name` with its numbers compared as numbers."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def roots(g: Graph) -> list[str]:
    """The nodes a program must produce: outputs, then gradients."""
    return list(g.graph.get("outputs", ())) + list(g.graph.get("grads", {}).values())


def nodes(g: Graph):
    """(id, Node) pairs in a deterministic topological order."""
    records = g.records
    for nid in topo_order(g):
        yield nid, records[nid]


def variables(g: Graph) -> list[str]:
    """Ids of the graph's free variables (arguments), in topological-then-name order."""
    return [nid for nid, n in nodes(g) if n.op == "var"]


# ---- changes: through these helpers only --------------------------------------------------------

def add_node(g: Graph, nid: str, node: Node) -> str:
    """Adds `node` under `nid`, with edges from its inputs; ids must be unique."""
    if nid in g.records:
        raise ValueError(f"internal: node id {nid!r} already in the graph")
    for src in node.inputs:
        if src not in g.records:
            raise ValueError(f"internal: {nid!r} reads {src!r}, which is not in the graph")
    sources = {}
    for src in node.inputs:
        sources[src] = _own(g, src, USERS).setdefault(nid)
    g.users[nid], g.sources[nid] = {}, sources
    _made(g, nid, USERS, SOURCES)
    g.records[nid] = node
    return nid


def set_node(g: Graph, nid: str, node: Node) -> None:
    """Replaces the record of `nid` and its in-edges, with the effect of removing every
    in-edge and adding one per input: `nid` moves to the end of each input's users."""
    for src in g.sources[nid]:
        del _own(g, src, USERS)[nid]
    sources = {}
    for src in node.inputs:
        sources[src] = _own(g, src, USERS).setdefault(nid)
    g.sources[nid] = sources
    _made(g, nid, SOURCES)
    g.records[nid] = node


def remove_node(g: Graph, nid: str) -> None:
    """Removes `nid` and its edges."""
    for src in g.sources.pop(nid):
        del _own(g, src, USERS)[nid]
    for user in g.users.pop(nid):
        del _own(g, user, SOURCES)[nid]
    del g.records[nid]
    _made(g, nid)


def replace_uses(g: Graph, old: str, new: str) -> None:
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

def copy_graph(g: Graph) -> Graph:
    """A copy that passes may change through the helpers above. It shares with `g` the
    records (frozen) and each node's adjacency dicts until a helper changes them, in either
    graph."""
    h = Graph()
    h.graph = dict(g.graph)
    h.records = g.records.copy()
    h.users = g.users.copy()
    h.sources = g.sources.copy()
    h._owned = (set(), set())
    g._owned = (set(), set())  # g's own changes must now copy first as well
    return h


def with_graph_attrs(g: Graph, order: list[str] | None = None, /, **attrs) -> Graph:
    """A copy of `g` with `attrs` added to its graph attributes: for passes that only label
    a graph. The copy keeps `order`, g's `topo_order` if the caller has it (else the order
    `g` keeps), so that later passes need not sort the same nodes again; changing the copy
    drops it."""
    h = copy_graph(g)
    h.graph.update(attrs)
    order = g._order if order is None else order
    if order is not None:
        h._order = tuple(order)
    return h


def copy_without(g: Graph, dead) -> Graph:
    """A copy of `g` without the nodes in `dead` and their edges."""
    h = copy_graph(g)
    for nid in dead:
        remove_node(h, nid)
    return h


USERS, SOURCES = 0, 1


def _own(g: Graph, nid: str, side: int) -> dict:
    """The users (USERS) or sources (SOURCES) dict of `nid`, ready to be changed: copied
    first if another graph may share it."""
    adj = g.sources if side else g.users
    owned = g._owned
    if owned is not None and nid not in owned[side]:
        adj[nid] = adj[nid].copy()
        owned[side].add(nid)
    return adj[nid]


def _made(g: Graph, nid: str, *sides: int) -> None:
    """Records a change around `nid`, whose dicts on `sides` `g` has just made itself; the
    order a labelled graph keeps no longer holds."""
    owned = g._owned
    if owned is not None:
        for side in sides:
            owned[side].add(nid)
    g._order = None


class CycleError(ValueError):
    """A graph whose edges run in a circle: no topological order (an internal error)."""


# ---- walks --------------------------------------------------------------------------------------

def topo_order(g: Graph) -> list[str]:
    """The node ids in `nx.topological_sort`'s order (Kahn's algorithm, first in first out,
    from the sources in insertion order)."""
    if g._order is not None:
        return list(g._order)
    users, sources = g.users, g.sources
    order = [nid for nid in g.records if not sources[nid]]
    waiting = {nid: len(p) for nid, p in sources.items() if p}
    for nid in order:  # grows while it is walked: a queue
        for user in users[nid]:
            left = waiting[user] - 1
            if left:
                waiting[user] = left
            else:
                del waiting[user]
                order.append(user)
    if waiting:
        raise CycleError("internal: the graph contains a cycle")
    return order


def upstream(g: Graph, nids) -> set:
    """`nids` and every node they depend on."""
    return _reach(g.sources, nids)


def downstream(g: Graph, nids) -> set:
    """`nids` and every node that depends on them."""
    return _reach(g.users, nids)


def _reach(adj, nids) -> set:
    seen = set(nids)
    stack = list(seen)
    while stack:
        for nxt in adj[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


@contextmanager
def gc_paused():
    """Turns the cyclic garbage collector off while graphs are built or compiled. Passes
    allocate hundreds of thousands of small records and dicts that stay alive, so the
    collector's passes over the growing heap would cost a tenth of the compile or more and
    find nothing: graphs hold no reference cycles, and reference counting frees what the
    passes drop."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---- comparing and printing ---------------------------------------------------------------------

def same_graph(a: Graph, b: Graph) -> bool:
    """Structural equality: same ids, same records, same outputs."""
    if set(a) != set(b) or a.graph.get("outputs") != b.graph.get("outputs"):
        return False
    return all(a.records[n] == b.records[n] for n in a)


def format_graph(g: Graph) -> str:
    """One line per node, in topological order: `id = op(inputs) attrs : shape dtype`."""
    lines = []
    for nid, n in nodes(g):
        attrs = " ".join(f"{k}={v}" for k, v in n.attrs)
        lines.append(f"{nid} = {n.op}({', '.join(n.inputs)}) {attrs} : {n.shape} {n.dtype}")
    lines.append(f"outputs: {', '.join(g.graph.get('outputs', ()))}")
    return "\n".join(lines)
