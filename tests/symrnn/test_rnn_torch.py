"""RNNFactory against PyTorch's nn.LSTM / nn.GRU / nn.RNN with copied weights, in float64:
outputs, final states and every gradient. Weights copy across unchanged (same gate order)."""
import numpy as np
import pytest

import symrnn as sym

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

T, N, I = 5, 3, 4
MODULES = {"lstm": ("LSTM", {}), "gru": ("GRU", {}),
           "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
           "rnn_relu": ("RNN", {"nonlinearity": "relu"})}
SHAPES = {"one_layer": (1, False), "two_layers": (2, False), "bidirectional": (2, True)}


def torch_names(layer, direction):
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    return {"i2h_weight": "weight_ih" + suffix, "h2h_weight": "weight_hh" + suffix,
            "i2h_bias": "bias_ih" + suffix, "h2h_bias": "bias_hh" + suffix}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("typ", list(MODULES))
def test_matches_pytorch(typ, shape):
    layers, bidirectional = SHAPES[shape]
    H, D = 6, 2 if bidirectional else 1
    cls, extra = MODULES[typ]
    net = getattr(torch.nn, cls)(I, H, num_layers=layers, bidirectional=bidirectional,
                                 dtype=torch.float64, **extra)
    rnn = sym.RNNFactory([H] * layers, I, typ=typ, bidirectional=bidirectional, name="m")
    outs = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    last_h, last_c = outs[2:] if typ == "lstm" else (outs[1], [])
    ex = sym.Group([outs[0][-1]] + last_h + last_c).simple_bind(
        backend="reference", dtype="float64", data=(T, N, I))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, N, I))
    h0 = rng.normal(size=(layers * D, N, H))
    c0 = rng.normal(size=(layers * D, N, H))
    ex.arg_dict["data"][:] = x
    params = dict(net.named_parameters())
    for layer in range(layers):
        for d in range(D):
            p, k = rnn.prefix(layer, d), layer * D + d
            for ours, theirs in torch_names(layer, d).items():
                ex.arg_dict[p + ours][:] = params[theirs].detach().numpy()
            ex.arg_dict[p + "init_h"][:] = h0[k]
            if typ == "lstm":
                ex.arg_dict[p + "init_c"][:] = c0[k]
    got = ex.forward(is_train=True, seed=1)

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    c0t = torch.tensor(c0, requires_grad=True)
    y, state = net(xt, (h0t, c0t) if typ == "lstm" else h0t)
    finals = list(state) if typ == "lstm" else [state]
    want = [y] + [s[k] for s in finals for k in range(layers * D)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-9)

    R = [rng.normal(size=a.shape) for a in got]
    ex.backward(R)
    sum(torch.sum(b * torch.tensor(r)) for b, r in zip(want, R)).backward()
    np.testing.assert_allclose(ex.grad_dict["data"], xt.grad.numpy(), rtol=1e-6, atol=1e-9)
    for layer in range(layers):
        for d in range(D):
            p, k = rnn.prefix(layer, d), layer * D + d
            for ours, theirs in torch_names(layer, d).items():
                np.testing.assert_allclose(ex.grad_dict[p + ours], params[theirs].grad.numpy(),
                                           rtol=1e-6, atol=1e-9, err_msg=p + ours)
            np.testing.assert_allclose(ex.grad_dict[p + "init_h"], h0t.grad[k].numpy(),
                                       rtol=1e-6, atol=1e-9)
            if typ == "lstm":
                np.testing.assert_allclose(ex.grad_dict[p + "init_c"], c0t.grad[k].numpy(),
                                           rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("typ", list(MODULES))
def test_per_layer_sizes_match_chained_pytorch_layers(typ):
    sizes = [5, 3]
    cls, extra = MODULES[typ]
    nets = [getattr(torch.nn, cls)(i, h, dtype=torch.float64, **extra)
            for i, h in zip([I] + sizes[:-1], sizes)]
    rnn = sym.RNNFactory(sizes, I, typ=typ, name="m")
    outs = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    ex = sym.Group([s for part in outs for s in part]).simple_bind(
        backend="reference", dtype="float64", data=(T, N, I))
    rng = np.random.default_rng(2)
    for v in ex.arg_dict.values():
        v[:] = rng.normal(size=v.shape)
    for layer, net in enumerate(nets):
        for ours, theirs in torch_names(0, 0).items():
            getattr(net, theirs).data[:] = torch.tensor(ex.arg_dict[f"m_l{layer}_{ours}"])
    got = ex.forward()

    y, all_h, last_h, all_c, last_c = torch.tensor(ex.arg_dict["data"]), [], [], [], []
    for layer, net in enumerate(nets):
        h0 = torch.tensor(ex.arg_dict[f"m_l{layer}_init_h"])[None]
        if typ == "lstm":
            c0 = torch.tensor(ex.arg_dict[f"m_l{layer}_init_c"])[None]
            y, (h, c) = net(y, (h0, c0))
            last_c.append(c[0])
            all_c.append(None)  # PyTorch does not return the cell-state sequence
        else:
            y, h = net(y, h0)
        all_h.append(y)
        last_h.append(h[0])
    if typ == "lstm":
        got = got[:2] + got[4:6] + got[6:]
        want = all_h + last_h + last_c
    else:
        want = all_h + last_h
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-9)
