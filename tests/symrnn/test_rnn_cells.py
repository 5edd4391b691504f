"""Cells: the protocol, node names, and forward values against a numpy re-implementation."""
import numpy as np
import pytest

import symrnn as sym
from runtime.errors import ConfigError

T, N, I, H = 4, 2, 3, 5
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


# ---- a numpy re-implementation of one step, written from DESIGN.md section 3 ---------------

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_step(typ, x, h, c, p):
    """New `(h, c)` of one step; `p` holds W, R, bW, bR."""
    xi = x @ p["W"].T + p["bW"]
    hh = h @ p["R"].T + p["bR"]
    if typ == "lstm":
        i, f, g, o = np.split(xi + hh, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    if typ == "gru":
        xr, xz, xn = np.split(xi, 3, axis=1)
        hr, hz, hn = np.split(hh, 3, axis=1)
        r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None
    act = np.tanh if typ == "rnn_tanh" else (lambda v: np.maximum(v, 0))
    return act(xi + hh), None


def np_layer(typ, xs, h, c, p, reverse=False, zoneout=0.0):
    """Outputs (time order) and final `(h, c)`; zoneout as its inference-time expectation."""
    outs = [None] * len(xs)
    for t in (reversed(range(len(xs))) if reverse else range(len(xs))):
        h_new, c_new = np_step(typ, xs[t], h, c, p)
        h = zoneout * h + (1 - zoneout) * h_new
        c = None if c is None else zoneout * c + (1 - zoneout) * c_new
        outs[t] = h
    return np.stack(outs), h, c


def make_cell(typ, hidden=H, prefix="c_", input_size=I, **kw):
    if typ == "lstm":
        return sym.LSTMCell(hidden, prefix=prefix, input_size=input_size, **kw)
    if typ == "gru":
        return sym.GRUCell(hidden, prefix=prefix, input_size=input_size, **kw)
    act = typ.split("_")[1]
    return sym.RNNCell(hidden, activation=act, prefix=prefix, input_size=input_size, **kw)


def randomize(ex, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    for v in ex.arg_dict.values():
        v[:] = rng.normal(size=v.shape) * scale
    return ex


def cell_params(ex, prefix):
    a = ex.arg_dict
    return {"W": a[prefix + "i2h_weight"], "R": a[prefix + "h2h_weight"],
            "bW": a[prefix + "i2h_bias"], "bR": a[prefix + "h2h_bias"]}


def init_states(ex, prefix):
    return ex.arg_dict[prefix + "init_h"], ex.arg_dict.get(prefix + "init_c")


def bind(symbol, **kw):
    return randomize(symbol.simple_bind(backend="reference", dtype="float64",
                                        data=(T, N, I), **kw))


# ---- protocol and names -------------------------------------------------------------------

@pytest.mark.parametrize("typ", list(GATES))
def test_parameter_and_state_shapes_follow_from_data(typ):
    cell = make_cell(typ, prefix="x_")
    outputs, states = cell.unroll(T, sym.Variable("data"))
    g = sym.Group([outputs] + states)
    args, outs, _ = g.infer_shape(data=(T, N, I))
    shapes = dict(zip(g.list_arguments(), args))
    G = GATES[typ]
    assert shapes["x_i2h_weight"] == (G * H, I)
    assert shapes["x_h2h_weight"] == (G * H, H)
    assert shapes["x_i2h_bias"] == shapes["x_h2h_bias"] == (G * H,)
    assert shapes["x_init_h"] == (N, H)
    assert outs[0] == (T, N, H)
    assert ("x_init_c" in shapes) == (typ == "lstm")


def test_weight_shape_without_input_size_is_inferred():
    cell = sym.GRUCell(H, prefix="g_")
    out, _ = cell.unroll(T, sym.Variable("data"))
    args, _, _ = out.infer_shape(data=(T, N, 7))
    assert dict(zip(out.list_arguments(), args))["g_i2h_weight"] == (3 * H, 7)


def test_begin_state_variables():
    cell = sym.LSTMCell(H, prefix="enc_")
    states = cell.begin_state()
    assert [s.name for s in states] == ["enc_init_h", "enc_init_c"]
    assert all(s.attr("kind") == "state" and s.attr("shape") == (0, H) for s in states)
    assert [i["shape"] for i in cell.state_info] == [(0, H), (0, H)]


def test_node_names_come_from_prefix_step_and_gate():
    cell = sym.LSTMCell(H, prefix="enc_", input_size=I)
    out, _ = cell.unroll(3, sym.Variable("data"))
    names = {n.name for n in out.topo_nodes() if n.op != "var"}
    for t in range(3):
        for part in ("data", "i2h", "h2h", "gates", "slice", "i", "f", "g", "o", "c", "h"):
            assert f"enc_t{t}_{part}" in names
    assert all(n.startswith("enc_") for n in names), sorted(names)
    # Built twice, a cell gives the same names: nothing comes from a global counter.
    again, _ = sym.LSTMCell(H, prefix="enc_", input_size=I).unroll(3, sym.Variable("data"))
    assert again.tojson() == out.tojson()


def test_call_numbers_steps_and_reset():
    cell = sym.RNNCell(H, prefix="r_", input_size=I)
    states = cell.begin_state()
    x = sym.Variable("x")
    out0, states = cell(x, states)
    out1, states = cell(out0 * 0 + x, states)
    assert (out0.name, out1.name) == ("r_t0_h", "r_t1_h")
    cell.reset()
    assert cell(x, cell.begin_state())[0].name == "r_t0_h"


def test_unroll_list_inputs_and_merge_options():
    cell = sym.GRUCell(H, prefix="g_", input_size=I)
    steps = [sym.Variable(f"x{t}") for t in range(T)]
    outs, states = cell.unroll(T, steps)
    assert isinstance(outs, list) and len(outs) == T and len(states) == 1
    merged, _ = cell.unroll(T, steps, merge_outputs=True)
    assert merged.name == "g_out"
    as_list, _ = cell.unroll(T, sym.Variable("data"), merge_outputs=False)
    assert isinstance(as_list, list)


# ---- values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("typ", list(GATES))
def test_cell_matches_numpy(typ):
    cell = make_cell(typ)
    out, states = cell.unroll(T, sym.Variable("data"))
    ex = bind(sym.Group([out] + states))
    got = ex.forward()
    h0, c0 = init_states(ex, "c_")
    want, h, c = np_layer(typ, ex.arg_dict["data"], h0, c0, cell_params(ex, "c_"))
    np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], h, rtol=1e-12, atol=1e-12)
    if typ == "lstm":
        np.testing.assert_allclose(got[2], c, rtol=1e-12, atol=1e-12)


def test_sequential_stack_matches_numpy():
    stack = sym.SequentialRNNCell()
    stack.add(sym.LSTMCell(H, prefix="a_", input_size=I))
    stack.add(sym.GRUCell(3, prefix="b_", input_size=H))
    assert stack.prefix == "a_" and len(stack.state_info) == 3
    out, states = stack.unroll(T, sym.Variable("data"))
    ex = bind(sym.Group([out] + states))
    got = ex.forward()
    a, _, _ = np_layer("lstm", ex.arg_dict["data"], *init_states(ex, "a_"),
                       cell_params(ex, "a_"))
    b, hb, _ = np_layer("gru", a, *init_states(ex, "b_"), cell_params(ex, "b_"))
    np.testing.assert_allclose(got[0], b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[3], hb, rtol=1e-12, atol=1e-12)
    # Stepping the stack by hand gives the same graph values as unrolling it.
    stack.reset()
    states = stack.begin_state()
    outs = []
    for t in range(T):
        o, states = stack(sym.take_step(sym.Variable("data"), t, name=f"a_t{t}_data"), states)
        outs.append(o)
    ex2 = sym.stack_steps(outs, name="a_out").simple_bind(
        backend="reference", dtype="float64", data=(T, N, I))
    ex2.copy_params_from(ex.arg_dict, allow_extra_params=True)
    np.testing.assert_array_equal(ex2.forward()[0], got[0])


@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_bidirectional_matches_numpy(typ):
    bi = sym.BidirectionalCell(make_cell(typ, prefix="f_"), make_cell(typ, prefix="r_"),
                               output_prefix="bi_")
    out, states = bi.unroll(T, sym.Variable("data"))
    assert out.name == "bi_out"
    ex = bind(sym.Group([out] + states))
    got = ex.forward()
    x = ex.arg_dict["data"]
    fwd, hf, _ = np_layer(typ, x, *init_states(ex, "f_"), cell_params(ex, "f_"))
    rev, hr, _ = np_layer(typ, x, *init_states(ex, "r_"), cell_params(ex, "r_"), reverse=True)
    np.testing.assert_allclose(got[0], np.concatenate([fwd, rev], axis=2), rtol=1e-12)
    k = 2 if typ == "lstm" else 1
    np.testing.assert_allclose(got[1], hf, rtol=1e-12)
    np.testing.assert_allclose(got[1 + k], hr, rtol=1e-12)


def test_bidirectional_cannot_be_stepped():
    bi = sym.BidirectionalCell(make_cell("gru", prefix="f_"), make_cell("gru", prefix="r_"))
    with pytest.raises(ConfigError, match="unroll"):
        bi(sym.Variable("x"), bi.begin_state())


@pytest.mark.parametrize("typ", ["lstm", "gru", "rnn_tanh"])
def test_zoneout_at_inference_is_the_expectation(typ):
    z = 0.3
    cell = sym.ZoneoutCell(make_cell(typ), zoneout_states=z)
    out, states = cell.unroll(T, sym.Variable("data"))
    ex = bind(sym.Group([out] + states))
    got = ex.forward(is_train=False)
    assert all(np.array_equal(a, b) for a, b in zip(got, ex.forward(is_train=False)))
    want, h, c = np_layer(typ, ex.arg_dict["data"], *init_states(ex, "c_"),
                          cell_params(ex, "c_"), zoneout=z)
    np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], h, rtol=1e-12, atol=1e-12)
    if typ == "lstm":
        np.testing.assert_allclose(got[2], c, rtol=1e-12, atol=1e-12)


def test_zoneout_in_training_keeps_or_replaces_each_unit():
    cell = sym.ZoneoutCell(make_cell("gru"), zoneout_states=0.5)
    out, _ = cell.unroll(T, sym.Variable("data"), merge_outputs=False)
    plain = make_cell("gru", prefix="c_")
    ref, _ = plain.unroll(T, sym.Variable("data"), merge_outputs=False)
    ex = bind(sym.Group(out))
    ys = ex.forward(is_train=True, seed=3)
    # Step 0: each unit is either the initial state or the plain cell's step-0 output.
    ex_ref = sym.Group(ref).simple_bind(backend="reference", dtype="float64", data=(T, N, I))
    ex_ref.copy_params_from(ex.arg_dict)
    y0 = ex_ref.forward()[0]
    h0 = ex.arg_dict["c_init_h"]
    kept = ys[0] == h0
    assert np.all(kept | (ys[0] == y0)) and 0 < kept.sum() < kept.size


def test_zoneout_rate_zero_equals_plain_cell_in_training():
    plain, _ = make_cell("lstm").unroll(T, sym.Variable("data"))
    zoned, _ = sym.ZoneoutCell(make_cell("lstm"), 0.0, 0.0).unroll(T, sym.Variable("data"))
    a, b = bind(plain), bind(zoned)
    assert np.array_equal(a.forward(is_train=True, seed=1)[0], b.forward(is_train=True, seed=1)[0])


def test_zoneout_outputs_mixes_with_previous_output():
    cell = sym.ZoneoutCell(make_cell("rnn_tanh"), zoneout_outputs=0.4)
    out, states = cell.unroll(T, sym.Variable("data"))
    ex = bind(sym.Group([out] + states))
    got = ex.forward(is_train=False)
    want, h, _ = np_layer("rnn_tanh", ex.arg_dict["data"], *init_states(ex, "c_"),
                          cell_params(ex, "c_"))
    prev, mixed = np.zeros_like(want[0]), []
    for y in want:
        prev = 0.4 * prev + 0.6 * y
        mixed.append(prev)
    np.testing.assert_allclose(got[0], np.stack(mixed), rtol=1e-12)
    np.testing.assert_allclose(got[1], h, rtol=1e-12)  # the state itself is not mixed


@pytest.mark.parametrize("mode", ["step", "sequence"])
def test_dropout_cell_masks_per_mode(mode):
    drop = sym.DropoutCell(0.5, prefix="d_", mode=mode)
    out, states = drop.unroll(T, sym.Variable("data"))
    assert states == []
    ex = sym.Group([out]).simple_bind(backend="reference", dtype="float64", data=(T, N, I))
    ex.arg_dict["data"][:] = 1.0
    y = ex.forward(is_train=True, seed=5)[0]
    assert set(np.unique(y)) <= {0.0, 2.0}
    same = all(np.array_equal(y[0], y[t]) for t in range(1, T))
    assert same == (mode == "sequence")
    np.testing.assert_array_equal(ex.forward(is_train=False)[0], 1.0)


def test_recurrent_dropout_only_touches_the_recurrent_product():
    cell = make_cell("lstm", recurrent_dropout=0.5)
    out, _ = cell.unroll(T, sym.Variable("data"))
    names = {n.name: n for n in out.topo_nodes()}
    drops = [n for n in names.values() if n.op == "dropout"]
    assert sorted(n.name for n in drops) == [f"c_t{t}_h2h_dropout" for t in range(T)]
    assert len({n.attrs["mask_id"] for n in drops}) == 1  # one mask per sequence
    assert all(names[f"c_t{t}_h2h"].inputs[0][0] is names[f"c_t{t}_h2h_dropout"]
               for t in range(T))
    plain, _ = make_cell("lstm").unroll(T, sym.Variable("data"))
    a, b = bind(out), bind(plain)
    np.testing.assert_array_equal(a.forward(is_train=False)[0], b.forward(is_train=False)[0])


# ---- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, arg", [
    ({"num_hidden": 0}, "num_hidden"), ({"num_hidden": -2}, "num_hidden"),
    ({"num_hidden": 2.5}, "num_hidden"), ({"num_hidden": 4, "input_size": 0}, "input_size"),
    ({"num_hidden": 4, "recurrent_dropout": 1.0}, "recurrent_dropout"),
    ({"num_hidden": 4, "recurrent_dropout": -0.1}, "recurrent_dropout"),
])
def test_cell_config_errors(kwargs, arg):
    with pytest.raises(ConfigError, match=arg):
        sym.LSTMCell(**kwargs)


def test_other_config_errors():
    with pytest.raises(ConfigError, match="activation"):
        sym.RNNCell(4, activation="sigmoid")
    with pytest.raises(ConfigError, match="zoneout_states"):
        sym.ZoneoutCell(sym.GRUCell(4), zoneout_states=1.0)
    with pytest.raises(ConfigError, match="dropout"):
        sym.DropoutCell(1.5)
    with pytest.raises(ConfigError, match="mode"):
        sym.DropoutCell(0.1, mode="batch")
    with pytest.raises(ConfigError, match="base_cell"):
        sym.ZoneoutCell("lstm", zoneout_states=0.1)
    cell = sym.GRUCell(4, prefix="g_")
    with pytest.raises(ConfigError, match="layout"):
        cell.unroll(T, sym.Variable("data"), layout="NTC")
    with pytest.raises(ConfigError, match="'inputs' has 2 steps"):
        cell.unroll(T, [sym.Variable("a"), sym.Variable("b")])
    with pytest.raises(ConfigError, match="'states' must hold 1"):
        cell(sym.Variable("x"), cell.begin_state() * 2)
    with pytest.raises(ConfigError, match="i2h_weight"):
        sym.GRUCell(4, i2h_weight="w")
