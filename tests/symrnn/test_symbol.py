"""Symbols: arguments, outputs, Group, indexing, arithmetic, infer_shape and the JSON form."""

import numpy as np
import pytest

import symrnn as sym
from symrnn import SymRNNError


def _fc_model():
    data = sym.Variable("data")
    label = sym.Variable("label", dtype="int32")
    h = sym.tanh(sym.FullyConnected(data, num_hidden=5, name="fc1"), name="act")
    logits = sym.FullyConnected(h, num_hidden=3, name="fc2")
    return sym.softmax_cross_entropy(logits, label, name="loss")


# ---- arguments and outputs ------------------------------------------------------------------

def test_list_arguments_order_follows_first_use():
    model = _fc_model()
    assert model.list_arguments() == [
        "data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "label"]


def test_list_arguments_deduplicates_a_reused_variable():
    x, y = sym.Variable("x"), sym.Variable("y")
    z = x * y + x - sym.tanh(y, name="ty") * x
    assert z.list_arguments() == ["x", "y"]


def test_two_variable_objects_with_one_name_are_one_argument():
    a, b = sym.Variable("x"), sym.Variable("x")
    z = a + b
    assert z.list_arguments() == ["x"]
    ex = z.simple_bind(backend="reference", x=(2,))
    out = ex.forward(x=np.array([1.0, 2.0], "float32"))[0]
    np.testing.assert_array_equal(out, [2.0, 4.0])


def test_list_outputs_names():
    x = sym.Variable("x")
    assert x.list_outputs() == ["x"]
    assert sym.tanh(x, name="t").list_outputs() == ["t_output"]
    parts = sym.split(x, num_outputs=3, axis=1, name="sp")
    assert parts.list_outputs() == ["sp_output0", "sp_output1", "sp_output2"]
    assert len(parts) == 3


def test_group_concatenates_outputs_in_order():
    x = sym.Variable("x")
    t, s = sym.tanh(x, name="t"), sym.sigmoid(x, name="s")
    parts = sym.split(x, num_outputs=2, axis=0, name="sp")
    g = sym.Group([s, x, t, parts])
    assert g.list_outputs() == ["s_output", "x", "t_output", "sp_output0", "sp_output1"]
    assert g.list_arguments() == ["x"]
    assert g.name is None and t.name == "t"


def test_indexing_by_int_and_by_name():
    x = sym.Variable("x")
    parts = sym.split(x, num_outputs=3, axis=1, name="sp")
    assert parts[1].list_outputs() == ["sp_output1"]
    assert parts[-1].list_outputs() == ["sp_output2"]
    assert parts["sp_output2"].list_outputs() == ["sp_output2"]
    g = sym.Group([sym.tanh(x, name="t"), parts[0]])
    assert g["t_output"].list_outputs() == ["t_output"]
    with pytest.raises(SymRNNError, match="sp_output7"):
        parts["sp_output7"]
    with pytest.raises(SymRNNError, match="out of range"):
        parts[3]


def test_indexed_split_outputs_compute_the_right_slices():
    x = sym.Variable("x")
    parts = sym.split(x, num_outputs=3, axis=1, name="sp")
    g = sym.Group([parts[2], parts["sp_output0"]])
    xv = np.arange(12, dtype="float32").reshape(2, 6)
    ex = g.simple_bind(backend="reference", x=(2, 6))
    a, b = ex.forward(x=xv)
    np.testing.assert_array_equal(a, xv[:, 4:6])
    np.testing.assert_array_equal(b, xv[:, 0:2])
    assert list(ex.output_dict) == ["sp_output2", "sp_output0"]


# ---- arithmetic ------------------------------------------------------------------------------

XV = np.array([[0.5, -1.5, 2.0], [3.0, 1.25, -0.75]])
YV = np.array([[1.5, 2.5, -0.5], [0.25, -2.0, 4.0]])

ARITH = [
    (lambda x, y: x + y, lambda x, y: x + y),
    (lambda x, y: x - y, lambda x, y: x - y),
    (lambda x, y: x * y, lambda x, y: x * y),
    (lambda x, y: x / y, lambda x, y: x / y),
    (lambda x, y: -x, lambda x, y: -x),
    (lambda x, y: x + 2, lambda x, y: x + 2),
    (lambda x, y: 2 + x, lambda x, y: 2 + x),
    (lambda x, y: x - 2, lambda x, y: x - 2),
    (lambda x, y: 2 - x, lambda x, y: 2 - x),
    (lambda x, y: x * 3, lambda x, y: x * 3),
    (lambda x, y: 3 * x, lambda x, y: 3 * x),
    (lambda x, y: x / 4, lambda x, y: x / 4),
    (lambda x, y: 4 / x, lambda x, y: 4 / x),
    (lambda x, y: 1.5 - x * y / 2 + -(y - 0.5) * 3, lambda x, y: 1.5 - x * y / 2 - (y - 0.5) * 3),
]


@pytest.mark.parametrize("k", range(len(ARITH)))
def test_arithmetic_forward_matches_numpy(k):
    build, want = ARITH[k]
    x, y = sym.Variable("x"), sym.Variable("y")
    z = sym.Group([build(x, y), y])  # y keeps both arguments bound
    ex = z.simple_bind(backend="reference", dtype="float64", x=(2, 3), y=(2, 3))
    out = ex.forward(x=XV, y=YV)[0]
    np.testing.assert_allclose(out, want(XV, YV), rtol=1e-14, atol=1e-14)


def test_arithmetic_gradients_match_numpy():
    x, y = sym.Variable("x"), sym.Variable("y")
    z = sym.sum(x * y - x / y + 3 / x - (2 - y) + x * x, name="total")
    ex = z.simple_bind(backend="reference", dtype="float64", x=(2, 3), y=(2, 3))
    ex.forward(is_train=True, x=XV, y=YV)
    ex.backward()
    np.testing.assert_allclose(ex.grad_dict["x"], YV - 1 / YV - 3 / XV**2 + 2 * XV, rtol=1e-12)
    np.testing.assert_allclose(ex.grad_dict["y"], XV + XV / YV**2 + 1, rtol=1e-12)


# ---- infer_shape -----------------------------------------------------------------------------

def test_infer_shape_fills_weights_from_the_data_alone():
    model = _fc_model()
    args, outs, aux = model.infer_shape(data=(7, 2, 4))
    assert dict(zip(model.list_arguments(), args)) == {
        "data": (7, 2, 4), "fc1_weight": (5, 4), "fc1_bias": (5,),
        "fc2_weight": (3, 5), "fc2_bias": (3,), "label": (7, 2)}
    assert outs == [()] and aux == []


def test_infer_shape_of_a_group_and_a_split():
    x = sym.Variable("x")
    fc = sym.FullyConnected(x, num_hidden=6, name="fc")
    parts = sym.split(fc, num_outputs=3, axis=1, name="sp")
    args, outs, _ = sym.Group([parts, fc]).infer_shape(x=(4, 2))
    assert args == [(4, 2), (6, 2), (6,)]
    assert outs == [(4, 2), (4, 2), (4, 2), (4, 6)]


# ---- JSON ------------------------------------------------------------------------------------

def _rich_model():
    data = sym.Variable("data")
    w = sym.Variable("proj_weight", shape=(6, 4))
    label = sym.Variable("label", dtype="int32")
    h = sym.FullyConnected(data, weight=w, num_hidden=6, name="proj")
    a, b = sym.split(h, num_outputs=2, axis=2, name="gates")
    h = sym.sigmoid(a, name="sg") * sym.tanh(b, name="th") + 0.5
    h = sym.Dropout(h, p=0.25, name="drop")
    h = sym.reshape(h, (0, 0, 3), name="rs")
    logits = sym.FullyConnected(h, num_hidden=3, name="out")
    loss = sym.softmax_cross_entropy(logits, label, name="loss")
    return sym.Group([loss, sym.mean(h, axis=(0, 1), name="avg")])


def _bind_and_run(s):
    rng = np.random.default_rng(3)
    shapes = {"data": (3, 2, 4), "label": (3, 2)}
    ex = s.simple_bind(backend="reference", dtype="float64", **shapes)
    for n, v in ex.arg_dict.items():
        ex.arg_dict[n][...] = rng.integers(0, 3, v.shape) if n == "label" \
            else rng.standard_normal(v.shape)
    outs = [o.copy() for o in ex.forward(is_train=True, seed=11)]
    ex.backward(out_grads=[np.array(1.0), np.ones(3)])
    return ex, outs


def test_json_round_trip_is_exact():
    model = _rich_model()
    text = model.tojson()
    again = sym.load_json(text)
    assert again.tojson() == text
    assert sym.load_json(again.tojson()).tojson() == text
    assert again.list_arguments() == model.list_arguments()
    assert again.list_outputs() == model.list_outputs()
    assert again.infer_shape(data=(3, 2, 4)) == model.infer_shape(data=(3, 2, 4))


def test_json_round_trip_gives_identical_numbers():
    model = _rich_model()
    ex1, out1 = _bind_and_run(model)
    ex2, out2 = _bind_and_run(sym.load_json(model.tojson()))
    for a, b in zip(out1, out2):
        np.testing.assert_array_equal(a, b)
    assert ex1.grad_dict.keys() == ex2.grad_dict.keys()
    for n in ex1.grad_dict:
        np.testing.assert_array_equal(ex1.grad_dict[n], ex2.grad_dict[n])


def test_save_and_load_a_file(tmp_path):
    model = _rich_model()
    path = tmp_path / "model.json"
    model.save(path)
    loaded = sym.load(path)
    assert loaded.tojson() == model.tojson()
    assert str(path.read_text()) == model.tojson()
    loaded2 = sym.load(str(path))
    assert loaded2.list_outputs() == ["loss_output", "avg_output"]


def _doc(**changes):
    import json

    doc = json.loads(sym.tanh(sym.Variable("x"), name="t").tojson())
    doc.update(changes)
    return json.dumps(doc)


@pytest.mark.parametrize("text, needle", [
    (_doc(version=99), "version 99"),
    (_doc(format="mxnet-symbol"), "mxnet-symbol"),
    ("{not json", "not JSON"),
    ("", "not JSON"),
])
def test_load_json_refuses(text, needle):
    with pytest.raises(SymRNNError, match=needle):
        sym.load_json(text)


@pytest.mark.parametrize("text", ["[]", '{"format": "symrnn-symbol", "version": 1}',
                                  _doc(version="2")])
def test_load_json_refuses_malformed_documents(text):
    with pytest.raises(SymRNNError):
        sym.load_json(text)


def test_two_op_nodes_with_one_name_are_refused_at_bind():
    x = sym.Variable("x")
    z = sym.tanh(x, name="dup") + sym.sigmoid(x, name="dup")
    with pytest.raises(SymRNNError, match="'dup'"):
        z.simple_bind(backend="reference", x=(2, 3))
    with pytest.raises(SymRNNError, match="'dup'"):
        z.bind(backend="reference", args={"x": np.ones((2, 3), "float32")})


def test_a_variable_named_like_an_op_node_is_refused():
    x = sym.Variable("x")
    z = sym.tanh(x, name="t") + sym.Variable("t")
    with pytest.raises(SymRNNError, match="'t'"):
        z.simple_bind(backend="reference", x=(2, 3), t=(2, 3))
