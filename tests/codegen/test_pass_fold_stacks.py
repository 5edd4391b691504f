"""fold_stacks: `stack(take(x, 0), ..., take(x, n - 1))` -> `reshape(x)` (a view), under the
stack's name; anything else stays."""

from codegen import Builder
from codegen.graph import add_node, make_node, new_graph
from codegen.passes.fold_stacks import fold_stacks
from codegen.testing import assert_pure, assert_same


def restack(order=(0, 1, 2), src_shape=(3, 2, 4)):
    """x (src_shape) -> t_i = take(x, i) for i in order -> s = stack(t...) -> y = tanh(s)."""
    b = Builder()
    x = b.var("x", src_shape)
    parts = [b.add("take", [x], f"t{i}", index=i) for i in order]
    s = b.add("stack", parts, "s")
    b.set_outputs([b.add("tanh", [s], "y")])
    return b.g


def test_a_stack_of_every_step_in_order_is_a_view_of_the_source():
    after = assert_pure(fold_stacks, restack())

    expected = new_graph()
    add_node(expected, "x", make_node("var", (), (3, 2, 4)))
    for i in range(3):
        add_node(expected, f"t{i}", make_node("take", ("x",), (2, 4), attrs={"index": i}))
    add_node(expected, "s", make_node("reshape", ("x",), (3, 2, 4), attrs={"shape": (3, 2, 4)}))
    add_node(expected, "y", make_node("tanh", ("s",), (3, 2, 4)))
    expected.graph["outputs"] = ("y",)
    assert_same(after, expected)  # the takes are dead now: dce removes them


def two_sources():
    """take(x, 0) and take(z, 1) stacked: steps of two values."""
    b = Builder()
    x, z = b.var("x", (2, 2, 4)), b.var("z", (2, 2, 4))
    s = b.add("stack", [b.add("take", [x], "t0", index=0), b.add("take", [z], "t1", index=1)],
              "s")
    b.set_outputs([s])
    return b.g


def test_other_stacks_stay():
    for g in (restack(order=(0, 2, 1)), restack(order=(0, 1)), two_sources()):
        assert_same(assert_pure(fold_stacks, g), g)
