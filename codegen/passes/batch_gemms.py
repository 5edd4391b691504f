"""batch_gemms: products that could run together become one product over stacked operands.

Found from the graph's structure alone:

- independent products sharing a right operand: `dot(a_t, W)` for several t, none depending
  on another, become `take(dot(stack(a_t), W), t)` — the input projections of every time
  step, and in the backward pass the data gradient of a layer;
- sums of products: `dot(a_1, b_1, transpose_a) + dot(a_2, b_2, transpose_a) + ...` become
  `dot(stack(a), stack(b), transpose_a)` — a weight gradient accumulated over time — and sums
  of `sum(g_t, axis)` become one `sum` over the stack — a bias gradient.

A stack of every step of one tensor, in order, is that tensor: no copy.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

from codegen.graph import (
    Graph,
    add_node,
    copy_graph,
    make_node,
    node,
    roots,
    set_node,
    topo_order,
)


def batch_gemms(g: Graph) -> Graph:
    g = copy_graph(g)
    for group in _shared_operand_groups(g, topo_order(g)):
        # Batching adds dependencies (every step on every input), so a later group is
        # checked against the graph as it is after the earlier ones.
        if len(group) > 1 and _independent(g, group):
            _batch_products(g, sorted(group, key=lambda m: step_key(g, m, 0)))
    protected = set(roots(g))
    for root in _sum_roots(g, protected):
        _batch_sum(g, root, protected)
    return g


def step_key(g, nid: str, operand: int) -> tuple:
    """Orders the members of a batch by time: the step a `take` operand reads, else the
    node's name in natural order (names carry the step: `..._t12_...` after `..._t3_...`),
    so that stacks come out in step order and are the tensors they stack."""
    src = node(g, node(g, nid).inputs[operand])
    step = src.attr("index") if src.op == "take" else -1
    return (step, [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", nid)])


# ---- independent products sharing the right operand -------------------------------------------

def _shared_operand_groups(g, order) -> list[list[str]]:
    """Products grouped by right operand, attributes and left shape, in topological order."""
    groups = defaultdict(list)
    for nid in order:
        n = node(g, nid)
        if n.op == "dot" and not n.attr("transpose_a", False):
            a = node(g, n.inputs[0])
            groups[(n.inputs[1], n.attrs, a.shape)].append(nid)
    return list(groups.values())


def _independent(g, group) -> bool:
    """No member reaches another: a walk up from the members' inputs meets none of them."""
    members, pred = set(group), g.sources
    seen = {src for m in group for src in pred[m]}
    stack = list(seen)
    while stack:
        nid = stack.pop()
        if nid in members:
            return False
        for src in pred[nid]:
            if src not in seen:
                seen.add(src)
                stack.append(src)
    return True


def _batch_products(g, group) -> None:
    first = node(g, group[0])
    rhs = first.inputs[1]
    stacked = stack_of(g, [node(g, m).inputs[0] for m in group], f"batch({group[0]}).lhs")
    lhs_shape = node(g, stacked).shape
    out_shape = lhs_shape[:-1] + first.shape[-1:]
    batched = f"batch({group[0]})"
    add_node(g, batched, first.with_(inputs=(stacked, rhs), shape=out_shape))
    for t, m in enumerate(group):
        set_node(g, m, make_node("take", (batched,), node(g, m).shape, first.dtype,
                                 {"index": t}))


def stack_of(g, items: list[str], name: str) -> str:
    """`stack(items)`, or the tensor they are the steps of when they are all its steps."""
    src = {node(g, i).inputs[0] for i in items if node(g, i).op == "take"}
    if len(src) == 1 and all(node(g, i).op == "take" for i in items):
        (x,) = src
        if [node(g, i).attr("index") for i in items] == list(range(node(g, x).shape[0])):
            return x
    first = node(g, items[0])
    return add_node(g, name, make_node("stack", items, (len(items),) + first.shape,
                                       first.dtype))


# ---- sums of products and of reductions ---------------------------------------------------------

def _sum_roots(g, out) -> list[str]:
    """Add nodes whose value leaves the add tree: each is the root of one tree."""
    found, succ = [], g.users
    for nid in topo_order(g):
        if node(g, nid).op != "add":
            continue
        users = succ[nid]
        if nid in out or len(users) != 1 or node(g, next(iter(users))).op != "add":
            found.append(nid)
    return found


def _leaves(g, root, protected) -> tuple[list[str], list[str]]:
    """The leaves of the add tree at `root`, and its interior adds."""
    leaves, inner, stack, succ = [], [], [root], g.users
    while stack:
        nid = stack.pop()
        n = node(g, nid)
        inner.append(nid)
        for src in reversed(n.inputs):
            s = node(g, src)
            if s.op == "add" and src != root and len(succ[src]) == 1 and src not in protected:
                stack.append(src)
            else:
                leaves.append(src)
    return leaves, inner


def _batch_sum(g, root, protected) -> None:
    leaves, _ = _leaves(g, root, protected)
    times = Counter(leaves)
    single = [x for x in leaves if len(g.users[x]) == 1 and times[x] == 1]
    kinds = defaultdict(list)
    for x in single:
        n = node(g, x)
        if n.op == "dot" and n.attr("transpose_a", False) and not n.attr("transpose_b", False):
            shapes = tuple(node(g, i).shape for i in n.inputs)
            kinds[("dot", shapes)].append(x)
        elif n.op == "sum" and not n.attr("keepdims", False):
            kinds[("sum", n.attr("axis"), node(g, n.inputs[0]).shape)].append(x)
    merged = {}
    for xs in kinds.values():
        if len(xs) > 1:
            merged[xs[0]] = xs
    if not merged:
        return
    terms, gone = [], {x for xs in merged.values() for x in xs}
    for x in leaves:
        if x in merged:
            terms.append(_merge(g, root, merged[x]))
        elif x not in gone:
            terms.append(x)
    _rebuild_sum(g, root, terms)


def _merge(g, root, xs) -> str:
    xs = sorted(xs, key=lambda x: step_key(g, x, 1 if node(g, x).op == "dot" else 0))
    n = node(g, xs[0])
    name = f"batch({root}).{xs[0]}"
    if n.op == "dot":
        a = stack_of(g, [node(g, x).inputs[0] for x in xs], name + ".a")
        b = stack_of(g, [node(g, x).inputs[1] for x in xs], name + ".b")
        return add_node(g, name, n.with_(inputs=(a, b)))
    rank = len(node(g, n.inputs[0]).shape)
    axes = n.attr("axis")
    axes = tuple(range(rank)) if axes is None else (axes,) if isinstance(axes, int) else axes
    axes = (0,) + tuple(1 + (a % rank) for a in axes)
    stacked = stack_of(g, [node(g, x).inputs[0] for x in xs], name + ".in")
    return add_node(g, name, n.with_(inputs=(stacked,), attrs=(("axis", axes),
                                                               ("keepdims", False))))


def _rebuild_sum(g, root, terms) -> None:
    """The root becomes `terms[0] + terms[1] + ...` (or a pass-through of one term)."""
    r = node(g, root)
    total = terms[0]
    for i, t in enumerate(terms[1:-1]):
        total = add_node(g, f"{root}.part{i}", r.with_(inputs=(total, t)))
    if len(terms) == 1:
        set_node(g, root, make_node("reshape", (total,), r.shape, r.dtype, {"shape": r.shape}))
    else:
        set_node(g, root, r.with_(inputs=(total, terms[-1])))
