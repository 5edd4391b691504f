"""find_cells: the recurrent layers of a symbol recovered from its nodes, for factories and
hand-built cells; a node that only looks like a cell step is refused, not mistaken."""
import numpy as np
import pytest

import symrnn as sym
from symrnn.interop import UnsupportedExport, find_cells
from symrnn.symbol import _op

T, N, I = 4, 2, 3


def test_factory_stack():
    rnn = sym.RNNFactory([5, 4, 3], data_dim=I, typ="gru", bidirectional=True, dropout=0.2,
                         zoneout=[0.0, 0.1, 0.0], name="enc")
    all_h, last_h = rnn.step(sym.Variable("data"), seq_len=T)
    cells = find_cells(sym.Group([all_h[-1]] + last_h))
    assert [(c.prefix, c.layer, c.reverse, c.hidden, c.zoneout) for c in cells] == [
        ("enc_l0_", 0, False, 5, 0.0), ("enc_r0_", 0, True, 5, 0.0),
        ("enc_l1_", 1, False, 4, 0.1), ("enc_r1_", 1, True, 4, 0.1),
        ("enc_l2_", 2, False, 3, 0.0), ("enc_r2_", 2, True, 3, 0.0)]
    assert cells[3].params["h2h_weight"] == "enc_r1_h2h_weight"
    assert [c.initial[0][0].name for c in cells[:2]] == ["enc_l0_init_h", "enc_r0_init_h"]
    assert cells[1].last == 0 and cells[0].last == T - 1


def test_hand_built_cells(tmp_path):
    stack = sym.SequentialRNNCell()
    stack.add(sym.LSTMCell(6, prefix="a_", input_size=I))
    stack.add(sym.ZoneoutCell(sym.RNNCell(4, activation="relu", prefix="b_", input_size=6),
                              zoneout_states=0.25))
    out, states = stack.unroll(T, sym.Variable("data"))
    net = sym.Group([out] + states)
    cells = find_cells(net)
    assert [(c.prefix, c.typ, c.layer, c.zoneout) for c in cells] == [
        ("a_", "lstm", 0, 0.0), ("b_", "rnn_relu", 1, 0.25)]
    onnx = pytest.importorskip("onnxruntime")
    ex = net.simple_bind(backend="reference", grad_req="null", data=(T, N, I))
    rng = np.random.default_rng(0)
    for a in ex.arg_dict.values():
        a[...] = rng.uniform(-0.5, 0.5, a.shape)
    sess = onnx.InferenceSession(ex.export_onnx(tmp_path / "m.onnx"))
    got = sess.run(None, {i.name: ex.arg_dict[i.name] for i in sess.get_inputs()})
    for a, b in zip(got, ex.forward()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_one_step_reverse_cell_keeps_its_direction(tmp_path):
    """At T=1 both directions read the same; the factory's name says which is reverse, so
    the exported model is right at other T."""
    ort = pytest.importorskip("onnxruntime")
    rnn = sym.RNNFactory([3], data_dim=I, typ="lstm", bidirectional=True, name="m")
    net = rnn.step(sym.Variable("data"), seq_len=1, ret_typ="out")[-1]
    assert [c.reverse for c in find_cells(net)] == [False, True]
    ex = net.simple_bind(backend="reference", grad_req="null", data=(1, N, I))
    rng = np.random.default_rng(1)
    for a in ex.arg_dict.values():
        a[...] = rng.uniform(-0.5, 0.5, a.shape)
    sess = ort.InferenceSession(ex.export_onnx(tmp_path / "m.onnx"))
    longer = sym.RNNFactory([3], data_dim=I, typ="lstm", bidirectional=True, name="m").step(
        sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    ex_t = longer.simple_bind(backend="reference", grad_req="null", data=(T, N, I))
    ex_t.copy_params_from({n: a for n, a in ex.arg_dict.items() if n != "data"})
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    feeds = {i.name: ex.arg_dict[i.name] for i in sess.get_inputs()}
    got = sess.run(None, {**feeds, "data": x})[0]
    np.testing.assert_allclose(got, ex_t.forward(data=x)[0], rtol=1e-5, atol=1e-6)


def test_lookalike_step_is_refused():
    """An RNN step whose activation is a sigmoid is no cell that symrnn or ONNX knows."""
    cell = sym.RNNCell(4, prefix="x_", input_size=I)
    out, _ = cell.unroll(T, sym.Variable("data"))
    assert [c.typ for c in find_cells(out)] == ["rnn_tanh"]
    x, h = sym.Variable("data"), sym.Variable("x_init_h")
    w = {k: sym.Variable(f"y_{k}") for k in ("i2h_weight", "i2h_bias", "h2h_weight",
                                               "h2h_bias")}
    steps = []
    for t in range(2):
        i2h = sym.FullyConnected(sym.take_step(x, t), w["i2h_weight"], w["i2h_bias"], 4,
                                 name=f"y_t{t}_i2h")
        h2h = sym.FullyConnected(h, w["h2h_weight"], w["h2h_bias"], 4, name=f"y_t{t}_h2h")
        h = sym.tanh(_op("add", [i2h, sym.sigmoid(h2h)], f"y_t{t}_gates"), name=f"y_t{t}_h")
        steps.append(h)
    with pytest.raises(UnsupportedExport, match="'y_t0_gates' is not the add"):
        find_cells(sym.stack_steps(steps))
