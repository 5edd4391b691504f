"""Gradients of RNNFactory stacks against central finite differences, in float64.

Two layers of per-layer sizes [5, 3], T=4, N=2, I=3, every cell type; plain and with each
kind of mask in training mode, the masks fixed by the seed (every evaluation runs
`forward(is_train=True, seed=7)`). The head is `sum_k <out_k, R_k>` over every output the
stack returns, with fixed random `R_k` passed as `out_grads`. Each argument (the data, every
weight and bias, every initial state) is checked along a random direction, and elementwise
on a few random coordinates.
"""
import numpy as np
import pytest

import symrnn as sym

T, N, I = 4, 2, 3
SEED, EPS = 7, 1e-6
TYPES = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
CONFIGS = {
    "plain": {},
    "dropout_step": {"dropout": [0.3, 0.4]},
    "dropout_sequence": {"dropout": 0.4, "dropout_mode": "sequence"},
    "zoneout": {"zoneout": [0.3, 0.5]},
    "recurrent_dropout": {"recurrent_dropout": 0.4},
}


def bound_stack(typ, **kw):
    rnn = sym.RNNFactory([5, 3], I, typ=typ, name="s", **kw)
    outs = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    ex = sym.Group([s for part in outs for s in part]).simple_bind(
        backend="reference", dtype="float64", data=(T, N, I))
    rng = np.random.default_rng(0)
    for v in ex.arg_dict.values():
        v[:] = rng.normal(size=v.shape) * 0.6
    return ex


def head(ex, R):
    outs = ex.forward(is_train=True, seed=SEED)
    return sum(float(np.sum(o * r)) for o, r in zip(outs, R))


def fd_along(ex, R, name, direction):
    x = ex.arg_dict[name]
    base = x.copy()
    x[:] = base + EPS * direction
    up = head(ex, R)
    x[:] = base - EPS * direction
    down = head(ex, R)
    x[:] = base
    return (up - down) / (2 * EPS)


def check_gradients(ex):
    rng = np.random.default_rng(1)
    R = [rng.normal(size=o.shape) for o in ex.forward(is_train=True, seed=SEED)]
    ex.backward(R)
    grads = {k: v.copy() for k, v in ex.grad_dict.items()}
    assert set(grads) == set(ex.arg_dict)
    for name, g in grads.items():
        assert np.any(g != 0), f"{name} got no gradient"
        v = rng.normal(size=g.shape)
        np.testing.assert_allclose(fd_along(ex, R, name, v), np.sum(g * v), rtol=1e-6,
                                   atol=1e-7, err_msg=name)
        for flat in rng.choice(g.size, size=min(2, g.size), replace=False):
            e = np.zeros(g.size)
            e[flat] = 1.0
            np.testing.assert_allclose(fd_along(ex, R, name, e.reshape(g.shape)),
                                       g.reshape(-1)[flat], rtol=1e-5, atol=1e-7,
                                       err_msg=f"{name}[{flat}]")


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("typ", TYPES)
def test_stack_gradients_match_finite_differences(typ, config):
    check_gradients(bound_stack(typ, **CONFIGS[config]))


@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_bidirectional_gradients_match_finite_differences(typ):
    check_gradients(bound_stack(typ, bidirectional=True, zoneout=0.2, dropout=0.3))
