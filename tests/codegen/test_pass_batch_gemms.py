"""batch_gemms: independent products sharing a right operand become one product over the
stacked left operands; add trees of `dot(a_t, b_t, transpose_a)` or of `sum(g_t, axis)`
become one product or one sum over stacks. A stack of every step of X, in order, is X."""


from codegen import Builder
from codegen.graph import add_node, format_graph, make_node, new_graph
from codegen.passes.batch_gemms import batch_gemms
from codegen.passes.dce import eliminate_dead_code
from codegen.testing import assert_pure, assert_same, record

T, N, I, H = 3, 4, 5, 6


def batch_then_dce(g):
    """batch_gemms leaves the replaced products and adds for DCE; compare what is live."""
    return eliminate_dead_code(assert_pure(batch_gemms, g))


def var(g, nid, shape):
    add_node(g, nid, make_node("var", (), shape))


# ---- (a) independent products sharing the right operand -------------------------------------

def projections(order=range(T)):
    b = Builder()
    X, W = b.var("X", (T, N, I)), b.var("W", (H, I))
    for t in order:
        b.add("dot", [b.add("take", [X], f"x{t}", index=t), W], f"p{t}", transpose_b=True)
    b.set_outputs([f"p{t}" for t in range(T)])
    return b.g


def test_input_projections_become_one_gemm_over_the_sequence():
    after = assert_pure(batch_gemms, projections())

    expected = new_graph()
    var(expected, "W", (H, I))
    var(expected, "X", (T, N, I))
    # no stack: the stack of every step of X, in order, is X itself
    add_node(expected, "batch(p0)", make_node("dot", ("X", "W"), (T, N, H),
                                              attrs={"transpose_b": True}))
    for t in range(T):
        add_node(expected, f"x{t}", make_node("take", ("X",), (N, I), attrs={"index": t}))
        add_node(expected, f"p{t}", make_node("take", ("batch(p0)",), (N, H),
                                              attrs={"index": t}))
    expected.graph["outputs"] = tuple(f"p{t}" for t in range(T))
    assert_same(after, expected)


def test_left_operands_that_are_not_steps_of_one_tensor_are_stacked():
    b = Builder()
    W = b.var("W", (H, I))
    for t in range(T):
        b.add("dot", [b.var(f"a{t}", (N, I)), W], f"p{t}", transpose_b=True)
    b.set_outputs([f"p{t}" for t in range(T)])
    after = batch_gemms(b.g)
    assert record(after, "batch(p0).lhs") == make_node("stack", ("a0", "a1", "a2"), (T, N, I))
    assert record(after, "batch(p0)") == make_node("dot", ("batch(p0).lhs", "W"), (T, N, H),
                                                   attrs={"transpose_b": True})
    for t in range(T):
        assert record(after, f"p{t}") == make_node("take", ("batch(p0)",), (N, H),
                                                   attrs={"index": t})


def test_group_order_follows_the_step_index_not_insertion_order():
    after = eliminate_dead_code(batch_gemms(projections(order=(2, 1, 0))))
    assert not [n for n in after if record(after, n).op == "stack"], format_graph(after)
    for t in range(T):
        take = record(after, f"p{t}")
        assert take.op == "take" and take.attr("index") == t
        assert record(after, take.inputs[0]).inputs == ("X", "W")


def test_a_dependent_chain_is_not_batched():
    b = Builder()
    h, W = b.var("h0", (N, H)), b.var("W", (H, H))
    for t in range(1, T + 1):
        h = b.add("tanh", [b.add("dot", [h, W], f"p{t}", transpose_b=True)], f"h{t}")
    b.set_outputs([h])
    after = assert_pure(batch_gemms, b.g)
    assert_same(after, b.g)


# ---- (c) add trees of products and of sums -----------------------------------------------

def add_tree(b, leaves, name="s"):
    """Left-deep, last leaf first: `((l2 + l1) + l0)`, the order autodiff builds."""
    total = leaves[-1]
    for i, leaf in enumerate(reversed(leaves[:-1])):
        total = b.add("add", [total, leaf], f"{name}{i + 1}")
    return total


def weight_gradient(natural=False, operands="takes"):
    b = Builder()
    if operands == "takes":
        G, X = b.var("G", (T, N, H)), b.var("X", (T, N, I))
        gs = [b.add("take", [G], f"g{t}", index=t) for t in range(T)]
        xs = [b.add("take", [X], f"x{t}", index=t) for t in range(T)]
    else:
        gs = [b.var(f"g{t}", (N, H)) for t in range(T)]
        xs = [b.var(f"x{t}", (N, I)) for t in range(T)]
    ds = [b.add("dot", [gs[t], xs[t]], f"d{t}", transpose_a=True) for t in range(T)]
    if natural:  # ((d0 + d1) + d2), as a user writes it
        root = b.add("add", [b.add("add", [ds[0], ds[1]], "s1"), ds[2]], "s2")
    else:
        root = add_tree(b, ds)
    b.set_outputs([root])
    return b.g


def test_weight_gradient_over_time_becomes_one_gemm_over_the_sequences():
    after = batch_then_dce(weight_gradient())

    expected = new_graph()
    var(expected, "G", (T, N, H))
    var(expected, "X", (T, N, I))
    add_node(expected, "batch(s2).d0", make_node("dot", ("G", "X"), (H, I),
                                                 attrs={"transpose_a": True}))
    add_node(expected, "s2", make_node("reshape", ("batch(s2).d0",), (H, I),
                                       attrs={"shape": (H, I)}))
    expected.graph["outputs"] = ("s2",)
    assert_same(after, expected)


def test_weight_gradient_of_separate_operands_stacks_both_sides():
    after = batch_then_dce(weight_gradient(operands="vars"))
    gs, xs = tuple(f"g{t}" for t in range(T)), tuple(f"x{t}" for t in range(T))
    assert record(after, "batch(s2).d0.a") == make_node("stack", gs, (T, N, H))
    assert record(after, "batch(s2).d0.b") == make_node("stack", xs, (T, N, I))
    assert record(after, "batch(s2).d0") == make_node(
        "dot", ("batch(s2).d0.a", "batch(s2).d0.b"), (H, I), attrs={"transpose_a": True})


def test_weight_gradient_written_in_time_order_needs_no_stack():
    after = eliminate_dead_code(batch_gemms(weight_gradient(natural=True)))
    assert not [n for n in after if record(after, n).op == "stack"], format_graph(after)


def test_bias_gradient_over_time_becomes_one_sum_with_an_extra_leading_axis():
    b = Builder()
    gs = [b.var(f"g{t}", (N, H)) for t in range(T)]
    sums = [b.add("sum", [g], f"m{t}", axis=(0,)) for t, g in enumerate(gs)]
    b.set_outputs([add_tree(b, sums)])
    after = batch_then_dce(b.g)

    expected = new_graph()
    for t in range(T):
        var(expected, f"g{t}", (N, H))
    add_node(expected, "batch(s2).m0.in", make_node("stack", ("g0", "g1", "g2"), (T, N, H)))
    add_node(expected, "batch(s2).m0", make_node("sum", ("batch(s2).m0.in",), (H,),
                                                 attrs={"axis": (0, 1), "keepdims": False}))
    add_node(expected, "s2", make_node("reshape", ("batch(s2).m0",), (H,),
                                       attrs={"shape": (H,)}))
    expected.graph["outputs"] = ("s2",)
    assert_same(after, expected)


def test_mixed_leaves_keep_the_others():
    b = Builder()
    G, X, extra = b.var("G", (T, N, H)), b.var("X", (T, N, I)), b.var("extra", (H, I))
    ds = [b.add("dot", [b.add("take", [G], f"g{t}", index=t),
                        b.add("take", [X], f"x{t}", index=t)], f"d{t}", transpose_a=True)
          for t in range(T)]
    # ((d2 + d1) + extra) + d0: leaves [d0, extra, d1, d2]
    inner = b.add("add", [b.add("add", [ds[2], ds[1]], "s1"), extra], "s2")
    b.set_outputs([b.add("add", [inner, ds[0]], "s3")])
    after = batch_then_dce(b.g)

    expected = new_graph()
    var(expected, "G", (T, N, H))
    var(expected, "X", (T, N, I))
    var(expected, "extra", (H, I))
    add_node(expected, "batch(s3).d0", make_node("dot", ("G", "X"), (H, I),
                                                 attrs={"transpose_a": True}))
    add_node(expected, "s3", make_node("add", ("batch(s3).d0", "extra"), (H, I)))
    expected.graph["outputs"] = ("s3",)
    assert_same(after, expected)


def test_a_leaf_read_elsewhere_stays_a_term_of_its_own():
    b = Builder()
    gs = [b.var(f"g{t}", (N, H)) for t in range(T)]
    sums = [b.add("sum", [g], f"m{t}", axis=(0,)) for t, g in enumerate(gs)]
    root = add_tree(b, sums)
    b.set_outputs([root, b.add("tanh", ["m1"], "other")])
    after = batch_then_dce(b.g)
    merged = record(after, "batch(s2).m0")
    assert merged.op == "sum" and merged.attr("axis") == (0, 1)
    assert record(after, "batch(s2).m0.in").inputs == ("g0", "g2")
    assert record(after, "s2") == make_node("add", ("batch(s2).m0", "m1"), (H,))
