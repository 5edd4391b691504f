"""Data of a length the unrolled symbol does not expect (issue 17, bug 2).

A stack unrolled for `seq_len` steps reads exactly that many: longer data used to be cut
silently (T=9 data on a 5-step symbol gave 5 steps). Every such shape is a ShapeError naming
the argument, at bind and at forward, and a refused forward changes nothing.
"""
from __future__ import annotations

import numpy as np
import pytest

import symrnn as sym

SEQ_LEN, N, I = 5, 2, 3


def factory_symbol():
    rnn = sym.RNNFactory(num_hidden=[4], data_dim=I, typ="lstm", name="rnn")
    out = rnn.step(sym.Variable("data"), seq_len=SEQ_LEN, ret_typ="out")
    return out[-1] if isinstance(out, list) else out


def cell_symbol():
    cell = sym.GRUCell(4, prefix="gru_")
    outputs, _ = cell.unroll(SEQ_LEN, sym.Variable("data"))
    return sym.Group(outputs)


SYMBOLS = {"factory": factory_symbol, "cell": cell_symbol}


@pytest.mark.parametrize("make", SYMBOLS)
@pytest.mark.parametrize("T", [SEQ_LEN + 4, SEQ_LEN + 1, SEQ_LEN - 2, 1])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_bind_refuses_another_length(make, T, backend):
    symbol = SYMBOLS[make]()
    with pytest.raises(sym.ShapeError, match="'data'") as refused:
        symbol.simple_bind(backend=backend, data=(T, N, I))
    message = str(refused.value)  # names the argument, the given and the expected shape
    assert f"({T}, {N}, {I})" in message and f"({SEQ_LEN}, " in message, message
    args = {n: np.zeros(s, "float32") for n, s in zip(
        symbol.list_arguments(), symbol.infer_shape(data=(SEQ_LEN, N, I))[0])}
    args["data"] = np.zeros((T, N, I), "float32")
    with pytest.raises(sym.ShapeError, match="'data'"):
        symbol.bind(backend=backend, args=args)


@pytest.mark.parametrize("make", SYMBOLS)
def test_infer_shape_gives_the_length(make):
    arg_shapes, _, _ = SYMBOLS[make]().infer_shape(data=(SEQ_LEN, N, I))
    assert arg_shapes[0] == (SEQ_LEN, N, I)
    with pytest.raises(sym.ShapeError):
        SYMBOLS[make]().infer_shape(data=(SEQ_LEN + 4, N, I))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("T", [SEQ_LEN + 4, SEQ_LEN - 1])
def test_forward_refuses_another_length_and_changes_nothing(backend, T):
    ex = factory_symbol().simple_bind(backend=backend, data=(SEQ_LEN, N, I))
    rng = np.random.default_rng(0)
    ex.copy_params_from({n: rng.standard_normal(v.shape).astype(v.dtype)
                         for n, v in ex.arg_dict.items()})
    outs = [o.copy() for o in ex.forward(is_train=True)]
    ex.backward([np.ones_like(o) for o in outs])
    args = {n: v.copy() for n, v in ex.arg_dict.items()}
    grads = {n: v.copy() for n, v in ex.grad_dict.items()}
    with pytest.raises(sym.ShapeError, match=rf"'data' has shape \({T}, {N}, {I}\)"):
        ex.forward(is_train=True, data=np.zeros((T, N, I), "float32"))
    for n, v in args.items():
        np.testing.assert_array_equal(ex.arg_dict[n], v)
    for n, g in grads.items():
        np.testing.assert_array_equal(ex.grad_dict[n], g)
    for a, b in zip(ex.outputs, outs):
        np.testing.assert_array_equal(a, b)


def test_length_survives_json():
    symbol = factory_symbol()
    again = sym.load_json(symbol.tojson())
    with pytest.raises(sym.ShapeError):
        again.simple_bind(backend="reference", data=(SEQ_LEN + 4, N, I))
