"""eliminate_common_subexpressions: nodes with equal records become one; the first in
topological order survives and every use (outputs, grads, head_grads too) is re-pointed."""


from codegen import Builder, autodiff
from codegen.graph import add_node, make_node, new_graph
from codegen.passes.cse import eliminate_common_subexpressions as cse
from codegen.testing import assert_pure, assert_same, record


def test_duplicates_merge_transitively():
    b = Builder()
    x = b.var("x", (2, 3))
    a1, a2 = b.add("tanh", [x], "a1"), b.add("tanh", [x], "a2")
    e1, e2 = b.add("exp", [a1], "e1"), b.add("exp", [a2], "e2")  # equal once a2 -> a1
    b.set_outputs([b.add("add", [e1, e2], "c")])
    after = assert_pure(cse, b.g)

    expected = new_graph()
    add_node(expected, "x", make_node("var", (), (2, 3)))
    add_node(expected, "a1", make_node("tanh", ("x",), (2, 3)))
    add_node(expected, "e1", make_node("exp", ("a1",), (2, 3)))
    add_node(expected, "c", make_node("add", ("e1", "e1"), (2, 3)))
    expected.graph["outputs"] = ("c",)
    assert_same(after, expected)


def test_variables_and_different_attributes_are_never_merged():
    b = Builder()
    x, y = b.var("x", (2, 3)), b.var("y", (2, 3))  # equal records, distinct arguments
    d1 = b.add("dropout", [x], "d1", p=0.5, mask_id=1)
    d2 = b.add("dropout", [x], "d2", p=0.5, mask_id=2)  # another mask: another value
    b.set_outputs([b.add("add", [d1, d2], "s"), b.add("tanh", [y], "t")])
    after = cse(b.g)
    assert_same(after, b.g)


def test_outputs_grads_and_head_grads_are_re_pointed():
    g = new_graph()
    add_node(g, "x", make_node("var", (), (2, 3)))
    add_node(g, "hg0", make_node("var", (), (), attrs={"kind": "head_grad"}))
    add_node(g, "hg1", make_node("var", (), (2, 3), attrs={"kind": "head_grad"}))
    add_node(g, "a_inner", make_node("tanh", ("x",), (2, 3)))
    add_node(g, "b_head", make_node("tanh", ("x",), (2, 3)))  # a head: kept
    add_node(g, "loss", make_node("sum", ("a_inner",), ()))
    add_node(g, "g_a", make_node("neg", ("hg1",), (2, 3)))
    add_node(g, "g_b", make_node("neg", ("hg1",), (2, 3)))  # merged into g_a
    g.graph.update(outputs=("loss", "b_head"), grads={"x": "g_b", "y": "g_a"},
                   head_grads={"loss": "hg0", "b_head": "hg1"})
    after = assert_pure(cse, g)

    # Heads are never merged away (each keeps its own incoming gradient); others are.
    assert "b_head" in after and "g_b" not in after
    assert after.graph["outputs"] == ("loss", "b_head")
    assert after.graph["grads"] == {"x": "g_a", "y": "g_a"}
    assert after.graph["head_grads"] == {"loss": "hg0", "b_head": "hg1"}


def test_equal_heads_keep_every_head_gradient():
    b = Builder()
    x = b.var("x", (2, 3))
    s1 = b.add("sum", [b.add("tanh", [x], "a1")], "s1")
    s2 = b.add("sum", [b.add("tanh", [x], "a2")], "s2")
    b.set_outputs([s1, s2])
    g = autodiff(b.g, ["x"])
    after = cse(g)
    read = {v for v in after if record(after, v).attr("kind") == "head_grad"
            and any(True for _ in after.successors(v))}
    assert read == {"head_grad(s1)", "head_grad(s2)"}
    assert set(after.graph["head_grads"].values()) == read
    assert len(after.graph["outputs"]) == 2
