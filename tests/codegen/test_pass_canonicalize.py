"""canonicalize: FullyConnected -> dot(x, W, transpose_b) plus a broadcast bias add.

Before/Expected graphs in the TVM style: the Before graph is built with the Builder, the
Expected graph by hand, and the two are compared node by node.
"""
import copy

from codegen import Builder
from codegen.graph import add_node, format_graph, make_node, new_graph
from codegen.passes.canonicalize import canonicalize
from codegen.testing import assert_same, record


def assert_pure(run, g):
    """The pass returns a new graph and leaves its input exactly as it was."""
    text, attrs = format_graph(g), copy.deepcopy(dict(g.graph))
    edges = set(g.edges)
    out = run(g)
    assert out is not g
    assert format_graph(g) == text and dict(g.graph) == attrs and set(g.edges) == edges
    return out


def fc_graph(bias: bool, x_shape=(4, 5)):
    b = Builder()
    x, w = b.var("x", x_shape), b.var("w", (3, 5))
    ins = [x, w] + ([b.var("bias", (3,))] if bias else [])
    b.set_outputs([b.add("tanh", [b.add("FullyConnected", ins, "fc", num_hidden=3)], "y")])
    return b.g


def vars_of(g):
    e = new_graph()
    for nid in ("x", "w", "bias"):
        if nid in g:
            add_node(e, nid, record(g, nid))
    return e


def test_fc_with_bias_becomes_gemm_plus_broadcast_bias():
    before = fc_graph(bias=True)
    after = assert_pure(canonicalize, before)

    expected = vars_of(before)
    add_node(expected, "fc.gemm", make_node("dot", ("x", "w"), (4, 3), attrs={"transpose_b": True}))
    add_node(expected, "fc.bias", make_node("broadcast_to", ("bias",), (4, 3),
                                            attrs={"shape": (4, 3)}))
    add_node(expected, "fc", make_node("add", ("fc.gemm", "fc.bias"), (4, 3)))
    add_node(expected, "y", make_node("tanh", ("fc",), (4, 3)))
    expected.graph["outputs"] = ("y",)
    assert_same(after, expected)


def test_fc_without_bias_becomes_the_gemm_itself_under_its_own_name():
    before = fc_graph(bias=False)
    after = assert_pure(canonicalize, before)

    expected = vars_of(before)
    add_node(expected, "fc", make_node("dot", ("x", "w"), (4, 3), attrs={"transpose_b": True}))
    add_node(expected, "y", make_node("tanh", ("fc",), (4, 3)))
    expected.graph["outputs"] = ("y",)
    assert_same(after, expected)
    assert "fc.gemm" not in after and "fc.bias" not in after


def test_fc_over_a_sequence_broadcasts_the_bias_over_every_leading_axis():
    after = canonicalize(fc_graph(bias=True, x_shape=(6, 4, 5)))
    assert record(after, "fc.gemm") == make_node("dot", ("x", "w"), (6, 4, 3),
                                                 attrs={"transpose_b": True})
    assert record(after, "fc.bias") == make_node("broadcast_to", ("bias",), (6, 4, 3),
                                                 attrs={"shape": (6, 4, 3)})


def test_fc_as_an_output_keeps_its_name_and_the_rest_is_untouched():
    b = Builder()
    x, w, c = b.var("x", (2, 5)), b.var("w", (3, 5)), b.var("c", (3,))
    fc = b.add("FullyConnected", [x, w, c], "fc", num_hidden=3)
    other = b.add("sigmoid", [x], "other")
    b.set_outputs([fc, other])
    after = canonicalize(b.g)
    assert after.graph["outputs"] == ("fc", "other")
    assert record(after, "fc").op == "add"
    assert record(after, "other") == record(b.g, "other")


def test_graph_without_fc_is_returned_unchanged():
    b = Builder()
    x = b.var("x", (2, 3))
    b.set_outputs([b.add("tanh", [x], "y")])
    after = assert_pure(canonicalize, b.g)
    assert_same(after, b.g)
