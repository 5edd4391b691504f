"""The op table: every op has every entry, and every op's vjp agrees with central differences.

Each case builds a tiny float64 graph around one op, differentiates a scalar head
`sum(op_output * weights)` (or the op output itself when it is a scalar) with respect to the
case's float inputs, and compares every coordinate of every gradient with finite differences.
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from codegen import Builder, EvalContext, autodiff, evaluate, infer_shapes
from codegen.graph import nodes
from codegen.ops import OPS
from runtime import rng

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-8
HEAD_GRAD = 0.7  # not 1, so that a vjp that drops its incoming gradient fails
SEED, P, MASK_ID = 3, 0.3, 7
R = np.random.default_rng(0)


def rand(*shape):
    return R.standard_normal(shape)


def away(*shape):
    """Values at least 0.2 away from 0 (kinks, poles, steps)."""
    return R.choice([-1.0, 1.0], shape) * R.uniform(0.2, 1.5, shape)


def pos(*shape):
    return R.uniform(0.5, 2.0, shape)


def labels(shape, depth):
    return R.integers(0, depth, shape).astype(np.float64)


@dataclass
class Case:
    op: str
    inputs: dict
    attrs: dict = field(default_factory=dict)
    tag: str = ""
    ref: Callable | None = None  # numpy reference for the op output, from the inputs
    const: tuple = ()  # inputs that are not differentiated (indices, labels)
    train: bool = False
    build: Callable | None = None  # custom graph; default: op(*inputs, **attrs)

    @property
    def id(self):
        return f"{self.op}[{self.tag}]" if self.tag else self.op


def _add_zeros(b):
    return b.add("add", ["x", b.add("zeros", [], "z", shape=(2, 3), dtype="float64")], "y")


def _rows():
    """A length block (4, 3): rows of lengths 0, 3, 1, 2."""
    return np.repeat(np.array([[0.0], [3], [1], [2]]), 3, axis=1)


def _length_rows_times_x(b):
    rows = b.add("length_rows", ["lengths", "x"], "rows", steps=3)
    return b.add("mul", [rows, "x"], "out")


def _one_hot_times_x(b):
    return b.add("mul", [b.add("one_hot", ["label"], "oh", depth=3), "x"], "out")


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _mask(shape, kind):
    fn = rng.dropout_mask if kind == "dropout" else rng.zoneout_mask
    return fn(SEED, MASK_ID, shape, P, np.float64)


def _mix(keep, prev, new):
    return keep * prev + (1 - keep) * new


MASK = {"p": P, "mask_id": MASK_ID}
UNARY = {"neg": -1, "sigmoid": 0, "tanh": 0, "relu": 0, "exp": 0, "log": 0, "heaviside": 0}
SCALAR = {"add_scalar": 0.5, "mul_scalar": -1.5, "rsub_scalar": 2.0, "rdiv_scalar": 1.5}
TT = {"transpose_a": True, "transpose_b": True}

CASES = [
    *[Case(op, {"x": pos(2, 3) if op == "log" else away(2, 3)}) for op in UNARY],
    *[Case(op, {"x": rand(2, 3), "y": away(2, 3)}) for op in ("add", "sub", "mul", "div")],
    *[Case(op, {"x": away(2, 3)}, {"scalar": s}) for op, s in SCALAR.items()],
    Case("dropout", {"x": rand(3, 2, 4)}, MASK, "train", train=True,
         ref=lambda v: v["x"] * _mask((3, 2, 4), "dropout")),
    Case("dropout", {"x": rand(2, 3)}, MASK, "infer", ref=lambda v: v["x"]),
    Case("zoneout", {"prev": rand(3, 2, 4), "new": rand(3, 2, 4)}, MASK, "train", train=True,
         ref=lambda v: _mix(_mask((3, 2, 4), "zoneout"), v["prev"], v["new"])),
    Case("zoneout", {"prev": rand(2, 3), "new": rand(2, 3)}, MASK, "infer",
         ref=lambda v: _mix(P, v["prev"], v["new"])),
    Case("zeros", {"x": rand(2, 3)}, build=_add_zeros),
    Case("clip", {"x": away(3, 4) * 2}, {"scalar": 0.9},
         ref=lambda v: np.minimum(np.maximum(v["x"], -0.9), 0.9)),
    Case("clip_grad", {"g": rand(3, 4), "x": away(3, 4) * 2}, {"scalar": 0.9}, const=("x",),
         ref=lambda v: np.where(np.abs(v["x"]) <= 0.9, v["g"], 0.0)),
    Case("step_select", {"prev": rand(4, 3), "new": rand(4, 3), "rows": _rows()},
         {"mask_id": 2}, const=("rows",),
         ref=lambda v: np.where(v["rows"] > 2, v["new"], v["prev"])),
    Case("step_zero", {"x": rand(4, 3), "rows": _rows()}, {"mask_id": 1}, const=("rows",),
         ref=lambda v: np.where(v["rows"] > 1, v["x"], 0.0)),
    Case("length_rows", {"lengths": np.array([0.0, 3, 1, 2]), "x": rand(4, 3)},
         const=("lengths",), build=_length_rows_times_x,
         ref=lambda v: np.array([[0.0], [3], [1], [2]]) * v["x"]),
    Case("reshape", {"x": rand(3, 2, 4)}, {"shape": (0, -1)}, "0,-1"),
    Case("reshape", {"x": rand(3, 2, 4)}, {"shape": (4, -1, 3)}, "4,-1,3"),
    Case("reshape", {"x": rand(3, 2, 4)}, {"shape": (0, 0, 2, 2)}, "0,0,2,2"),
    Case("slice", {"x": rand(3, 2, 4)}, {"axis": 0, "begin": 1, "end": 3}, "axis0",
         ref=lambda v: v["x"][1:3]),
    Case("slice", {"x": rand(3, 2, 4)}, {"axis": 1, "begin": 0, "end": 1}, "axis1"),
    Case("slice", {"x": rand(3, 2, 4)}, {"axis": -1, "begin": 1, "end": 3}, "axis-1",
         ref=lambda v: v["x"][..., 1:3]),
    Case("split", {"x": rand(3, 4, 2)}, {"axis": 1, "num_outputs": 2, "index": 1}, "axis1",
         ref=lambda v: v["x"][:, 2:]),
    Case("split", {"x": rand(2, 3, 6)}, {"axis": -1, "num_outputs": 3, "index": 0}, "axis-1"),
    Case("split", {"x": rand(3, 2, 4)}, {"axis": 0, "num_outputs": 3, "index": 2,
                                         "squeeze_axis": True}, "squeeze",
         ref=lambda v: v["x"][2]),
    Case("pad", {"x": rand(2, 2, 3)}, {"axis": 0, "begin": 1, "end": 3, "size": 4}, "axis0"),
    Case("pad", {"x": rand(2, 2, 3)}, {"axis": 1, "begin": 0, "end": 2, "size": 3}, "axis1"),
    Case("pad", {"x": rand(2, 2, 3)}, {"axis": -1, "begin": 2, "end": 5, "size": 6}, "axis-1",
         ref=lambda v: np.pad(v["x"], ((0, 0), (0, 0), (2, 1)))),
    Case("concat", {"a": rand(1, 2, 3), "b": rand(2, 2, 3)}, {"axis": 0}, "axis0"),
    Case("concat", {"a": rand(2, 1, 3), "b": rand(2, 3, 3), "c": rand(2, 2, 3)}, {"axis": 1},
         "axis1", ref=lambda v: np.concatenate([v["a"], v["b"], v["c"]], axis=1)),
    Case("concat", {"a": rand(2, 3), "b": rand(2, 1)}, {"axis": -1}, "axis-1"),
    Case("take", {"x": rand(3, 2, 4)}, {"index": 1}, ref=lambda v: v["x"][1]),
    Case("put", {"x": rand(2, 4)}, {"index": 2, "size": 3}),
    Case("stack", {"a": rand(2, 3), "b": rand(2, 3), "c": rand(2, 3)},
         ref=lambda v: np.stack([v["a"], v["b"], v["c"]])),
    *[Case(op, {"x": rand(3, 2, 4)}, attrs, tag)
      for op in ("sum", "mean")
      for tag, attrs in [("None", {}), ("0", {"axis": 0}), ("-1", {"axis": -1}),
                         ("0,2", {"axis": (0, 2)}), ("1,keep", {"axis": 1, "keepdims": True}),
                         ("None,keep", {"keepdims": True})]],
    Case("row_sum", {"x": rand(3, 4)}, ref=lambda v: np.repeat(v["x"].sum(1, keepdims=True), 4, 1)),
    Case("row_sum", {"x": rand(2, 3, 4)}, {}, "3d"),
    Case("rsqrt", {"x": pos(3, 4)}, ref=lambda v: 1 / np.sqrt(v["x"])),
    Case("broadcast_rows", {"v": rand(3), "like": rand(2, 3)}, const=("like",),
         ref=lambda v: np.repeat(v["v"][None], 2, 0)),
    Case("broadcast_rows", {"v": rand(3), "like": rand(4, 2, 3)}, {}, "3d", const=("like",)),
    Case("broadcast_to", {"x": rand(1, 3)}, {"shape": (2, 3)}, "rows"),
    Case("broadcast_to", {"x": rand(3, 1, 4)}, {"shape": (3, 2, 4)}, "middle"),
    Case("broadcast_to", {"x": rand(2, 3)}, {"shape": (2, 3)}, "same"),
    Case("transpose", {"x": rand(2, 3)}, {}, "2d", ref=lambda v: v["x"].T),
    Case("dot", {"a": rand(2, 3), "b": rand(3, 4)}, {}, "NN", ref=lambda v: v["a"] @ v["b"]),
    Case("dot", {"a": rand(3, 2, 4), "b": rand(4, 5)}, {}, "NN,3d"),
    Case("dot", {"a": rand(2, 3), "b": rand(4, 3)}, {"transpose_b": True}, "NT",
         ref=lambda v: v["a"] @ v["b"].T),
    Case("dot", {"a": rand(3, 2, 4), "b": rand(5, 4)}, {"transpose_b": True}, "NT,3d"),
    Case("dot", {"a": rand(3, 2), "b": rand(3, 4)}, {"transpose_a": True}, "TN",
         ref=lambda v: v["a"].T @ v["b"]),
    Case("dot", {"a": rand(3, 2, 4), "b": rand(3, 2, 5)}, {"transpose_a": True}, "TN,3d",
         ref=lambda v: np.einsum("tni,tnj->ij", v["a"], v["b"])),
    Case("dot", {"a": rand(3, 2), "b": rand(4, 3)}, TT, "TT", ref=lambda v: v["a"].T @ v["b"].T),
    Case("FullyConnected", {"x": rand(2, 3), "w": rand(4, 3), "bias": rand(4)},
         {"num_hidden": 4}, "bias", ref=lambda v: v["x"] @ v["w"].T + v["bias"]),
    Case("FullyConnected", {"x": rand(2, 3), "w": rand(4, 3)}, {"num_hidden": 4}, "no-bias"),
    Case("FullyConnected", {"x": rand(3, 2, 4), "w": rand(5, 4), "bias": rand(5)},
         {"num_hidden": 5}, "3d", ref=lambda v: v["x"] @ v["w"].T + v["bias"]),
    Case("softmax", {"x": rand(2, 3)}, {}, "last", ref=lambda v: _softmax(v["x"])),
    Case("softmax", {"x": rand(3, 2, 4)}, {"axis": 0}, "axis0",
         ref=lambda v: _softmax(v["x"], 0)),
    Case("softmax_cross_entropy", {"logits": rand(2, 3), "label": labels(2, 3)},
         const=("label",), ref=lambda v: -np.log(
             _softmax(v["logits"])[np.arange(2), v["label"].astype(int)]).sum()),
    Case("softmax_cross_entropy", {"logits": rand(3, 2, 4), "label": labels((3, 2), 4)},
         tag="3d", const=("label",)),
    Case("one_hot", {"label": labels(2, 3), "x": rand(2, 3)}, const=("label",),
         build=_one_hot_times_x, ref=lambda v: np.eye(3)[v["label"].astype(int)] * v["x"]),
    Case("Embedding", {"data": labels((2, 3), 5), "weight": rand(5, 4)},
         {"input_dim": 5, "output_dim": 4}, const=("data",),
         ref=lambda v: v["weight"][v["data"].astype(int)]),
    Case("copy", {"x": rand(2, 3)}, ref=lambda v: v["x"]),
    Case("embedding_grad", {"data": labels((2, 3), 5), "g": rand(2, 3, 4)}, {"input_dim": 5},
         const=("data",)),
]


def test_every_op_has_every_entry():
    for name, op in OPS.items():
        assert op.name == name
        assert callable(op.shape) and callable(op.impl) and callable(op.vjp), name
        if op.elementwise:
            assert isinstance(op.c_expr, str) and op.c_expr.strip(), name
        else:
            assert op.c_expr is None, name


def test_elementwise_ops_take_their_c_expression_from_the_runtime_table():
    """runtime.kernel_ops is the closed list a loaded kernel's ops come from: exactly the
    elementwise ops, each expression declared once (the same object)."""
    from runtime.kernel_ops import C_EXPRS

    assert {n for n, op in OPS.items() if op.elementwise} == set(C_EXPRS)
    assert all(OPS[n].c_expr is C_EXPRS[n] for n in C_EXPRS)


def test_every_op_has_a_gradient_case():
    assert {c.op for c in CASES} == set(OPS) - {"var"}


def _build(case):
    """The graph, its head, and the feeds (inputs, weights, head gradient)."""
    b = Builder()
    for name, value in case.inputs.items():
        b.var(name, value.shape, "float64")
    out = case.build(b) if case.build else b.add(case.op, list(case.inputs), "out",
                                              **case.attrs)
    feeds = dict(case.inputs)
    head = out
    if b.shape_of(out) != ():
        weights = np.random.default_rng(1).standard_normal(b.shape_of(out))
        feeds["weights"] = weights
        b.var("weights", weights.shape, "float64")
        head = b.add("sum", [b.add("mul", [out, "weights"], "weighted")], "head")
    b.set_outputs([head])
    return infer_shapes(b.g), out, head, feeds


def _numeric_grad(g, head, feeds, name, ctx):
    x = feeds[name]
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        values = []
        for step in (EPS, -EPS):
            moved = x.copy()
            moved[i] += step
            values.append(evaluate(g, {**feeds, name: moved}, [head], ctx)[head])
        grad[i] = HEAD_GRAD * (values[0] - values[1]) / (2 * EPS)
    return grad


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient_matches_finite_differences(case):
    g, out, head, feeds = _build(case)
    assert case.op in {n.op for _, n in nodes(g)}
    ctx = EvalContext(seed=SEED, is_train=case.train)
    if case.ref is not None:
        value = evaluate(g, feeds, [out], ctx)[out]
        np.testing.assert_allclose(value, case.ref(case.inputs), rtol=1e-12, atol=1e-12)
    wrt = [name for name in case.inputs if name not in case.const]
    dg = autodiff(g, wrt)
    feeds[dg.graph["head_grads"][head]] = np.array(HEAD_GRAD)
    grads = dg.graph["grads"]
    got = evaluate(dg, feeds, [grads[w] for w in wrt], ctx)
    for w in wrt:
        assert got[grads[w]].shape == case.inputs[w].shape, w
        assert got[grads[w]].dtype == np.float64, w
        expected = _numeric_grad(g, head, feeds, w, ctx)
        np.testing.assert_allclose(got[grads[w]], expected, rtol=RTOL, atol=ATOL, err_msg=w)
