"""Layer normalization `layer_norm=True` (issue 12, Ba et al. 2016): `W x` and `U h` each
normalized over their gate columns as torch.nn.LayerNorm, then the biases; the LSTM's cell
state normalized before its tanh. Against a PyTorch LayerNorm + LSTMCell-style loop with
copied weights, every backend against the reference and central differences in float64,
fused into the step kernel with its row reductions, exported and loaded, bad values refused."""
import numpy as np
import pytest

import symrnn as sym
from codegen.testing import load_sibling
from runtime.errors import ConfigError

checks = load_sibling(__file__, "feature_checks.py")
T, N, I = 3, 2, 4


def stack(typ="lstm", sizes=(5, 3), **kw):
    rnn = sym.RNNFactory(list(sizes), I, typ=typ, layer_norm=True, name="s", **kw)
    return checks.heads(rnn.step(sym.Variable("data"), seq_len=T))


QUICK = ("reference", "fused", "sim-fused")  # the unrolled programs compile many kernels


@pytest.mark.parametrize("typ, kw, dtype, backends", [
    ("lstm", {}, "float64", checks.AGREE),
    ("lstm", {"bidirectional": True, "zoneout": 0.3, "dropout": 0.2, "recurrent_dropout": 0.3,
              "cell_clip": 0.5, "proj_size": [2, 0], "weight_drop": 0.2}, "float32",
     ("reference", "fused")),  # cuda-sim: the cases above and below (52 s here alone)
    ("gru", {"zoneout": 0.2}, "float64", QUICK),
    ("rnn_tanh", {"dropout": 0.3}, "float32", QUICK),
], ids=["lstm", "lstm-everything", "gru", "rnn_tanh"])
def test_backends_agree(typ, kw, dtype, backends):
    checks.check_backends_agree(stack(typ, **kw), dtype, backends=backends, data=(T, N, I))


def test_variable_lengths_compose():
    rnn = sym.RNNFactory([4], I, layer_norm=True, zoneout=0.2, name="s")
    parts = rnn.step(sym.Variable("data"), seq_len=T,
                     sequence_length=sym.Variable("lengths", dtype="int32"))
    lengths = np.array([1, 3], np.int32)
    outs, _ = checks.check_backends_agree(checks.heads(parts), "float64", {"lengths": lengths},
                                          backends=("fused", "sim-fused"), data=(T, N, I),
                                          lengths=(N,))
    assert np.all(outs[0][1:, 0] == 0) and np.all(outs[0][:, 1] != 0)  # zeros past a length


@pytest.mark.parametrize("backend", ["reference", "fused", "unrolled", "sim-fused"])
def test_gradients_match_central_differences(backend):
    ex = checks.bind(stack(sizes=(4,), zoneout=0.2, cell_clip=0.8), backend, data=(T, N, I))
    checks.check_finite_differences(ex)


@pytest.mark.parametrize("backend", ["fused", "sim-fused"])
@pytest.mark.parametrize("typ", ["gru", "rnn_relu"])
def test_gradients_of_the_other_cells_match_central_differences(typ, backend):
    ex = checks.bind(stack(typ, (4,)), backend, data=(T, N, I))
    checks.check_finite_differences(ex)


# ---- against PyTorch ------------------------------------------------------------------------

def torch_layer_norm_lstm(torch, x, w, h0, c0):
    """The LayerNorm-LSTM cell loop: LayerNorm on x W^T and on h U^T (gates), then the
    biases; LayerNorm on c before the tanh of h; c carried unnormalized."""
    F = torch.nn.functional
    H = h0.shape[1]

    def ln(v, side, width):
        return F.layer_norm(v, (width,), w[side + "_gamma"], w[side + "_beta"], eps=1e-5)

    h, c, out = h0, c0, []
    for t in range(x.shape[0]):
        gates = (ln(x[t] @ w["i2h_weight"].T, "i2h", 4 * H) + w["i2h_bias"]
                 + ln(h @ w["h2h_weight"].T, "h2h", 4 * H) + w["h2h_bias"])
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(ln(c, "c", H))
        out.append(h)
    return torch.stack(out), h, c


@pytest.mark.parametrize("backend", ["reference", "fused", "unrolled", "sim-fused"])
def test_matches_a_pytorch_layer_norm_lstm_loop(backend):
    torch = pytest.importorskip("torch")
    H = 6
    rnn = sym.RNNFactory([H], I, layer_norm=True, name="m")
    all_h, _, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=T)
    symbol = sym.Group([all_h[0], last_h[0], last_c[0]])
    rng = np.random.default_rng(0)
    ex = checks.bind(symbol, backend, data=(T, N, I))
    values = {k: rng.normal(size=v.shape) for k, v in ex.arg_dict.items()}
    ex.copy_params_from(values)
    R = [rng.normal(size=o.shape) for o in ex.forward()]
    got, grads = checks.run(ex, R)

    leaf = {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}
    w = {k[len("m_l0_"):]: v for k, v in leaf.items() if k.startswith("m_l0_")}
    want = torch_layer_norm_lstm(torch, leaf["data"], w, w["init_h"], w["init_c"])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-10)
    sum(torch.sum(b * torch.tensor(r)) for b, r in zip(want, R)).backward()
    assert set(grads) == set(leaf)
    for name, v in leaf.items():
        np.testing.assert_allclose(grads[name], v.grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)


# ---- structure ------------------------------------------------------------------------------

def program(steps, layer_norm, layers=2):
    rnn = sym.RNNFactory([5] * layers, I, layer_norm=layer_norm, name="s")
    out = rnn.step(sym.Variable("data"), seq_len=steps, ret_typ="out")[-1]
    return checks.bind(out, "fused", data=(steps, N, I)).program


@pytest.mark.parametrize("layers", [1, 2])
def test_fused_program_has_one_kernel_per_layer_per_step(layers):
    """Forward and backward, as many step kernels as without layer norm, whatever T; the
    row reductions are inside them."""
    programs = {(steps, ln): program(steps, ln, layers) for steps in (3, 6)
                for ln in (False, True)}
    for (steps, ln), p in programs.items():
        assert p.stats["launches_forward"] == layers * steps
        assert p.stats["launches_backward"] == programs[steps, False].stats["launches_backward"]
    assert set(programs[3, True].kernels) == set(programs[6, True].kernels)
    kinds = {type(s).__name__ for k in programs[3, True].kernels.values() for s in k.ir.body}
    assert "Reduce" in kinds


def test_parameters_names_shapes_and_initial_values():
    rnn = sym.RNNFactory([5, 3], I, layer_norm=True, bidirectional=True, name="m")
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    args, _, _ = out.infer_shape(data=(T, N, I))
    shapes = dict(zip(out.list_arguments(), args))
    for p, H in (("m_l0_", 5), ("m_r0_", 5), ("m_l1_", 3), ("m_r1_", 3)):
        for side in ("i2h", "h2h"):
            assert shapes[f"{p}{side}_gamma"] == shapes[f"{p}{side}_beta"] == (4 * H,)
        assert shapes[p + "c_gamma"] == shapes[p + "c_beta"] == (H,)
    assert {s.name for s in rnn.params} >= {"m_l0_i2h_gamma", "m_r1_c_beta"}
    ex = out.simple_bind(backend="reference", data=(T, N, I))
    sym.init_params(ex)
    for name, v in ex.arg_dict.items():
        if name.endswith("_gamma"):
            assert np.all(v == 1), name
        elif name.endswith("_beta"):
            assert np.all(v == 0), name
    gru = sym.GRUCell(4, prefix="g_", input_size=I, layer_norm=True)
    assert gru.params["i2h_gamma"].infer_shape()[1] == [(12,)]
    assert "c_gamma" not in gru.params


def test_export_then_load(tmp_path):
    ex = checks.bind(stack(sizes=(4,), zoneout=0.2, dropout=0.3), "fused", "float32",
                     data=(T, N, I))
    checks.check_export_roundtrip(ex, tmp_path / "ln.zip")


def test_a_long_sequence_is_extrapolated_like_the_plain_stack():
    """Lazy symbols at T >= LAZY_FROM: the rolled program agrees with the reference."""
    from symrnn.lengths import LAZY_FROM

    steps = LAZY_FROM
    rnn = sym.RNNFactory([4], I, layer_norm=True, name="s")
    out = rnn.step(sym.Variable("data"), seq_len=steps, ret_typ="out")[-1]
    x = np.random.default_rng(0).normal(size=(steps, N, I))
    results = []
    for backend in ("reference", "fused"):
        ex = checks.bind(out, backend, data=(steps, N, I))
        results.append(checks.run(ex, [np.ones((steps, N, 4))], data=x))
    np.testing.assert_allclose(results[0][0][0], results[1][0][0], rtol=1e-10, atol=1e-12)
    for name, g in results[0][1].items():
        np.testing.assert_allclose(g, results[1][1][name], rtol=1e-9, atol=1e-11)


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0, [True]])
def test_a_layer_norm_that_is_not_a_bool_is_refused(value):
    with pytest.raises(ConfigError, match=f"'layer_norm' must be True or False, given "
                                          f"{value!r}".replace("[", "\\[").replace("]", "\\]")):
        sym.RNNFactory([4], 3, layer_norm=value)
    for cell in (sym.LSTMCell, sym.GRUCell, sym.RNNCell):
        with pytest.raises(ConfigError, match="'layer_norm'"):
            cell(4, input_size=3, layer_norm=value)


def test_a_refused_factory_leaves_a_bound_executor_intact():
    ex = checks.bind(stack(sizes=(4,)), "reference", data=(T, N, I))
    before = {k: v.copy() for k, v in ex.arg_dict.items()}
    out = ex.forward()[0].copy()
    with pytest.raises(ConfigError, match="'layer_norm'"):
        sym.RNNFactory([5, 3], I, layer_norm="true", name="s")
    for k, v in ex.arg_dict.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    np.testing.assert_array_equal(ex.forward()[0], out)


def test_onnx_and_pytorch_interop_refuse_layer_norm_by_name():
    from symrnn.interop import UnsupportedExport, find_cells

    with pytest.raises(UnsupportedExport, match="'s_l0_': layer_norm=True has no ONNX"):
        find_cells(stack(sizes=(4,)))
