"""eliminate_dead_code: keeps what outputs and gradients need, and every variable."""

import networkx as nx

from codegen import Builder, autodiff
from codegen.graph import add_node, make_node, new_graph, to_networkx
from codegen.passes.dce import eliminate_dead_code
from codegen.testing import assert_pure, assert_same, record


def test_unused_nodes_go_and_unused_variables_stay():
    b = Builder()
    x, unused = b.var("x", (2, 3)), b.var("unused", (4,))
    y = b.add("tanh", [x], "y")
    dead = b.add("exp", [y], "dead")
    b.add("neg", [dead], "dead2")  # a dead chain, two deep
    b.add("sigmoid", [unused], "dead3")
    b.set_outputs([b.add("sum", [y], "s")])
    after = assert_pure(eliminate_dead_code, b.g)

    expected = new_graph()
    add_node(expected, "unused", make_node("var", (), (4,)))
    add_node(expected, "x", make_node("var", (), (2, 3)))
    add_node(expected, "y", make_node("tanh", ("x",), (2, 3)))
    add_node(expected, "s", make_node("sum", ("y",), ()))
    expected.graph["outputs"] = ("s",)
    assert_same(after, expected)


def test_gradients_and_head_gradients_are_kept():
    b = Builder()
    x, w = b.var("x", (2, 3)), b.var("w", (2, 3))
    m = b.add("mul", [x, w], "m")
    b.set_outputs([b.add("sum", [b.add("tanh", [m], "y")], "s")])
    g = autodiff(b.g, ["x"])
    assert "d(m).1" in g  # w's gradient: built by the vjp, needed by nothing
    after = assert_pure(eliminate_dead_code, g)

    assert "d(m).1" not in after
    assert after.graph["grads"] == {"x": "d(m).0"}
    assert after.graph["head_grads"] == {"s": "head_grad(s)"}
    for keep in ("d(m).0", "head_grad(s)", "w", "x", "s"):
        assert keep in after
    # exactly the ancestors of the roots, plus the variables
    live = {"s", "d(m).0"}
    live = live.union(*(nx.ancestors(to_networkx(g), r) for r in live))
    live |= {n for n in g if record(g, n).op == "var"}
    assert set(after) == live


def test_a_gradient_that_is_not_an_output_ancestor_is_kept():
    """A zeros gradient (argument not reaching the heads) is a root of its own."""
    b = Builder()
    x = b.var("x", (2, 3))
    b.var("w", (5,))
    b.set_outputs([b.add("sum", [x], "s")])
    g = autodiff(b.g, ["x", "w"])
    after = eliminate_dead_code(g)
    assert after.graph["grads"]["w"] == "grad(w)"
    assert record(after, "grad(w)").op == "zeros"


def test_a_live_graph_is_unchanged():
    b = Builder()
    x = b.var("x", (2, 3))
    b.set_outputs([b.add("tanh", [x], "y"), b.add("exp", [x], "z")])
    after = eliminate_dead_code(b.g)
    assert_same(after, b.g)
    assert after.graph["outputs"] == ("y", "z")
