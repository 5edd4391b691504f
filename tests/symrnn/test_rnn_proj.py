"""LSTM projection `proj_size=P` (issue 12) against torch.nn.LSTM(proj_size=P) with copied
weights: outputs, final states and every gradient, on the reference, fused and unrolled CPU
and cuda-sim; per-layer sizes, bidirectional; exported; bad sizes refused."""
import numpy as np
import pytest

import symrnn as sym
from codegen.testing import load_sibling
from runtime.errors import ConfigError

checks = load_sibling(__file__, "feature_checks.py")
torch = pytest.importorskip("torch")
T, N, I, H = 4, 3, 5, 6
NAMES = {"i2h_weight": "weight_ih", "h2h_weight": "weight_hh", "i2h_bias": "bias_ih",
         "h2h_bias": "bias_hh", "h2r_weight": "weight_hr"}


def symbol_of(proj, layers, bidirectional, **kw):
    rnn = sym.RNNFactory([H] * layers, I, proj_size=proj, bidirectional=bidirectional,
                         name="m", **kw)
    all_h, _, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=T)
    return rnn, sym.Group([all_h[-1], *last_h, *last_c])


def torch_params(rnn, net, D, layers, h0, c0) -> dict:
    params = dict(net.named_parameters())
    values = {}
    for layer in range(layers):
        for d in range(D):
            p, k = rnn.prefix(layer, d), layer * D + d
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            for ours, theirs in NAMES.items():
                if theirs + suffix in params:
                    values[p + ours] = params[theirs + suffix].detach().numpy().copy()
            values[p + "init_h"], values[p + "init_c"] = h0[k], c0[k]
    return values


@pytest.mark.parametrize("backend", ["reference", "fused", "unrolled", "sim-fused"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bidir"])
def test_matches_pytorch_lstm_with_projection(bidirectional, backend):
    layers, P, D = 2, 4, 2 if bidirectional else 1
    net = torch.nn.LSTM(I, H, num_layers=layers, proj_size=P, bidirectional=bidirectional,
                        dtype=torch.float64)
    rnn, symbol = symbol_of(P, layers, bidirectional)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, N, I))
    h0, c0 = rng.normal(size=(layers * D, N, P)), rng.normal(size=(layers * D, N, H))
    values = torch_params(rnn, net, D, layers, h0, c0)
    ex = checks.bind(symbol, backend, params={**values, "data": x}, data=(T, N, I))
    assert set(ex.arg_dict) == set(values) | {"data"}
    R = [rng.normal(size=o.shape) for o in ex.forward()]
    got, grads = checks.run(ex, R)

    xt = torch.tensor(x, requires_grad=True)
    h0t, c0t = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    y, (hn, cn) = net(xt, (h0t, c0t))
    want = [y] + [hn[k] for k in range(layers * D)] + [cn[k] for k in range(layers * D)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-9)
    sum(torch.sum(b * torch.tensor(r)) for b, r in zip(want, R)).backward()
    np.testing.assert_allclose(grads["data"], xt.grad.numpy(), rtol=1e-7, atol=1e-9)
    theirs = torch_params(rnn, net, D, layers, h0t.grad.numpy(), c0t.grad.numpy())
    params = dict(net.named_parameters())
    for name in values:
        if not name.endswith(("init_h", "init_c")):
            layer, d = int(name[3]), name[2] == "r"
            key = NAMES[name[5:]] + f"_l{layer}" + ("_reverse" if d else "")
            theirs[name] = params[key].grad.numpy()
        np.testing.assert_allclose(grads[name], theirs[name], rtol=1e-7, atol=1e-9,
                                   err_msg=name)


def test_per_layer_projection_and_shapes():
    rnn, symbol = symbol_of([3, 0], 2, True, zoneout=0.2)
    args, outs, _ = symbol.infer_shape(data=(T, N, I))
    shapes = dict(zip(symbol.list_arguments(), args))
    assert shapes["m_l0_h2r_weight"] == shapes["m_r0_h2r_weight"] == (3, H)
    assert shapes["m_l0_h2h_weight"] == (4 * H, 3) and shapes["m_l0_init_h"] == (N, 3)
    assert shapes["m_l1_i2h_weight"] == (4 * H, 6) and "m_l1_h2r_weight" not in shapes
    assert outs[0] == (T, N, 2 * H) and outs[1] == (N, 3) and outs[-1] == (N, H)
    assert [p.name for p in rnn.params][-2:] == ["m_l0_h2r_weight", "m_r0_h2r_weight"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backends_agree_with_masks(dtype):
    _, symbol = symbol_of([3, 2], 2, True, zoneout=0.3, dropout=0.2, recurrent_dropout=0.2,
                          cell_clip=0.5)
    checks.check_backends_agree(symbol, dtype, data=(T, N, I))


@pytest.mark.parametrize("backend", ["reference", "fused", "sim-fused"])
def test_gradients_match_central_differences(backend):
    _, symbol = symbol_of([3, 4], 2, False, zoneout=0.2)
    checks.check_finite_differences(checks.bind(symbol, backend, data=(T, N, I)))


def test_fused_program_keeps_one_elementwise_kernel_per_layer_per_step():
    _, symbol = symbol_of(3, 2, False)
    program = checks.bind(symbol, "fused", data=(T, N, I)).program
    assert program.stats["launches_forward"] == 2 * T


def test_export_then_load(tmp_path):
    _, symbol = symbol_of(3, 2, True, zoneout=0.1)
    ex = checks.bind(symbol, "fused", "float32", data=(T, N, I))
    checks.check_export_roundtrip(ex, tmp_path / "proj.zip")


@pytest.mark.parametrize("proj", [-1, 2.5, "3", True, [2]])
def test_bad_projection_is_refused(proj):
    with pytest.raises(ConfigError, match="'proj_size' must"):
        sym.RNNFactory([4, 4], 3, proj_size=proj)


@pytest.mark.parametrize("typ", ["gru", "rnn_tanh", "rnn_relu"])
def test_projection_on_a_cell_without_it_is_refused(typ):
    with pytest.raises(ConfigError, match="'proj_size' is only for typ='lstm'.*given 2"):
        sym.RNNFactory([4], 3, typ=typ, proj_size=2)
    sym.RNNFactory([4], 3, typ=typ, proj_size=0)  # 0 is no projection


def test_h2r_weight_without_projection_is_refused():
    with pytest.raises(ConfigError, match="'h2r_weight' is only for proj_size > 0"):
        sym.LSTMCell(4, input_size=3, h2r_weight=sym.Variable("w"))


@pytest.mark.parametrize("clip", [None, 0.5])
def test_from_torch_and_to_torch_carry_the_projection(clip):
    from symrnn.interop import from_torch, to_torch

    torch.manual_seed(0)
    net = torch.nn.LSTM(I, H, num_layers=2, proj_size=3, bidirectional=True,
                        dtype=torch.float64)
    _, symbol = symbol_of(3, 2, True, cell_clip=clip)
    ex = checks.bind(symbol, "reference", data=(T, N, I))
    from_torch(net, ex)
    assert np.array_equal(ex.arg_dict["m_r1_h2r_weight"], net.weight_hr_l1_reverse.detach())
    back = torch.nn.LSTM(I, H, num_layers=2, proj_size=3, bidirectional=True,
                         dtype=torch.float64)
    to_torch(ex, back)
    for (name, a), (_, b) in zip(net.named_parameters(), back.named_parameters()):
        assert torch.equal(a, b), name
    other = torch.nn.LSTM(I, H, num_layers=2, proj_size=2, bidirectional=True)
    with pytest.raises(sym.SymRNNError, match="projection sizes are \\[3\\] but the module "
                                              "has proj_size=2"):
        from_torch(other, ex)


def test_onnx_export_refuses_projection_and_clip(tmp_path):
    pytest.importorskip("onnx")
    from symrnn.interop import export_onnx

    for kw in ({"proj_size": 3}, {"cell_clip": 0.5}):
        rnn = sym.RNNFactory([H], I, name="m", **kw)
        out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
        ex = out.simple_bind(backend="reference", data=(T, N, I))
        with pytest.raises(sym.SymRNNError, match="no ONNX"):
            export_onnx(ex, tmp_path / "m.onnx")
