"""RNNFactory: names, shapes, return structures, errors, and dropout/zoneout semantics."""
import numpy as np
import pytest

import symrnn as sym
from runtime.errors import ConfigError, ShapeError

T, N, I = 4, 2, 3
TYPES = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def heads(rnn, seq_len=T, **kw):
    """Every symbol `step(ret_typ='all')` returns, flattened in order."""
    return [s for part in rnn.step(sym.Variable("data"), seq_len=seq_len, **kw) for s in part]


def bind(symbol, seed=0, **shapes):
    ex = symbol.simple_bind(backend="reference", dtype="float64", data=(T, N, I), **shapes)
    rng = np.random.default_rng(seed)
    for v in ex.arg_dict.values():
        v[:] = rng.normal(size=v.shape) * 0.5
    return ex


def run(rnn, is_train=False, seed=0, params=None, ret_typ="out"):
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ=ret_typ)
    ex = bind(sym.Group(out[-1:] if ret_typ == "out" else [s for p in out for s in p]))
    if params is not None:
        ex.copy_params_from(params, allow_extra_params=True)
    return ex, ex.forward(is_train=is_train, seed=seed)


# ---- names and shapes from the data shape alone ---------------------------------------------

def expected_shapes(typ, sizes, bidirectional=False, name="lstm"):
    G, D, shapes, prev = GATES[typ], 2 if bidirectional else 1, {}, I
    for layer, h in enumerate(sizes):
        for d in "lr"[:D]:
            p = f"{name}_{d}{layer}_"
            shapes.update({p + "i2h_weight": (G * h, prev), p + "h2h_weight": (G * h, h),
                           p + "i2h_bias": (G * h,), p + "h2h_bias": (G * h,),
                           p + "init_h": (N, h)})
            if typ == "lstm":
                shapes[p + "init_c"] = (N, h)
        prev = D * h
    return shapes


@pytest.mark.parametrize("typ", TYPES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_names_and_shapes_inferred_from_data(typ, bidirectional):
    rnn = sym.RNNFactory([5, 3], I, typ=typ, bidirectional=bidirectional, name="lstm")
    g = sym.Group(heads(rnn))
    args, outs, _ = g.infer_shape(data=(T, N, I))
    got = dict(zip(g.list_arguments(), args))
    assert got.pop("data") == (T, N, I)
    assert got == expected_shapes(typ, [5, 3], bidirectional)
    D = 2 if bidirectional else 1
    assert outs[:2] == [(T, N, 5 * D), (T, N, 3 * D)]


def test_data_dim_none_is_inferred_and_states_are_state_arguments():
    rnn = sym.RNNFactory(4, None, typ="gru", name="enc")
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[0]
    args, _, _ = out.infer_shape(data=(T, N, 7))
    assert dict(zip(out.list_arguments(), args))["enc_l0_i2h_weight"] == (12, 7)
    assert rnn.init_h[0].attr("kind") == "state" and rnn.init_c is None
    assert [p.name for p in rnn.params] == [
        "enc_l0_i2h_weight", "enc_l0_i2h_bias", "enc_l0_h2h_weight", "enc_l0_h2h_bias"]


# ---- return structures ------------------------------------------------------------------------

def test_lstm_return_structures():
    rnn = sym.RNNFactory([5, 3], I, typ="lstm")
    all_h, all_c, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=T)
    assert [len(x) for x in (all_h, all_c, last_h, last_c)] == [2, 2, 2, 2]
    _, outs, _ = sym.Group(all_h + all_c + last_h + last_c).infer_shape(data=(T, N, I))
    assert outs == [(T, N, 5), (T, N, 3)] * 2 + [(N, 5), (N, 3)] * 2
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")
    assert isinstance(out, list) and [s.name for s in out] == ["lstm_l0_out", "lstm_l1_out"]
    hs, cs = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="state")
    assert [s.name for s in hs] == ["lstm_l0_t3_h", "lstm_l1_t3_h"]
    assert [s.name for s in cs] == ["lstm_l0_t3_c", "lstm_l1_t3_c"]


@pytest.mark.parametrize("typ", ["gru", "rnn_relu"])
def test_gru_and_rnn_return_structures(typ):
    rnn = sym.RNNFactory([5, 3], I, typ=typ, name="g")
    all_h, last_h = rnn.step(sym.Variable("data"), seq_len=T)
    assert len(all_h) == len(last_h) == 2
    last = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="state")
    assert isinstance(last, list) and [s.name for s in last] == ["g_l0_t3_h", "g_l1_t3_h"]


def test_bidirectional_structures_follow_pytorch_order():
    rnn = sym.RNNFactory([5, 3], I, typ="lstm", bidirectional=True, name="b")
    all_h, all_c, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=T)
    assert [s.name for s in last_h] == ["b_l0_t3_h", "b_r0_t0_h", "b_l1_t3_h", "b_r1_t0_h"]
    _, outs, _ = sym.Group(all_h + all_c + last_c).infer_shape(data=(T, N, I))
    assert outs == [(T, N, 10), (T, N, 6), (T, N, 10), (T, N, 6),
                    (N, 5), (N, 5), (N, 3), (N, 3)]


def test_list_data_given_symbols_and_prev_states():
    ws = [sym.Variable(f"w{k}") for k in range(2)]
    rnn = sym.RNNFactory([4, 4], I, typ="gru", i2h_weight=ws,
                         init_h=[sym.Variable("h0"), sym.Variable("h1")], name="g")
    steps = [sym.Variable(f"x{t}") for t in range(T)]
    all_h, _ = rnn.step(steps)
    args = sym.Group(all_h).list_arguments()
    assert {"w0", "w1", "h0", "h1"} <= set(args) and "g_l0_i2h_weight" not in args
    assert "g_l0_init_h" not in args
    out = rnn.step(steps, prev_h=[sym.Variable("p0"), sym.Variable("p1")], ret_typ="out")
    shapes = {f"x{t}": (N, I) for t in range(T)}
    args, _, _ = sym.Group(out).infer_shape(**shapes)
    got = dict(zip(sym.Group(out).list_arguments(), args))
    assert got["p0"] == (N, 4) and got["w0"] == (12, I) and got["w1"] == (12, 4)


# ---- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, arg", [
    ({"num_hidden": []}, "num_hidden"),
    ({"num_hidden": [5, 0]}, r"num_hidden\[1\]"),
    ({"num_hidden": [-3]}, r"num_hidden\[0\]"),
    ({"num_hidden": [2.5]}, r"num_hidden\[0\]"),
    ({"num_hidden": "5"}, "num_hidden"),
    ({"data_dim": 0}, "data_dim"),
    ({"data_dim": -1}, "data_dim"),
    ({"typ": "rnn"}, "typ"),
    ({"dropout_mode": "batch"}, "dropout_mode"),
    ({"dropout": 1.0}, "dropout"),
    ({"dropout": -0.1}, "dropout"),
    ({"dropout": [0.1, 1.2]}, r"dropout\[1\]"),
    ({"dropout": [0.1]}, "dropout"),
    ({"zoneout": 1.0}, "zoneout"),
    ({"zoneout": [0.1, 0.2, 0.3]}, "zoneout"),
    ({"recurrent_dropout": 2}, "recurrent_dropout"),
    ({"recurrent_dropout": [0.0]}, "recurrent_dropout"),
    ({"typ": "gru", "init_c": [sym.Variable("c0"), sym.Variable("c1")]}, "init_c"),
    ({"init_h": [sym.Variable("h0")]}, "init_h"),
    ({"h2h_bias": ["b0", "b1"]}, r"h2h_bias\[0\]"),
    ({"bidirectional": True, "i2h_weight": [sym.Variable("w0"), sym.Variable("w1")]},
     "i2h_weight"),
    ({"name": ""}, "name"),
])
def test_config_errors_name_the_argument(kwargs, arg):
    kw = {"num_hidden": [5, 3], "data_dim": I, **kwargs}
    with pytest.raises(ConfigError, match=arg):
        sym.RNNFactory(**kw)


def test_config_error_message_says_expected_and_given():
    with pytest.raises(ConfigError) as e:
        sym.RNNFactory([5, 3], I, zoneout=[0.1, 1.5])
    assert "zoneout[1]" in str(e.value) and "[0, 1)" in str(e.value) and "1.5" in str(e.value)
    with pytest.raises(ConfigError) as e:
        sym.RNNFactory([5, 3], I, dropout=[0.1, 0.2, 0.3])
    assert "one rate per layer (2)" in str(e.value) and "given 3" in str(e.value)


def test_step_errors():
    rnn = sym.RNNFactory([5, 3], I, typ="gru")
    data = sym.Variable("data")
    with pytest.raises(ConfigError, match="ret_typ"):
        rnn.step(data, seq_len=T, ret_typ="everything")
    with pytest.raises(ConfigError, match="seq_len"):
        rnn.step(data)
    with pytest.raises(ConfigError, match="seq_len"):
        rnn.step(data, seq_len=0)
    with pytest.raises(ConfigError, match="seq_len"):
        rnn.step([data, data], seq_len=3)
    with pytest.raises(ConfigError, match="prev_c"):
        rnn.step(data, seq_len=T, prev_c=[data, data])
    with pytest.raises(ConfigError, match="prev_h"):
        rnn.step(data, seq_len=T, prev_h=[data])
    with pytest.raises(ConfigError, match="data"):
        rnn.step("data", seq_len=T)


@pytest.mark.parametrize("state, shape", [("lstm_l0_init_h", (3, 5)),
                                          ("lstm_l1_init_c", (2, 4)),
                                          ("lstm_l0_init_c", (2, 5, 1))])
def test_wrong_initial_state_shape_at_bind(state, shape):
    rnn = sym.RNNFactory([5, 3], I, typ="lstm")
    g = sym.Group(heads(rnn))
    with pytest.raises(ShapeError, match=state):
        g.simple_bind(backend="reference", dtype="float64", data=(T, 2, I), **{state: shape})


def test_wrong_initial_state_array_at_forward():
    rnn = sym.RNNFactory([5], I, typ="gru")
    ex = bind(sym.Group(heads(rnn)))
    with pytest.raises(ShapeError, match="lstm_l0_init_h"):
        ex.forward(lstm_l0_init_h=np.zeros((3, 5)))


# ---- dropout, zoneout, recurrent dropout ------------------------------------------------------

@pytest.mark.parametrize("typ", TYPES)
def test_rate_zero_equals_plain_stack_in_training(typ):
    plain = sym.RNNFactory([5, 3], I, typ=typ)
    ex, want = run(plain, is_train=True, seed=3, ret_typ="all")
    for kw in ({"dropout": 0.0, "dropout_mode": "sequence"}, {"zoneout": [0.0, 0.0]},
               {"recurrent_dropout": 0.0},
               {"dropout": [0, 0], "zoneout": 0, "recurrent_dropout": 0}):
        _, got = run(sym.RNNFactory([5, 3], I, typ=typ, **kw), True, 3, ex.arg_dict, "all")
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), kw


@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_inference_is_deterministic_and_dropouts_are_identity(typ):
    plain = sym.RNNFactory([5, 3], I, typ=typ)
    ex, want = run(plain)
    noisy = sym.RNNFactory([5, 3], I, typ=typ, dropout=0.5, recurrent_dropout=0.3)
    ex2, got = run(noisy, params=ex.arg_dict)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(ex2.forward(is_train=False, seed=9)[0], got[0])
    zoned = sym.RNNFactory([5, 3], I, typ=typ, zoneout=0.3, dropout=0.5)
    ex3, a = run(zoned, params=ex.arg_dict)
    np.testing.assert_array_equal(ex3.forward(is_train=False)[0], a[0])
    assert not np.allclose(a[0], want[0])


def test_factory_zoneout_at_inference_matches_numpy():
    z = 0.25
    ex, got = run(sym.RNNFactory([5], I, typ="lstm", zoneout=z, name="z"), ret_typ="all")
    a = ex.arg_dict
    h, c = a["z_l0_init_h"], a["z_l0_init_c"]

    def sig(v):
        return 1 / (1 + np.exp(-v))

    hs, cs = [], []
    for x in a["data"]:
        gates = x @ a["z_l0_i2h_weight"].T + a["z_l0_i2h_bias"]
        gates = gates + h @ a["z_l0_h2h_weight"].T + a["z_l0_h2h_bias"]
        i, f, g, o = np.split(gates, 4, axis=1)
        c_new = sig(f) * c + sig(i) * np.tanh(g)
        h_new = sig(o) * np.tanh(c_new)  # from the cell before its own mix (Krueger et al.)
        h, c = z * h + (1 - z) * h_new, z * c + (1 - z) * c_new
        hs.append(h)
        cs.append(c)
    all_h, all_c, last_h, last_c = got
    np.testing.assert_allclose(all_h, np.stack(hs), rtol=1e-12)
    np.testing.assert_allclose(all_c, np.stack(cs), rtol=1e-12)
    np.testing.assert_allclose(last_h, h, rtol=1e-12)
    np.testing.assert_allclose(last_c, c, rtol=1e-12)


@pytest.mark.parametrize("kw", [{"dropout": 0.4}, {"dropout": 0.4, "dropout_mode": "sequence"},
                                {"zoneout": 0.4}, {"recurrent_dropout": 0.4}])
def test_same_seed_same_masks_other_seed_other_masks(kw):
    rnn = sym.RNNFactory([5, 3], I, typ="lstm", **kw)
    ex, first = run(rnn, is_train=True, seed=11)
    again = ex.forward(is_train=True, seed=11)[0]
    other = ex.forward(is_train=True, seed=12)[0]
    np.testing.assert_array_equal(first[0], again)
    assert not np.array_equal(first[0], other)


@pytest.mark.parametrize("p", [0.5, 0.2])
@pytest.mark.parametrize("mode", ["step", "sequence"])
def test_inverted_dropout_scaling_is_exact_with_ones_weights(p, mode):
    rnn = sym.RNNFactory([4, 3], I, typ="rnn_tanh", dropout=[0.0, p], dropout_mode=mode)
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    ex = out.simple_bind(backend="reference", dtype="float64", data=(T, N, I))
    for name, v in ex.arg_dict.items():
        v[:] = 1.0 if name.endswith("weight") else 0.0
    ex.arg_dict["data"][:] = np.linspace(-0.1, 0.1, T * N * I).reshape(T, N, I)
    plain = ex.forward(is_train=False)[0]
    y = ex.forward(is_train=True, seed=5)[0]  # a seed under which the small masks hit and miss
    dropped = y == 0
    np.testing.assert_allclose(y[~dropped], plain[~dropped] / (1 - p), rtol=1e-15, atol=0)
    if p == 0.5:
        np.testing.assert_array_equal(y[~dropped], plain[~dropped] * 2)
    assert 0 < dropped.sum() < dropped.size
    same = all(np.array_equal(dropped[0], dropped[t]) for t in range(1, T))
    assert same == (mode == "sequence")


def test_dropout_applies_to_what_feeds_the_next_layer():
    rnn = sym.RNNFactory([4, 3], I, typ="gru", dropout=[0.5, 0.0], name="d")
    all_h, last_h = rnn.step(sym.Variable("data"), seq_len=T)
    nodes = {n.name: n for n in all_h[1].topo_nodes()}
    assert nodes["d_l1_t2_i2h"].inputs[0][0].name == "d_l0_t2_dropout"
    assert nodes["d_l0_t2_h2h"].inputs[0][0].name == "d_l0_t1_h"  # not the dropped output
    assert last_h[0].name == "d_l0_t3_h"


def test_wrong_initial_state_shape_named_whatever_the_keyword_order():
    rnn = sym.RNNFactory([5, 3], I, typ="lstm")
    g = sym.Group(heads(rnn))
    with pytest.raises(ShapeError) as e:
        g.simple_bind(backend="reference", dtype="float64", lstm_l0_init_h=(3, 5),
                      data=(T, 2, I))
    assert "lstm_l0_init_h" in str(e.value)
