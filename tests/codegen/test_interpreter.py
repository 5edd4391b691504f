"""The reference interpreter: what it computes, in which dtype, and the mask semantics."""
import numpy as np
import pytest

from codegen import Builder, EvalContext, autodiff, evaluate, infer_shapes
from codegen.graph import node
from runtime import rng
from runtime.errors import BindError

INFER, TRAIN = EvalContext(seed=11, is_train=False), EvalContext(seed=11, is_train=True)
R = np.random.default_rng(0)


def one_op(op, shapes, dtype="float64", **attrs):
    b = Builder()
    names = [b.var(f"in{i}", s, dtype) for i, s in enumerate(shapes)]
    b.set_outputs([b.add(op, names, "y", **attrs)])
    return b.g


def run(g, ctx=INFER, **feeds):
    return evaluate(g, feeds, ["y"], ctx)["y"]


def embedding_graph():
    b = Builder()
    b.var("data", (2, 2), "float64")
    b.var("w", (5, 3), "float64")
    b.add("Embedding", ["data", "w"], "e", input_dim=5, output_dim=3)
    b.var("x", (2, 3), "float64")
    b.add("tanh", ["x"], "t")
    b.set_outputs(["e", "t"])
    return b.g


def test_only_what_is_needed_is_computed():
    g = embedding_graph()
    feeds = {"data": np.array([[0.0, 9.0], [1.0, 2.0]]), "w": R.random((5, 3)),
             "x": R.random((2, 3))}
    got = evaluate(g, feeds, ["t"], INFER)
    assert set(got) == {"t"}
    np.testing.assert_array_equal(got["t"], np.tanh(feeds["x"]))
    with pytest.raises(BindError):
        evaluate(g, feeds, ["e"], INFER)


def test_unneeded_variables_need_no_value():
    g = embedding_graph()
    got = evaluate(g, {"x": np.ones((2, 3))}, ["t"], INFER)
    np.testing.assert_array_equal(got["t"], np.tanh(np.ones((2, 3))))


def test_a_fed_intermediate_value_is_not_recomputed():
    b = Builder()
    x = b.var("x", (2,), "float64")
    b.set_outputs([b.add("exp", [b.add("tanh", [x], "t")], "y")])
    got = evaluate(b.g, {"t": np.array([0.0, 1.0])}, ["y"], INFER)
    np.testing.assert_array_equal(got["y"], np.exp([0.0, 1.0]))


def test_keep_returns_intermediate_values_too():
    b = Builder()
    x = b.var("x", (2,), "float64")
    b.set_outputs([b.add("exp", [b.add("tanh", [x], "t")], "y")])
    got = evaluate(b.g, {"x": np.array([0.5, 1.0])}, ["y"], INFER, keep=["t"])
    assert set(got) == {"y", "t"}
    np.testing.assert_array_equal(got["t"], np.tanh([0.5, 1.0]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op, shapes, attrs", [
    ("sigmoid", [(2, 3)], {}),
    ("rdiv_scalar", [(2, 3)], {"scalar": 1.5}),
    ("mul", [(2, 3), (2, 3)], {}),
    ("dot", [(3, 2, 4), (4, 5)], {}),
    ("FullyConnected", [(2, 3), (4, 3), (4,)], {"num_hidden": 4}),
    ("mean", [(3, 2, 4)], {"axis": (0, 1)}),
    ("softmax", [(2, 3)], {}),
    ("dropout", [(2, 3)], {"p": 0.5, "mask_id": 1}),
    ("zoneout", [(2, 3), (2, 3)], {"p": 0.5, "mask_id": 1}),
])
def test_values_keep_their_dtype(dtype, op, shapes, attrs):
    g = one_op(op, shapes, dtype, **attrs)
    feeds = {f"in{i}": R.uniform(0.5, 1.0, s).astype(dtype) for i, s in enumerate(shapes)}
    assert run(g, TRAIN, **feeds).dtype == np.dtype(dtype)
    assert run(g, INFER, **feeds).dtype == np.dtype(dtype)


def test_embedding_takes_the_weight_dtype_not_the_index_dtype():
    b = Builder()
    b.var("data", (2,), "float32")
    b.var("w", (3, 2), "float64")
    b.set_outputs([b.add("sum", [b.add("Embedding", ["data", "w"], "e", input_dim=3,
                                       output_dim=2)], "s")])
    g = autodiff(infer_shapes(b.g), ["w"])
    assert node(g, "e").dtype == "float64"
    assert node(g, g.graph["grads"]["w"]).dtype == "float64"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_at_inference_is_the_identity(dtype):
    x = R.standard_normal((3, 4, 5)).astype(dtype)
    got = run(one_op("dropout", [x.shape], dtype, p=0.4, mask_id=2), INFER, in0=x)
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.9])
def test_dropout_in_training_applies_the_rng_mask(dtype, p):
    x = R.standard_normal((3, 4, 5)).astype(dtype)
    got = run(one_op("dropout", [x.shape], dtype, p=p, mask_id=2), TRAIN, in0=x)
    np.testing.assert_array_equal(got, x * rng.dropout_mask(11, 2, x.shape, p, dtype))
    if p > 0:
        assert (got == 0).any() and (got != 0).any()


def test_dropout_masks_depend_on_seed_and_mask_id():
    x = np.ones((8, 16))
    g = one_op("dropout", [x.shape], p=0.5, mask_id=2)
    g2 = one_op("dropout", [x.shape], p=0.5, mask_id=3)
    a = run(g, TRAIN, in0=x)
    assert np.array_equal(a, run(g, TRAIN, in0=x))
    assert not np.array_equal(a, run(g, EvalContext(seed=12, is_train=True), in0=x))
    assert not np.array_equal(a, run(g2, TRAIN, in0=x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zoneout_at_inference_is_the_expectation(dtype):
    prev, new = (R.standard_normal((4, 5)).astype(dtype) for _ in range(2))
    p = 0.3
    got = run(one_op("zoneout", [prev.shape] * 2, dtype, p=p, mask_id=4), INFER,
              in0=prev, in1=new)
    keep = np.dtype(dtype).type(p)
    np.testing.assert_array_equal(got, keep * prev + (1 - keep) * new)
    if dtype == "float64":
        np.testing.assert_array_equal(got, p * prev + (1 - p) * new)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_zoneout_in_training_mixes_with_the_rng_mask(dtype, p):
    prev, new = (R.standard_normal((4, 5)).astype(dtype) for _ in range(2))
    got = run(one_op("zoneout", [prev.shape] * 2, dtype, p=p, mask_id=4), TRAIN,
              in0=prev, in1=new)
    m = rng.zoneout_mask(11, 4, prev.shape, p, dtype)
    np.testing.assert_array_equal(got, m * prev + (1 - m) * new)
    assert np.all((got == prev) | (got == new))


@pytest.mark.parametrize("bad", [7.0, -1.0, 1.5, 5.0])
def test_embedding_index_out_of_range_is_a_bind_error(bad):
    g = one_op("Embedding", [(2, 2), (5, 3)], input_dim=5, output_dim=3)
    data = np.array([[0.0, 4.0], [bad, 1.0]])
    with pytest.raises(BindError) as e:
        run(g, INFER, in0=data, in1=np.ones((5, 3)))
    assert "Embedding" in str(e.value) and str(bad) in str(e.value)


def test_embedding_looks_up_rows():
    w = R.standard_normal((5, 3))
    g = one_op("Embedding", [(2, 2), (5, 3)], input_dim=5, output_dim=3)
    got = run(g, INFER, in0=np.array([[0.0, 4.0], [4.0, 1.0]]), in1=w)
    np.testing.assert_array_equal(got, w[[[0, 4], [4, 1]]])


def test_softmax_cross_entropy_label_out_of_range_is_a_bind_error():
    g = one_op("softmax_cross_entropy", [(2, 3), (2,)])
    with pytest.raises(BindError, match="3"):
        run(g, INFER, in0=np.zeros((2, 3)), in1=np.array([0.0, 3.0]))
