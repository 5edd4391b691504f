"""ONNX export: onnxruntime reproduces symrnn's inference outputs at the bound shape and,
through the dynamic axes, at another (T, N); the model passes onnx.checker; each layer takes
the form the README names; what has no ONNX form is refused by name."""
import subprocess
import sys

import numpy as np
import pytest

import symrnn as sym
from symrnn.interop import InteropError, UnsupportedExport
from symrnn.interop.onnx_cells import reorder_gates

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

T, N, I = 5, 3, 4
OTHER = (7, 2)  # another (T, N), reached through the dynamic axes
CASES = {
    "lstm_8_6": ("lstm", [8, 6], {}),
    "lstm_zoneout": ("lstm", [8, 6], {"zoneout": [0.3, 0.1]}),
    "gru_bidirectional": ("gru", [5, 3], {"bidirectional": True}),
    "rnn_relu": ("rnn_relu", [6, 4], {}),
    "gru_zoneout_bidirectional": ("gru", [4], {"zoneout": 0.2, "bidirectional": True}),
    "rnn_tanh_dropout": ("rnn_tanh", [5, 5], {"dropout": 0.3, "recurrent_dropout": 0.2}),
}


def stack(typ, hidden, seq_len, want_cells=False, **kw):
    rnn = sym.RNNFactory(hidden, data_dim=I, typ=typ, name="net", **kw)
    outs = rnn.step(sym.Variable("data"), seq_len=seq_len)
    if typ != "lstm":
        return sym.Group([outs[0][-1]] + outs[1])
    all_h, all_c, last_h, last_c = outs
    return sym.Group([all_h[-1]] + (all_c[:1] if want_cells else []) + last_h + last_c)


def bound(net, shape, params=None, backend="reference"):
    ex = net.simple_bind(backend=backend, grad_req="null", data=(shape[0], shape[1], I))
    rng = np.random.default_rng(1)
    for name, a in ex.arg_dict.items():
        a[...] = params[name] if params and name in params and name.endswith(
            ("weight", "bias")) else rng.uniform(-0.6, 0.6, a.shape)
    return ex


def run_onnx(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [o.name for o in sess.get_outputs()], sess.run(None, feeds)


@pytest.mark.parametrize("case", list(CASES))
def test_onnxruntime_reproduces_symrnn(case, tmp_path):
    typ, hidden, kw = CASES[case]
    ex = bound(stack(typ, hidden, T, **kw), (T, N))
    path = ex.export_onnx(tmp_path / "m.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    feeds = {i.name: ex.arg_dict[i.name] for i in model.graph.input}
    names, got = run_onnx(path, feeds)
    assert names == ex.output_names
    for a, b in zip(got, ex.forward()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    other = bound(stack(typ, hidden, OTHER[0], **kw), OTHER, params=ex.arg_dict)
    feeds = {n: other.arg_dict[n] for n in feeds}
    _, got = run_onnx(path, feeds)
    want = other.forward()
    assert got[0].shape == (OTHER[0], OTHER[1], want[0].shape[2])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def ops(model):
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("case, operator, scans", [
    ("lstm_8_6", "LSTM", 0), ("gru_bidirectional", "GRU", 0), ("rnn_relu", "RNN", 0),
    ("lstm_zoneout", None, 2), ("gru_zoneout_bidirectional", None, 2)])
def test_each_layer_takes_its_form(case, operator, scans, tmp_path):
    typ, hidden, kw = CASES[case]
    ex = bound(stack(typ, hidden, T, **kw), (T, N))
    model = onnx.load(ex.export_onnx(tmp_path / "m.onnx"))
    assert ops(model).count("Scan") == scans
    layers = len(hidden) * (2 if kw.get("bidirectional") else 1)
    if operator:
        nodes = [n for n in model.graph.node if n.op_type == operator]
        assert len(nodes) == layers
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
        assert attrs["hidden_size"] == hidden[0]
        if typ == "gru":
            assert attrs["linear_before_reset"] == 1
            assert sorted(onnx.helper.get_attribute_value(a) for n in nodes
                          for a in n.attribute if a.name == "direction") == [
                b"forward", b"forward", b"reverse", b"reverse"]


def test_names_and_dynamic_axes(tmp_path):
    ex = bound(stack("lstm", [8, 6], T), (T, N))
    model = onnx.load(ex.export_onnx(tmp_path / "m.onnx"))
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    assert inputs == {"data": ["T", "N", I], "net_l0_init_h": ["N", 8],
                      "net_l0_init_c": ["N", 8], "net_l1_init_h": ["N", 6],
                      "net_l1_init_c": ["N", 6]}
    assert [o.name for o in model.graph.output] == ex.output_names
    params = [n for n in ex.arg_dict if n.endswith(("weight", "bias"))]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    for name in params:
        assert inits[name].shape == ex.arg_dict[name].shape
    w = ex.arg_dict["net_l0_i2h_weight"]
    np.testing.assert_array_equal(inits["net_l0_i2h_weight"], reorder_gates(w, "lstm"))


def test_gate_reordering():
    h = 2
    rows = np.repeat(np.arange(4), h)  # symrnn's LSTM gates i, f, g, o -> 0, 1, 2, 3
    assert reorder_gates(rows, "lstm").tolist() == [0, 0, 3, 3, 1, 1, 2, 2]  # i, o, f, c
    assert reorder_gates(np.repeat(np.arange(3), h), "gru").tolist() == [1, 1, 0, 0, 2, 2]


def test_cell_state_sequence_uses_scan(tmp_path):
    ex = bound(stack("lstm", [5, 4], T, want_cells=True), (T, N))
    path = ex.export_onnx(tmp_path / "m.onnx")
    model = onnx.load(path)
    assert "Scan" in ops(model)
    _, got = run_onnx(path, {i.name: ex.arg_dict[i.name] for i in model.graph.input})
    for a, b in zip(got, ex.forward()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_dense_and_embedding_export(tmp_path):
    tokens = sym.Variable("tokens", dtype="int32")
    x = sym.embedding(tokens, vocab=11, dim=I)
    all_h = sym.RNNFactory([6], data_dim=I, typ="gru", name="lm").step(
        x, seq_len=T, ret_typ="out")
    net = sym.softmax(sym.dense(all_h[-1], 11, name="head"), axis=-1)
    ex = net.simple_bind(backend="cpu", grad_req="null", tokens=(T, N))
    rng = np.random.default_rng(2)
    for a in ex.arg_dict.values():
        if a.dtype.kind == "f":
            a[...] = rng.uniform(-0.5, 0.5, a.shape)
    ids = rng.integers(0, 11, (T, N)).astype(np.int32)
    path = ex.export_onnx(tmp_path / "lm.onnx")
    _, got = run_onnx(path, {"tokens": ids, "lm_l0_init_h": ex.arg_dict["lm_l0_init_h"]})
    np.testing.assert_allclose(got[0], ex.forward(tokens=ids)[0], rtol=1e-5, atol=1e-6)


def test_loss_is_refused_by_name(tmp_path):
    all_h = sym.RNNFactory([4], data_dim=I, name="m").step(sym.Variable("data"), seq_len=T,
                                                             ret_typ="out")
    loss = sym.softmax_cross_entropy(sym.reshape(all_h[-1], (-1, 4)), sym.Variable("label"),
                                     name="xent")
    ex = loss.simple_bind(backend="reference", grad_req="null", data=(T, N, I),
                          label=(T * N,))
    with pytest.raises(UnsupportedExport, match="'xent' \\(softmax_cross_entropy\\)"):
        ex.export_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_missing_folder_is_refused(tmp_path):
    ex = bound(stack("lstm", [4], T), (T, N))
    before = {n: a.copy() for n, a in ex.arg_dict.items()}
    with pytest.raises(InteropError, match="'path' .*does not exist"):
        ex.export_onnx(tmp_path / "no" / "such" / "m.onnx")
    for n, a in ex.arg_dict.items():
        np.testing.assert_array_equal(a, before[n])


def test_without_onnx_one_clear_error(tmp_path, monkeypatch):
    ex = bound(stack("gru", [4], T), (T, N))
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(sym.BackendUnavailable, match=r"\.\[onnx\]"):
        ex.export_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_importing_symrnn_needs_neither_onnx_nor_torch():
    code = ("import sys; sys.modules['onnx'] = None; sys.modules['torch'] = None; "
            "import symrnn, symrnn.interop; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'torch', "
            "'onnxruntime') and sys.modules[m] is not None), "
            "hasattr(symrnn.Executor, 'export_onnx'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=__file__.rsplit("/tests/", 1)[0])
    assert out.stdout.strip() == "[] True"  # and every executor has export_onnx


def test_cli_export_format_onnx(tmp_path):
    from symrnn.cli import main

    path = tmp_path / "cli.onnx"
    assert main(["export", "--hidden", "6,4", "--zoneout", "0.2", "-I", "3", "-T", "4",
                 "-N", "2", "--format", "onnx", str(path)]) == 0
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert model.graph.input[0].name == "data"


def test_loaded_artifact_exports(tmp_path):
    """An executor loaded from symrnn's zip (runtime.load) exports from its symbol.json."""
    import runtime

    ex = bound(stack("lstm", [4], T), (T, N), backend="cpu")
    ex.export(tmp_path / "m.zip")
    loaded = runtime.load(tmp_path / "m.zip")
    path = loaded.export_onnx(tmp_path / "m.onnx")
    _, got = run_onnx(path, {n: ex.arg_dict[n] for n in ["data", "net_l0_init_h",
                                                          "net_l0_init_c"]})
    np.testing.assert_allclose(got[0], ex.forward()[0], rtol=1e-5, atol=1e-5)
