"""`init_params` touches the declared parameters only (issue 17, bug 3).

A plain `simple_bind` asks for gradients of every argument, and `init_params` used to fill
whatever had a gradient: data and initial states included. Parameters are what the factory,
the cells, `FullyConnected` and `Embedding` declare (Variables marked `kind="param"`, a
weight the user hands a cell included), whatever `grad_req` says.
"""
from __future__ import annotations

import numpy as np
import pytest

import symrnn as sym

T, N, I = 3, 2, 4


def lstm_stack(**weights):
    rnn = sym.RNNFactory(num_hidden=[5, 3], data_dim=I, typ="lstm", name="rnn",
                         bidirectional=True, **weights)
    all_h, _, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=T)
    return sym.Group([sym.FullyConnected(all_h[-1], num_hidden=2, name="fc"), *last_h,
                      *last_c])


def rnn_params(symbol):
    return [a for a in symbol.list_arguments() if a.endswith(("weight", "bias"))]


@pytest.mark.parametrize("grad_req", ["write", "add", "null", "params-null"])
def test_only_parameters_are_drawn(grad_req):
    symbol = lstm_stack()
    params = rnn_params(symbol)
    if grad_req == "params-null":
        grad_req = {a: ("null" if a in params else "write") for a in symbol.list_arguments()}
    ex = symbol.simple_bind(backend="reference", grad_req=grad_req, data=(T, N, I))
    others = [a for a in symbol.list_arguments() if a not in params]
    assert "data" in others and any(a.endswith("init_c") for a in others)
    marked = {a: np.full(ex.arg_dict[a].shape, 0.25, ex.arg_dict[a].dtype) for a in others}
    ex.copy_params_from(marked)
    sym.init_params(ex, seed=0)
    for a in others:
        np.testing.assert_array_equal(ex.arg_dict[a], marked[a], err_msg=a)
    for a in params:
        assert np.abs(ex.arg_dict[a]).max() > 0, a


def test_a_weight_given_to_the_factory_is_a_parameter():
    shared = sym.Variable("shared_h2h", shape=(20, 5))
    rnn = sym.RNNFactory(num_hidden=[5], data_dim=I, typ="lstm", name="rnn",
                         h2h_weight=[shared])
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")
    symbol = out[-1] if isinstance(out, list) else out
    ex = symbol.simple_bind(backend="reference", data=(T, N, I))
    sym.init_params(ex, seed=0)
    assert np.abs(ex.arg_dict["shared_h2h"]).max() > 0
    assert not ex.arg_dict["data"].any()


def test_embedding_and_dense_weights_are_parameters():
    tokens = sym.Variable("tokens", dtype="int32")
    x = sym.embedding(tokens, vocab=7, dim=3, name="emb")
    y = sym.dense(x, 2, name="out")
    ex = y.simple_bind(backend="reference", tokens=(4,))
    sym.init_params(ex, seed=1)
    for a in ("emb_weight", "out_weight", "out_bias"):
        assert np.abs(ex.arg_dict[a]).max() > 0, a
    assert not ex.arg_dict["tokens"].any()


def test_names_still_choose():
    ex = lstm_stack().simple_bind(backend="reference", data=(T, N, I))
    sym.init_params(ex, names=["data"], seed=0)
    assert np.abs(ex.arg_dict["data"]).max() > 0
    assert not ex.arg_dict["rnn_l0_i2h_weight"].any()
