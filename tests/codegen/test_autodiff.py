"""autodiff: Before/Expected graphs, and how contributions to one tensor are combined."""
import numpy as np
import pytest

from codegen import Builder, EvalContext, autodiff, evaluate, infer_shapes
from codegen.graph import copy_graph, node, nodes, same_graph

CTX = EvalContext()


def tanh_of_product():
    """s = sum(tanh(x * w))"""
    b = Builder()
    x, w = b.var("x", (2, 3), "float64"), b.var("w", (2, 3), "float64")
    y = b.add("tanh", [b.add("mul", [x, w], "m")], "y")
    b.set_outputs([b.add("sum", [y], "s")])
    return b


def test_before_expected_tanh_of_product():
    before = tanh_of_product().g
    after = autodiff(before, ["x"])

    b = tanh_of_product()
    g = b.var("head_grad(s)", (), "float64", kind="head_grad")
    g = b.add("reshape", [g], "d(s).keep", shape=(1, 1))
    g = b.add("broadcast_to", [g], "d(s).spread", shape=(2, 3))
    y2 = b.add("mul", ["y", "y"], "d(y).y2")
    slope = b.add("rsub_scalar", [y2], "d(y).1-y2", scalar=1.0)
    g = b.add("mul", [g, slope], "d(y).0")
    b.add("mul", [g, "w"], "d(m).0")
    b.add("mul", [g, "x"], "d(m).1")  # the gradient of w, dead until DCE
    expected = b.g

    assert same_graph(after, expected), "\n".join(
        f"{nid}: {node(after, nid) if nid in after else None} != {n}"
        for nid, n in nodes(expected) if nid not in after or node(after, nid) != n)
    assert set(after.edges) == set(expected.edges)
    assert after.graph["grads"] == {"x": "d(m).0"}
    assert after.graph["head_grads"] == {"s": "head_grad(s)"}


def test_autodiff_does_not_mutate_its_input():
    g = tanh_of_product().g
    before = copy_graph(g)
    autodiff(g, ["x", "w"])
    assert same_graph(g, before)
    assert set(g.edges) == set(before.edges)
    assert "grads" not in g.graph and "head_grads" not in g.graph


def test_only_nodes_between_wrt_and_heads_are_differentiated():
    b = Builder()
    x, w = b.var("x", (2, 3), "float64"), b.var("w", (2, 3), "float64")
    a = b.add("tanh", [x], "a")
    c = b.add("exp", [w], "c")  # not downstream of x
    b.add("sigmoid", [x], "z")  # downstream of x, but feeds no head
    b.set_outputs([b.add("sum", [b.add("mul", [a, c], "m")], "s")])
    g = autodiff(b.g, ["x"])
    differentiated = {nid[2:nid.index(")")] for nid in g if nid.startswith("d(")}
    assert differentiated == {"s", "m", "a"}


def evaluate_grads(g, feeds, wrt, head_grad=1.0):
    """The gradients of `wrt` through autodiff, for a scalar head."""
    dg = autodiff(infer_shapes(g), wrt)
    (head,) = dg.graph["outputs"]
    feeds = {**feeds, dg.graph["head_grads"][head]: np.array(head_grad)}
    grads = dg.graph["grads"]
    values = evaluate(dg, feeds, [grads[w] for w in wrt], CTX)
    return dg, {w: values[grads[w]] for w in wrt}


def split_graph(spans, axis, shape=(2, 8)):
    """s = sum_k sum(tanh(x[spans[k]] along axis))"""
    b = Builder()
    x = b.var("x", shape, "float64")
    parts = []
    for k, (lo, hi) in enumerate(spans):
        t = b.add("tanh", [b.add("slice", [x], f"s{k}", axis=axis, begin=lo, end=hi)], f"t{k}")
        parts.append(b.add("sum", [t], f"r{k}"))
    total = parts[0]
    for k, p in enumerate(parts[1:]):
        total = b.add("add", [total, p], f"acc{k}")
    b.set_outputs([total])
    return b.g


def expected_split_grad(x, spans, axis):
    dx = np.zeros_like(x)
    for lo, hi in spans:
        index = [slice(None)] * x.ndim
        index[axis] = slice(lo, hi)
        dx[tuple(index)] += 1 - np.tanh(x[tuple(index)]) ** 2
    return dx


@pytest.mark.parametrize("axis", [1, -1])
def test_slices_that_tile_a_tensor_combine_into_one_concat(axis):
    spans = [(6, 8), (0, 2), (4, 6), (2, 4)]
    x = np.random.default_rng(0).standard_normal((2, 8))
    dg, got = evaluate_grads(split_graph(spans, axis), {"x": x}, ["x"])
    grad = node(dg, dg.graph["grads"]["x"])
    assert grad.op == "concat" and grad.attr("axis") == 1
    assert grad.inputs == ("d(t1).0", "d(t3).0", "d(t2).0", "d(t0).0")
    np.testing.assert_allclose(got["x"], expected_split_grad(x, spans, 1), rtol=1e-12)


def test_split_parts_combine_into_one_concat_along_axis_0():
    b = Builder()
    x = b.var("x", (4, 3), "float64")
    parts = [b.add("split", [x], f"p{k}", axis=0, num_outputs=4, index=k, squeeze_axis=True)
             for k in range(4)]
    total = b.add("add", [b.add("add", [parts[0], parts[1]], "a0"),
                          b.add("mul", [parts[2], parts[3]], "a1")], "a2")
    b.set_outputs([b.add("sum", [total], "s")])
    x0 = np.random.default_rng(1).standard_normal((4, 3))
    dg, got = evaluate_grads(b.g, {"x": x0}, ["x"])
    grad = node(dg, dg.graph["grads"]["x"])
    assert grad.op == "concat" and grad.attr("axis") == 0 and len(grad.inputs) == 4
    expected = np.stack([np.ones(3), np.ones(3), x0[3], x0[2]])
    np.testing.assert_allclose(got["x"], expected, rtol=1e-12)


def test_a_gap_between_slices_is_filled_with_zeros_inside_the_concat():
    spans = [(0, 2), (5, 8)]
    x = np.random.default_rng(2).standard_normal((2, 8))
    dg, got = evaluate_grads(split_graph(spans, 1), {"x": x}, ["x"])
    grad = node(dg, dg.graph["grads"]["x"])
    assert grad.op == "concat"
    ops = [node(dg, i).op for i in grad.inputs]
    assert ops == ["mul", "zeros", "mul"]
    assert node(dg, grad.inputs[1]).shape == (2, 3)
    np.testing.assert_allclose(got["x"], expected_split_grad(x, spans, 1), rtol=1e-12)


def test_overlapping_slices_are_summed():
    spans = [(0, 4), (2, 6)]
    x = np.random.default_rng(3).standard_normal((2, 8))
    dg, got = evaluate_grads(split_graph(spans, 1), {"x": x}, ["x"])
    assert node(dg, dg.graph["grads"]["x"]).op == "add"
    np.testing.assert_allclose(got["x"], expected_split_grad(x, spans, 1), rtol=1e-12)


def steps_graph(steps, size=4):
    """s = sum(sum_t tanh(x[t]) for t in steps)"""
    b = Builder()
    x = b.var("x", (size, 2, 3), "float64")
    hs = [b.add("tanh", [b.add("take", [x], f"x{k}", index=t)], f"h{k}")
          for k, t in enumerate(steps)]
    total = hs[0]
    for k, h in enumerate(hs[1:]):
        total = b.add("add", [total, h], f"acc{k}")
    b.set_outputs([b.add("sum", [total], "s")])
    return b.g


def expected_steps_grad(x, steps):
    dx = np.zeros_like(x)
    for t in steps:
        dx[t] += 1 - np.tanh(x[t]) ** 2
    return dx


def test_time_steps_combine_into_one_stack_with_zeros_for_unused_steps():
    steps = [3, 0, 1]
    x = np.random.default_rng(4).standard_normal((4, 2, 3))
    dg, got = evaluate_grads(steps_graph(steps), {"x": x}, ["x"])
    grad = node(dg, dg.graph["grads"]["x"])
    assert grad.op == "stack"
    assert grad.inputs[:2] == ("d(h1).0", "d(h2).0") and grad.inputs[3] == "d(h0).0"
    unused = node(dg, grad.inputs[2])
    assert unused.op == "zeros" and unused.shape == (2, 3) and unused.dtype == "float64"
    assert not any(n.op == "add" and nid.startswith("grad(x)") for nid, n in nodes(dg))
    np.testing.assert_allclose(got["x"], expected_steps_grad(x, steps), rtol=1e-12)


def test_a_step_taken_twice_is_summed_inside_the_stack():
    steps = [0, 1, 1, 2, 3]
    x = np.random.default_rng(5).standard_normal((4, 2, 3))
    dg, got = evaluate_grads(steps_graph(steps), {"x": x}, ["x"])
    grad = node(dg, dg.graph["grads"]["x"])
    assert grad.op == "stack" and node(dg, grad.inputs[1]).op == "add"
    np.testing.assert_allclose(got["x"], expected_steps_grad(x, steps), rtol=1e-12)


def test_fan_in_is_summed():
    b = Builder()
    x = b.var("x", (2, 3), "float64")
    y = b.add("mul", [b.add("tanh", [x], "a"), b.add("exp", [x], "e")], "m")
    b.set_outputs([b.add("sum", [y], "s")])
    x0 = np.random.default_rng(6).standard_normal((2, 3))
    _, got = evaluate_grads(b.g, {"x": x0}, ["x"], head_grad=2.0)
    t, e = np.tanh(x0), np.exp(x0)
    np.testing.assert_allclose(got["x"], 2.0 * ((1 - t * t) * e + t * e), rtol=1e-12)


def test_a_variable_not_connected_to_the_head_gets_zeros():
    b = tanh_of_product()
    b.var("u", (4, 5), "float32")
    b.add("exp", ["u"], "unused")
    x = np.ones((2, 3))
    dg, got = evaluate_grads(b.g, {"x": x, "w": x}, ["x", "u"])
    grad = node(dg, dg.graph["grads"]["u"])
    assert grad.op == "zeros" and grad.inputs == ()
    assert got["u"].shape == (4, 5) and got["u"].dtype == np.float32
    assert not got["u"].any()


def test_a_head_in_wrt_gets_its_head_gradient():
    b = Builder()
    b.var("x", (2,), "float64")
    b.set_outputs(["x"])
    g = autodiff(b.g, ["x"])
    assert g.graph["grads"] == {"x": "head_grad(x)"}
