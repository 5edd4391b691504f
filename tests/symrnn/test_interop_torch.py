"""from_torch / to_torch: weights of nn.LSTM / nn.GRU / nn.RNN in and out of an executor. The
round trip is bit-exact; after from_torch, symrnn's outputs and gradients are PyTorch's; a
module of another configuration is refused by name and nothing changes."""
import numpy as np
import pytest

import symrnn as sym
from symrnn.interop import InteropError, from_torch, to_torch

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

T, N, I, H = 5, 3, 4, 6
MODULES = {"lstm": ("LSTM", {}), "gru": ("GRU", {}),
           "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
           "rnn_relu": ("RNN", {"nonlinearity": "relu"})}


def executor(typ, layers=2, bidirectional=False, hidden=H, dtype="float64", **kw):
    rnn = sym.RNNFactory([hidden] * layers, I, typ=typ, bidirectional=bidirectional,
                         name="m", **kw)
    outs = rnn.step(sym.Variable("data"), seq_len=T)
    last = outs[2] + outs[3] if typ == "lstm" else outs[1]
    return sym.Group([outs[0][-1]] + last).simple_bind(
        backend="reference", dtype=dtype, data=(T, N, I))


def module(typ, layers=2, bidirectional=False, dtype=torch.float64, **kw):
    cls, extra = MODULES[typ]
    return getattr(torch.nn, cls)(I, H, num_layers=layers, bidirectional=bidirectional,
                                  dtype=dtype, **{**extra, **kw})


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("typ", list(MODULES))
def test_outputs_and_gradients_match_pytorch(typ, bidirectional):
    torch.manual_seed(0)
    net, ex = module(typ, 2, bidirectional), executor(typ, 2, bidirectional)
    from_torch(net, ex)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, N, I))
    y, states = net(torch.tensor(x, requires_grad=True))
    hs = states if typ != "lstm" else torch.cat(states)
    head = rng.normal(size=y.shape)
    state_heads = rng.normal(size=hs.shape)
    ((y * torch.tensor(head)).sum() + (hs * torch.tensor(state_heads)).sum()).backward()

    outs = ex.forward(is_train=True, data=x)
    np.testing.assert_allclose(outs[0], y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.stack(outs[1:]), hs.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    ex.backward([head] + list(state_heads))
    for torch_name, p in net.named_parameters():
        layer, rev = torch_name.split("_l")[1].split("_")[0], "_reverse" in torch_name
        key = {"weight_ih": "i2h_weight", "weight_hh": "h2h_weight", "bias_ih": "i2h_bias",
               "bias_hh": "h2h_bias"}[torch_name.split("_l")[0]]
        name = f"m_{'r' if rev else 'l'}{layer}_{key}"
        np.testing.assert_allclose(ex.grad_dict[name], p.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_round_trip_is_bit_exact(typ):
    torch.manual_seed(1)
    src = module(typ, 2, True, dtype=torch.float32)
    ex = executor(typ, 2, True, dtype="float32")
    from_torch(src, ex)
    dst = module(typ, 2, True, dtype=torch.float32)
    to_torch(ex, dst)
    for (name, a), (_, b) in zip(src.named_parameters(), dst.named_parameters()):
        assert torch.equal(a, b), name
    again = executor(typ, 2, True, dtype="float32")
    from_torch(dst, again)
    for name, a in ex.arg_dict.items():
        np.testing.assert_array_equal(again.arg_dict[name], a)


def snapshot(ex):
    return {n: a.copy() for n, a in ex.arg_dict.items()}


def assert_unchanged(ex, before):
    for n, a in ex.arg_dict.items():
        np.testing.assert_array_equal(a, before[n])


@pytest.mark.parametrize("make, needle", [
    (lambda: module("lstm", 3), "num_layers=2 but the module has num_layers=3"),
    (lambda: module("lstm", 2, True), "bidirectional=False but the module has"),
    (lambda: module("gru", 2), "cells are \\['lstm'\\] but the module is 'gru'"),
    (lambda: module("lstm", 2, bias=False), "bias=False"),
    (lambda: module("lstm", 2, batch_first=True), "batch_first=True"),
    (lambda: module("lstm", 2, proj_size=3), "proj_size=3"),
    (lambda: torch.nn.LSTM(I, H + 1, num_layers=2, dtype=torch.float64),
     "hidden sizes are \\[6\\] but the module has hidden_size=7"),
    (lambda: torch.nn.Linear(I, H), "must be a torch nn.LSTM, nn.GRU or nn.RNN"),
])
def test_mismatched_module_is_refused(make, needle):
    ex = executor("lstm", 2)
    rng = np.random.default_rng(3)
    for a in ex.arg_dict.values():
        a[...] = rng.normal(size=a.shape)
    before = snapshot(ex)
    with pytest.raises(InteropError, match=needle):
        from_torch(make(), ex)
    assert_unchanged(ex, before)


def test_wrong_shaped_module_is_refused():
    ex = executor("lstm", 2)
    before = snapshot(ex)
    wrong = torch.nn.LSTM(I + 2, H, num_layers=2, dtype=torch.float64)  # input size 6, not 4
    with pytest.raises(sym.ShapeError, match="'weight_ih_l0' has shape \\(24, 6\\) but "
                                             "'m_l0_i2h_weight' has \\(24, 4\\)"):
        from_torch(wrong, ex)
    assert_unchanged(ex, before)
    target = torch.nn.LSTM(I + 2, H, num_layers=2, dtype=torch.float64)
    kept = [p.detach().clone() for p in target.parameters()]
    with pytest.raises(sym.ShapeError):
        to_torch(ex, target)
    assert all(torch.equal(a, b) for a, b in zip(kept, target.parameters()))


def test_batch_first_allowed_when_asked():
    ex = executor("gru", 1)
    net = module("gru", 1, batch_first=True)
    from_torch(net, ex, allow_batch_first=True)
    np.testing.assert_array_equal(ex.arg_dict["m_l0_h2h_weight"],
                                  net.weight_hh_l0.detach().numpy())
