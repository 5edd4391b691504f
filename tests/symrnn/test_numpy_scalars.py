"""numpy integer and float scalars (`np.int64(4)`, `np.float32(0.1)`: what array arithmetic
gives) are accepted wherever Python numbers are, and give the same symbol, the same program and
the same numbers; bools are still refused as sizes."""

import json

import numpy as np
import pytest

import symrnn as sym
from symrnn import ConfigError

INTS = [np.int64, np.int32, np.uint8]
FLOATS = [np.float32, np.float64, np.float16]


@pytest.mark.parametrize("cast", INTS)
def test_factory_sizes_and_seq_len(cast):
    def build(c):
        f = sym.RNNFactory(num_hidden=[c(4), c(3)], data_dim=c(2), zoneout=0.1)
        return sym.Group(f.step(sym.Variable("data"), seq_len=c(3), ret_typ="out"))
    assert build(cast).tojson() == build(int).tojson()
    assert sym.RNNFactory(num_hidden=cast(4), data_dim=2).num_hidden == [4]


@pytest.mark.parametrize("cast", FLOATS)
def test_factory_rates(cast):
    f = sym.RNNFactory(num_hidden=[4, 4], data_dim=2, dropout=cast(0.25),
                       zoneout=[cast(0.5), 0.0], recurrent_dropout=cast(0.125))
    assert f.dropout == [0.25, 0.25] and f.zoneout == [0.5, 0.0]
    assert f.recurrent_dropout == [0.125, 0.125]
    assert all(type(p) is float for p in f.dropout + f.zoneout)


@pytest.mark.parametrize("cast", INTS)
def test_cells_ops_and_variable_shapes(cast):
    cell = sym.LSTMCell(cast(4), prefix="c_", input_size=cast(3))
    outs, _ = cell.unroll(cast(2), sym.Variable("data"), merge_outputs=False)
    assert len(outs) == 2
    fc = sym.FullyConnected(sym.Variable("x"), num_hidden=cast(5), name="fc")
    assert fc.infer_shape(x=(2, 3))[1] == [(2, 5)]
    v = sym.Variable("v", shape=(cast(2), cast(0)))
    assert json.loads(v.tojson())["nodes"][0]["attrs"]["shape"] == [2, 0]
    emb = sym.Embedding(sym.Variable("t", dtype="int32"), input_dim=cast(7),
                        output_dim=cast(3), name="e")
    assert emb.infer_shape(t=(4,))[1] == [(4, 3)]


@pytest.mark.parametrize("cast", FLOATS)
def test_dropout_zoneout_and_scalar_arithmetic(cast):
    x = sym.Variable("x")
    for y in (sym.Dropout(x, p=cast(0.5)), x * cast(2.0), x / cast(4.0), cast(1.0) - x):
        ex = y.simple_bind(backend="reference", grad_req="null", x=(3,))
        ex.forward(x=np.ones(3, np.float32))


def test_simple_bind_shapes_and_seeds():
    x = sym.Variable("x")
    ex = sym.tanh(x).simple_bind(backend="cpu", seed=np.int64(5), x=(np.int64(2), np.int32(3)))
    assert ex.arg_dict["x"].shape == (2, 3) and ex.seed == 5
    a = ex.forward(is_train=True, seed=np.uint32(9))[0]
    b = ex.forward(is_train=True, seed=9)[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cast", FLOATS)
def test_optimizers_and_clipping(cast):
    params = {"w": np.ones(2, np.float32)}
    grads = {"w": np.full(2, 3.0, np.float32)}
    sym.SGD(lr=cast(0.5), momentum=cast(0.5), weight_decay=cast(0.0)).update(params, grads)
    sym.Adam(lr=cast(0.5), betas=(cast(0.5), cast(0.75)), eps=cast(1e-3)).update(params, grads)
    assert sym.clip_global_norm(grads, cast(1.0)) == pytest.approx(np.sqrt(18))
    assert np.linalg.norm(grads["w"]) == pytest.approx(1.0, rel=1e-5)


def test_model_helpers():
    lm = sym.CharLM(vocab_size=np.int64(11), embed_dim=np.int32(4), num_hidden=np.int64(5))
    assert lm.num_hidden == [5]
    ex, _ = lm.bind(np.int64(3), np.int64(2), backend="reference")
    sym.init_params(ex, seed=np.int64(3))
    first = {k: v.copy() for k, v in ex.arg_dict.items()}
    sym.init_params(ex, seed=3)
    for k, v in first.items():
        np.testing.assert_array_equal(ex.arg_dict[k], v)
    net = sym.tanh(sym.Variable("x"))
    assert sym.compare(net, backend="cpu", repeat=np.int64(1), reference=False, quiet=True,
                       x=(2, 3))["max_diff"] < 1e-5


@pytest.mark.parametrize("bad", [True, np.bool_(True), 2.0, np.float32(2.0), "2"])
def test_bools_floats_and_strings_are_still_not_sizes(bad):
    with pytest.raises(ConfigError, match="'num_hidden'"):
        sym.FullyConnected(sym.Variable("x"), num_hidden=bad)


@pytest.mark.parametrize("make", [
    lambda c, x: sym.FullyConnected(x, num_hidden=c(4), name="fc"),
    lambda c, x: sym.split(x, num_outputs=c(2), axis=c(1), name="sp"),
    lambda c, x: sym.slice_axis(x, axis=c(1), begin=c(0), end=c(2), name="sl"),
    lambda c, x: sym.concat(x, x, dim=c(1), name="cc"),
    lambda c, x: sym.reshape(x, shape=(c(2), -1), name="rs"),
    lambda c, x: sym.sum(x, axis=c(0), name="su"),
    lambda c, x: sym.mean(x, axis=(c(0), c(1)), name="me"),
    lambda c, x: sym.softmax(x, axis=c(1), name="sm"),
    lambda c, x: sym.broadcast_to(sym.Variable("b", shape=(1, 6)), shape=(c(4), c(6)), name="bt"),
    lambda c, x: sym.take_step(x, c(1), name="tk"),
    lambda c, x: sym.Embedding(sym.Variable("t", dtype="int32"), input_dim=c(3),
                               output_dim=c(2), name="em"),
    lambda c, x: sym.one_hot(sym.Variable("t", dtype="int32"), depth=c(3), name="oh"),
])
def test_op_attributes_from_numpy_integers_are_plain_json(make):
    """np.int64 attributes used to reach the symbol and break `tojson` (a raw TypeError)."""
    from_numpy = make(np.int64, sym.Variable("x")).tojson()
    assert from_numpy == make(int, sym.Variable("x")).tojson()
    assert sym.load_json(from_numpy).tojson() == from_numpy
