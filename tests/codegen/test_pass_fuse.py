"""fuse_elementwise: labels maximal groups of elementwise ops between GEMMs in
`graph["groups"]` ({"fused(last id)": member ids in topological order}); no rewrite."""
import copy

import networkx as nx

import symrnn as sym
from codegen import Builder, autodiff
from codegen.graph import format_graph, node, same_graph
from codegen.passes.dce import eliminate_dead_code
from codegen.passes.fuse import forward_nodes, fuse_elementwise
from codegen.pipeline import passes
from symrnn.lower import lower_and_infer


def fused(g, fuse=True):
    """Runs the pass, checks it left its input alone and rewrote nothing, returns groups."""
    text, attrs, edges = format_graph(g), copy.deepcopy(dict(g.graph)), set(g.edges)
    out = fuse_elementwise(g, fuse)
    assert format_graph(g) == text and dict(g.graph) == attrs and set(g.edges) == edges
    assert same_graph(out, g) and set(out.edges) == edges
    return out.graph["groups"]


def two_chains():
    """x -> tanh -> neg -> dot(., W) -> sigmoid -> mul_scalar"""
    b = Builder()
    x, W = b.var("x", (4, 4)), b.var("W", (4, 4))
    a = b.add("neg", [b.add("tanh", [x], "a1")], "a2")
    d = b.add("dot", [a, W], "d")
    e = b.add("mul_scalar", [b.add("sigmoid", [d], "e1")], "e2", scalar=2.0)
    b.set_outputs([e])
    return b.g


def test_a_chain_of_elementwise_ops_is_one_group():
    b = Builder()
    x = b.var("x", (2, 3))
    y = b.add("mul", [b.add("sigmoid", [b.add("tanh", [x], "a")], "b"), x], "c")
    b.set_outputs([y])
    assert fused(b.g) == {"fused(c)": ("a", "b", "c")}


def test_a_gemm_between_two_chains_gives_two_groups():
    assert fused(two_chains()) == {"fused(a2)": ("a1", "a2"), "fused(e2)": ("e1", "e2")}


def test_fuse_false_gives_every_elementwise_node_its_own_group():
    assert fused(two_chains(), fuse=False) == {
        "fused(a1)": ("a1",), "fused(a2)": ("a2",), "fused(e1)": ("e1",), "fused(e2)": ("e2",)}


def test_an_early_elementwise_op_joins_its_user_after_a_gemm():
    """`a` could run before the product; it moves up to `e`, its only user (a bias add)."""
    b = Builder()
    x, h, W = b.var("x", (4, 4)), b.var("h", (4, 4)), b.var("W", (4, 4))
    a = b.add("tanh", [x], "a")
    b.set_outputs([b.add("add", [b.add("dot", [h, W], "d"), a], "e")])
    assert fused(b.g) == {"fused(e)": ("a", "e")}


def test_a_chain_moves_up_to_its_user_after_a_gemm_as_a_whole():
    b = Builder()
    x, h, W = b.var("x", (4, 4)), b.var("h", (4, 4)), b.var("W", (4, 4))
    a = b.add("neg", [b.add("tanh", [x], "a1")], "a2")
    b.set_outputs([b.add("add", [b.add("dot", [h, W], "d"), a], "e")])
    assert fused(b.g) == {"fused(e)": ("a1", "a2", "e")}


def test_a_node_stays_with_a_producer_that_cannot_move():
    """`k` reads `a`, which an output holds at its level; moving `k` up to its users would
    store `a` and `k` both (a state kept past its length, zoneout's mix): it stays."""
    b = Builder()
    x, h, W = b.var("x", (4, 4)), b.var("h", (4, 4)), b.var("W", (4, 4))
    a = b.add("tanh", [x], "a")
    k = b.add("neg", [a], "k")
    e1 = b.add("add", [b.add("dot", [h, W], "d1"), k], "e1")
    e2 = b.add("add", [b.add("dot", [e1, W], "d2"), k], "e2")
    b.set_outputs([b.add("sigmoid", [a], "s"), e2])
    assert fused(b.g) == {"fused(k)": ("a", "s", "k"), "fused(e1)": ("e1",),
                          "fused(e2)": ("e2",)}


def test_views_are_barriers():
    b = Builder()
    x = b.var("x", (4, 6))
    s = b.add("tanh", [x], "s")
    v = b.add("split", [s], "v", axis=1, num_outputs=2, index=0)
    b.set_outputs([b.add("exp", [v], "e")])
    assert fused(b.g) == {"fused(s)": ("s",), "fused(e)": ("e",)}


def test_forward_and_gradient_nodes_never_share_a_group():
    b = Builder()
    x = b.var("x", (2, 3))
    b.set_outputs([b.add("sum", [b.add("tanh", [x], "y")], "s")])
    g = eliminate_dead_code(autodiff(b.g, ["x"]))
    assert fused(g) == {"fused(y)": ("y",),
                        "fused(d(y).0)": ("d(y).y2", "d(y).1-y2", "d(y).0")}


def test_member_order_does_not_depend_on_names():
    """emit builds a kernel's IR in member order and deduplicates kernels by IR: an order
    taken from node names (t10 sorts before t2) would compile the same step kernel twice."""
    def roles(names):
        b = Builder()
        x, W = b.var("x", (4, 4)), b.var("W", (4, 4))
        u = b.add("tanh", [x], names[0])
        v = b.add("sigmoid", [b.add("dot", [x, W], "d")], names[1])
        b.set_outputs([b.add("add", [u, v], names[2])])
        (members,) = fused(b.g).values()
        return [node(b.g, m).op for m in members]

    assert roles(("p", "q", "r")) == roles(("z", "q", "r"))


def test_member_order_does_not_depend_on_where_inputs_come_from():
    def roles(deep_first):
        b = Builder()
        x, W = b.var("x", (4, 4)), b.var("W", (4, 4))
        deep = b.add("dot", [b.add("dot", [x, W], "d1"), W], "d2")
        p, q = (deep, x) if deep_first else (x, deep)
        u, v = b.add("tanh", [p], "u"), b.add("sigmoid", [q], "v")
        b.set_outputs([b.add("add", [u, v], "r")])
        (members,) = [ms for ms in fused(b.g).values() if "r" in ms]
        return [node(b.g, m).op for m in members]

    assert roles(deep_first=True) == roles(deep_first=False)


def test_siblings_reading_one_value_share_a_kernel():
    b = Builder()
    g, o, tc = b.var("g", (4, 4)), b.var("o", (4, 4)), b.var("tc", (4, 4))
    p, q = b.add("mul", [g, tc], "p"), b.add("mul", [g, o], "q")
    b.set_outputs([b.add("concat", [p, q], "cat", axis=1)])
    assert len(fused(b.g)) == 1


# ---- a 2-layer LSTM training graph ---------------------------------------------------------

def lstm_training_graph(T, N=4):
    rnn = sym.RNNFactory(num_hidden=[8, 6], data_dim=5)
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    loss = sym.sum(out * out, name="loss")
    g, _ = lower_and_infer(loss, {"data": (T, N, 5)})
    wrt = [a for a in loss.list_arguments() if a != "data"]
    for name, run in passes(wrt, optimize=True):
        g = run(g)
        if name == "fuse":
            return g
    raise AssertionError("the pipeline has no fuse pass")


def condensed(g):
    """One node per group; every other node stands for itself."""
    unit = {m: k for k, ms in g.graph["groups"].items() for m in ms}
    q = nx.DiGraph()
    q.add_nodes_from(unit.get(n, n) for n in g)
    q.add_edges_from((unit.get(a, a), unit.get(b, b)) for a, b in g.edges
                     if unit.get(a, a) != unit.get(b, b))
    return q


def test_lstm_training_groups_are_acyclic_single_phase_and_one_per_step():
    T = 4
    g = lstm_training_graph(T)
    groups = g.graph["groups"]
    assert nx.is_directed_acyclic_graph(condensed(g))

    fwd = forward_nodes(g)
    phases = {k: {m in fwd for m in ms} for k, ms in groups.items()}
    assert all(len(p) == 1 for p in phases.values()), "a group mixes forward and gradient"
    for k, ms in groups.items():  # one index space per kernel
        assert len({node(g, m).shape for m in ms}) == 1, k

    forward = sorted(k for k, p in phases.items() if p == {True})
    steps = [f"fused(lstm_l{layer}_t{t}_h)" for layer in range(2) for t in range(T)]
    # one kernel per layer per step, plus the loss's own `out * out` over the sequence
    assert len(forward) == 2 * T + 1 and set(steps) <= set(forward)
    for layer in range(2):
        for t in range(T):
            members = groups[f"fused(lstm_l{layer}_t{t}_h)"]
            for role in ("i", "f", "g", "o", "c", "tanh_c"):
                assert f"lstm_l{layer}_t{t}_{role}" in members
