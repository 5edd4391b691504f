"""Library ops: the op table's implementations are these, they match numpy, and bad indices
raise BindError. `runtime` must run without `codegen`, so libops imports neither."""

import subprocess
import sys

import numpy as np
import pytest

from codegen.interpreter import EvalContext
from codegen.ops import OPS
from runtime.errors import BindError
from runtime.library import LIBOPS, indices, reduced_axes, split_span

R = np.random.default_rng(0)


def rand(*shape):
    return R.standard_normal(shape)


def labels(shape, depth):
    return R.integers(0, depth, shape).astype(np.float64)


# (op, attrs, inputs, numpy expectation or None)
CASES = [
    ("sum", {"axis": (0, 2)}, [rand(3, 2, 4)], lambda x: x.sum((0, 2))),
    ("sum", {"axis": -1, "keepdims": True}, [rand(3, 2, 4)], lambda x: x.sum(-1, keepdims=True)),
    ("mean", {}, [rand(3, 2)], lambda x: x.mean()),
    ("broadcast_to", {"shape": (3, 2, 4)}, [rand(3, 1, 4)], None),
    ("broadcast_rows", {}, [rand(4), rand(3, 2, 4)], lambda v, like: np.tile(v, (3, 2, 1))),
    ("row_sum", {}, [rand(3, 4)], lambda x: np.repeat(x.sum(1, keepdims=True), 4, 1)),
    ("softmax", {"axis": 0}, [rand(3, 4)],
     lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True)),
    ("softmax_cross_entropy", {}, [rand(3, 2, 5), labels((3, 2), 5)], None),
    ("one_hot", {"depth": 4}, [labels((2, 3), 4)], None),
    ("Embedding", {"input_dim": 5, "output_dim": 3}, [labels((2, 4), 5), rand(5, 3)],
     lambda d, w: w[d.astype(int)]),
    ("embedding_grad", {"input_dim": 5}, [labels((2, 4), 5), rand(2, 4, 3)], None),
    ("reshape", {"shape": (0, -1)}, [rand(3, 2, 4)], lambda x: x.reshape(3, 8)),
    ("slice", {"axis": -1, "begin": 1, "end": 3}, [rand(3, 2, 4)], lambda x: x[..., 1:3]),
    ("split", {"axis": 1, "num_outputs": 2, "index": 1}, [rand(3, 4, 2)], lambda x: x[:, 2:]),
    ("split", {"axis": 0, "num_outputs": 3, "index": 2, "squeeze_axis": True}, [rand(3, 2)],
     lambda x: x[2]),
    ("pad", {"axis": 1, "begin": 1, "end": 3, "size": 4}, [rand(2, 2, 3)],
     lambda x: np.pad(x, ((0, 0), (1, 1), (0, 0)))),
    ("concat", {"axis": 1}, [rand(2, 1, 3), rand(2, 3, 3)], None),
    ("take", {"index": 2}, [rand(3, 2, 4)], lambda x: x[2]),
    ("put", {"index": 1, "size": 3}, [rand(2, 4)], None),
    ("stack", {}, [rand(2, 3), rand(2, 3)], lambda a, b: np.stack([a, b])),
    ("transpose", {}, [rand(3, 2)], lambda x: x.T),
    ("dot", {}, [rand(3, 2, 4), rand(4, 5)], lambda a, b: a @ b),
    ("dot", {"transpose_a": True}, [rand(3, 2, 4), rand(3, 2, 5)],
     lambda a, b: np.einsum("tni,tnj->ij", a, b)),
    ("dot", {"transpose_a": True, "transpose_b": True}, [rand(3, 2), rand(4, 3)],
     lambda a, b: a.T @ b.T),
    ("FullyConnected", {"num_hidden": 5}, [rand(3, 2, 4), rand(5, 4), rand(5)],
     lambda x, w, b: x @ w.T + b),
    ("FullyConnected", {"num_hidden": 5}, [rand(2, 4), rand(5, 4)], lambda x, w: x @ w.T),
    ("zeros", {"shape": (2, 3), "dtype": "float64"}, [], lambda: np.zeros((2, 3))),
    ("length_rows", {"steps": 4}, [np.array([2, 0, 4], np.int32), rand(3, 2)],
     lambda lengths, like: np.array([[2.0, 2], [0, 0], [4, 4]])),
]


def test_libops_cover_the_table_ops_that_are_not_elementwise():
    table = {n for n, op in OPS.items() if not op.elementwise and n != "var"}
    assert set(LIBOPS) == table | {"zeros"}
    assert {c[0] for c in CASES} == set(LIBOPS)


@pytest.mark.parametrize("op,attrs,inputs,expect", CASES, ids=lambda c: str(c)[:24])
def test_libop_equals_the_op_table_impl_and_numpy(op, attrs, inputs, expect):
    got = LIBOPS[op](attrs, *inputs)
    table = OPS[op].impl(EvalContext(), attrs, *inputs)
    np.testing.assert_array_equal(got, table)
    if expect is not None:
        np.testing.assert_allclose(got, expect(*inputs), rtol=1e-12, atol=1e-12)


def test_softmax_cross_entropy_is_the_summed_negative_log_likelihood():
    logits, label = rand(4, 3), labels(4, 3)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = -np.log(p[np.arange(4), label.astype(int)]).sum()
    got = LIBOPS["softmax_cross_entropy"]({}, logits, label)
    assert np.ndim(got) == 0
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_embedding_grad_adds_repeated_rows():
    data = np.array([[0.0, 2.0, 0.0]])
    g = np.arange(9.0).reshape(1, 3, 3)
    out = LIBOPS["embedding_grad"]({"input_dim": 3}, data, g)
    np.testing.assert_array_equal(out, [[6, 8, 10], [0, 0, 0], [3, 4, 5]])


@pytest.mark.parametrize("op,attrs,args,bad", [
    ("Embedding", {"input_dim": 3, "output_dim": 2}, [np.array([0.0, 3.0]), np.ones((3, 2))],
     "3.0"),
    ("Embedding", {"input_dim": 3, "output_dim": 2}, [np.array([1.5]), np.ones((3, 2))], "1.5"),
    ("one_hot", {"depth": 2}, [np.array([-1.0, 0.0])], "-1.0"),
    ("softmax_cross_entropy", {}, [np.zeros((2, 3)), np.array([0.0, 7.0])], "7.0"),
    ("embedding_grad", {"input_dim": 2}, [np.array([2.0]), np.ones((1, 4))], "2.0"),
])
def test_bad_indices_raise_bind_error_naming_the_index(op, attrs, args, bad):
    with pytest.raises(BindError, match=f"index {bad} is not an integer in"):
        LIBOPS[op](attrs, *args)


def test_helpers():
    assert reduced_axes({"axis": -1}, 3) == (2,)
    assert reduced_axes({}, 2) == (0, 1)
    assert split_span({"axis": -1, "num_outputs": 3, "index": 1}, (2, 6)) == (1, 2, 4)
    np.testing.assert_array_equal(indices(np.array([2.0, 0.0]), 3, "x"), [2, 0])


def test_runtime_imports_neither_codegen_nor_symrnn():
    code = ("import sys, runtime.library, runtime.cpu; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('codegen', 'symrnn')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
