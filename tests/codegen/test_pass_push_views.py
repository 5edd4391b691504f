"""push_views: `V(op(a, b))` -> `op(V(a), V(b))` when every user of `op` is a view
(split, slice, take); the new views are named `{view}.{i}` and the view keeps its name."""

import pytest

from codegen import Builder
from codegen.graph import add_node, make_node, new_graph
from codegen.passes.push_views import push_views
from codegen.testing import assert_pure, assert_same, record

SPLIT = {"axis": 1, "num_outputs": 2}


def split_of(op: str, extra_users=(), outputs=None, **attrs):
    """a, c (4, 6) -> s = op(a, c) -> v0, v1 = split(s) -> y = tanh(v0), z = sigmoid(v1)."""
    b = Builder()
    a, c = b.var("a", (4, 6)), b.var("c", (4, 6))
    s = b.add(op, [a, c], "s", **attrs)
    v0 = b.add("split", [s], "v0", index=0, **SPLIT)
    v1 = b.add("split", [s], "v1", index=1, **SPLIT)
    outs = [b.add("tanh", [v0], "y"), b.add("sigmoid", [v1], "z")]
    outs += [b.add(u, [s], f"{u}_user") for u in extra_users]
    b.set_outputs(outs if outputs is None else outputs)
    return b.g


def expected_base():
    e = new_graph()
    add_node(e, "a", make_node("var", (), (4, 6)))
    add_node(e, "c", make_node("var", (), (4, 6)))
    return e


def test_split_of_add_becomes_add_of_splits():
    before = split_of("add")
    after = assert_pure(push_views, before)

    expected = expected_base()
    for i, v in enumerate(("v0", "v1")):
        split = {"index": i, **SPLIT}
        add_node(expected, f"{v}.0", make_node("split", ("a",), (4, 3), attrs=split))
        add_node(expected, f"{v}.1", make_node("split", ("c",), (4, 3), attrs=split))
        add_node(expected, v, make_node("add", (f"{v}.0", f"{v}.1"), (4, 3)))
    add_node(expected, "y", make_node("tanh", ("v0",), (4, 3)))
    add_node(expected, "z", make_node("sigmoid", ("v1",), (4, 3)))
    expected.graph["outputs"] = ("y", "z")
    assert_same(after, expected)
    assert "s" not in after


def test_views_go_up_through_a_chain_of_elementwise_ops():
    b = Builder()
    x = b.var("x", (3, 2, 4))
    u = b.add("tanh", [b.add("mul_scalar", [x], "m", scalar=2.0)], "u")
    b.set_outputs([b.add("exp", [b.add("take", [u], f"u{t}", index=t)], f"e{t}")
                   for t in range(3)])
    after = push_views(b.g)

    expected = new_graph()
    add_node(expected, "x", make_node("var", (), (3, 2, 4)))
    for t in range(3):
        take = {"index": t}
        add_node(expected, f"u{t}.0.0", make_node("take", ("x",), (2, 4), attrs=take))
        add_node(expected, f"u{t}.0", make_node("mul_scalar", (f"u{t}.0.0",), (2, 4),
                                                attrs={"scalar": 2.0}))
        add_node(expected, f"u{t}", make_node("tanh", (f"u{t}.0",), (2, 4)))
        add_node(expected, f"e{t}", make_node("exp", (f"u{t}",), (2, 4)))
    expected.graph["outputs"] = ("e0", "e1", "e2")
    assert_same(after, expected)


def test_a_zeros_operand_becomes_zeros_of_the_view_shape():
    b = Builder()
    a = b.var("a", (4, 6))
    s = b.add("add", [b.add("zeros", [], "z0", shape=(4, 6)), a], "s")
    b.set_outputs([b.add("slice", [s], "w", axis=1, begin=2, end=5)])
    after = push_views(b.g)
    assert record(after, "w.0") == make_node("zeros", (), (4, 3),
                                             attrs={"shape": (4, 3), "dtype": "float32"})
    assert record(after, "w.1") == make_node("slice", ("a",), (4, 3),
                                             attrs={"axis": 1, "begin": 2, "end": 5})
    assert record(after, "w") == make_node("add", ("w.0", "w.1"), (4, 3))


@pytest.mark.parametrize("case", ["non-view user", "reshape user", "output", "dropout",
                                  "zoneout"])
def test_not_pushed(case):
    if case == "non-view user":
        before = split_of("add", extra_users=["exp"])
    elif case == "reshape user":  # a reshape is a view, but not one push_views moves
        b = Builder()
        a, c = b.var("a", (4, 6)), b.var("c", (4, 6))
        s = b.add("add", [a, c], "s")
        b.set_outputs([b.add("split", [s], "v0", index=0, **SPLIT),
                       b.add("reshape", [s], "r", shape=(2, 2, 6))])
        before = b.g
    elif case == "output":
        before = split_of("add", outputs=["y", "z", "s"])
    elif case == "dropout":  # the mask is drawn per element index: a view would move it
        b = Builder()
        a = b.var("a", (4, 6))
        s = b.add("dropout", [a], "s", p=0.5, mask_id=3)
        b.set_outputs([b.add("split", [s], f"v{i}", index=i, **SPLIT) for i in range(2)])
        before = b.g
    else:
        before = split_of("zoneout", p=0.25, mask_id=7)
    after = assert_pure(push_views, before)
    assert_same(after, before)


def test_protected_gradient_is_not_pushed():
    g = split_of("add")
    g.graph["grads"] = {"a": "s"}
    assert_same(push_views(g), g)
