"""`Executor.reshape` (issue 17, bug 4), as MXNet's: a new executor for other input shapes
that shares the parameter and gradient arrays, its program compiled once per shape and cached,
giving what a fresh bind gives."""
from __future__ import annotations

import numpy as np
import pytest

import symrnn as sym

I, H = 3, 4
EXECUTORS = {"reference": ("reference", False), "fused": ("cpu", True),
             "unrolled": ("cpu", False)}


def net(T: int, typ: str = "lstm"):
    rnn = sym.RNNFactory(num_hidden=[H, 2], data_dim=I, typ=typ, name="rnn", dropout=0.25)
    parts = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    return sym.Group([parts[0][-1], *parts[1]])


def bound(name: str, T=5, N=2, grad_req="write"):
    backend, fuse = EXECUTORS[name]
    ex = net(T).simple_bind(backend=backend, fuse=fuse, dtype="float64", grad_req=grad_req,
                            data=(T, N, I))
    rng = np.random.default_rng(0)
    ex.copy_params_from({n: rng.standard_normal(v.shape) * 0.5 for n, v in ex.arg_dict.items()})
    return ex


def run(ex, seed=3):
    rng = np.random.default_rng(1)
    ex.arg_dict["data"][...] = rng.standard_normal(ex.arg_dict["data"].shape)
    outs = [o.copy() for o in ex.forward(is_train=True, seed=seed)]
    ex.backward([rng.standard_normal(o.shape) for o in outs])
    return outs, {n: g.copy() for n, g in ex.grad_dict.items()}


def params(ex):
    return [n for n in ex.arg_dict if n.endswith(("weight", "bias"))]


def assert_same_run(a, b):
    (outs_a, grads_a), (outs_b, grads_b) = a, b
    for x, y in zip(outs_a, outs_b):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
    assert sorted(grads_a) == sorted(grads_b)
    for n, g in grads_a.items():
        np.testing.assert_allclose(g, grads_b[n], rtol=1e-12, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("name", EXECUTORS)
@pytest.mark.parametrize("T, N", [(5, 3), (5, 1), (7, 2)])
def test_reshape_matches_a_fresh_bind_and_shares_parameters(name, T, N):
    ex = bound(name)
    new = ex.reshape(data=(T, N, I)) if T == 5 else ex.reshape(symbol=net(T), data=(T, N, I))
    assert new.arg_dict["data"].shape == (T, N, I)
    for p in params(ex):
        assert new.arg_dict[p] is ex.arg_dict[p]
        assert new.grad_dict[p] is ex.grad_dict[p]
    fresh = net(T).simple_bind(backend=EXECUTORS[name][0],
                               fuse=EXECUTORS[name][1], dtype="float64", data=(T, N, I))
    fresh.copy_params_from(dict(new.arg_dict))  # shared parameters (and states, if kept)
    assert_same_run(run(new), run(fresh))


@pytest.mark.parametrize("name", EXECUTORS)
def test_an_update_through_one_is_seen_by_the_other(name):
    ex = bound(name)
    new = ex.reshape(data=(5, 4, I))
    before = run(new)
    w = "rnn_l0_i2h_weight"
    ex.arg_dict[w] += 0.5  # in place, as an optimizer does
    after = run(new)
    assert not np.allclose(before[0][0], after[0][0])
    sym.optim.SGD(0.1).step(new)  # an update through the new one is seen by the old one
    np.testing.assert_array_equal(ex.arg_dict[w], new.arg_dict[w])
    run(ex)
    np.testing.assert_array_equal(new.grad_dict[w], ex.grad_dict[w])


@pytest.mark.parametrize("name", ["fused", "reference"])
def test_a_seen_shape_reuses_its_program(name):
    ex = bound(name)
    first = ex.reshape(data=(5, 4, I))
    again = ex.reshape(data=(5, 4, I))
    from_first = first.reshape(data=(5, 4, I))
    assert again.engine is not first.engine
    if name == "fused":
        assert again.program is first.program is from_first.program
        back = first.reshape(data=(5, 2, I))
        assert back.program is ex.program
    assert_same_run(run(first), run(again))


def test_a_seen_length_reuses_its_program_whatever_the_symbol_object():
    ex = bound("fused")
    a = ex.reshape(symbol=net(7), data=(7, 2, I))
    b = ex.reshape(symbol=net(7), data=(7, 2, I))
    assert a.program is b.program


@pytest.mark.parametrize("shape", [(9, 2, I), (5, 2, I + 1), (5, 2)])
def test_refused_reshape_changes_nothing(shape):
    ex = bound("fused")
    before = run(ex)
    args = {n: v.copy() for n, v in ex.arg_dict.items()}
    with pytest.raises(sym.ShapeError, match="'data'"):
        ex.reshape(data=shape)
    for n, v in args.items():
        np.testing.assert_array_equal(ex.arg_dict[n], v)
    assert_same_run(before, run(ex))


def test_reshape_refuses_unknown_arguments_and_non_symbols():
    ex = bound("fused")
    with pytest.raises(sym.BindError, match="'nope'"):
        ex.reshape(nope=(1, 2))
    with pytest.raises(sym.BindError, match="'symbol'"):
        ex.reshape(symbol="lstm", data=(5, 2, I))


def test_reshape_keeps_grad_req():
    ex = bound("fused", grad_req="add")
    new = ex.reshape(data=(5, 3, I))
    assert new.grad_req == ex.grad_req
    run(new)
    first = {n: g.copy() for n, g in new.grad_dict.items()}
    run(new)
    for n, g in first.items():
        np.testing.assert_allclose(new.grad_dict[n], 2 * g, rtol=1e-12, atol=1e-12)


def test_a_loaded_artifact_cannot_reshape(tmp_path):
    import runtime

    ex = bound("fused")
    ex.export(tmp_path / "a.zip")
    loaded = runtime.load(tmp_path / "a.zip")
    with pytest.raises(sym.BindError, match="reshape"):
        loaded.reshape(data=(5, 3, I))


def _dense_executor():
    out = sym.dense(sym.Variable("data"), 3, name="fc")
    ex = out.simple_bind(data=(2, 5))
    ex.arg_dict["fc_weight"][...] = 1.0
    return ex


def test_a_parameter_whose_shape_would_change_is_refused():
    """As MXNet's reshape: a weight that could not be shared would silently start from
    zeros, so it is refused, naming it and both shapes; the executor is left as it was."""
    ex = _dense_executor()
    with pytest.raises(sym.BindError, match=r"'fc_weight' would be \(3, 7\).*\(3, 5\)"):
        ex.reshape(data=(2, 7))
    assert float(ex.arg_dict["fc_weight"].sum()) == 15.0
    ex.forward(data=np.ones((2, 5), np.float32))


def test_partial_shaping_or_naming_the_argument_allows_it():
    ex = _dense_executor()
    for new in (ex.reshape(data=(2, 7), partial_shaping=True),
                ex.reshape(data=(2, 7), fc_weight=(3, 7))):
        assert new.arg_dict["fc_weight"].shape == (3, 7)
        assert new.arg_dict["fc_bias"] is ex.arg_dict["fc_bias"]


def test_another_symbol_with_parameters_of_other_names_is_refused():
    ex = bound("fused")
    other = sym.RNNFactory(num_hidden=[H, 2], data_dim=I, name="other").step(
        sym.Variable("data"), seq_len=5, ret_typ="out")[-1]
    with pytest.raises(sym.BindError, match="'other_l0_i2h_weight'.*no such argument"):
        ex.reshape(symbol=other, data=(5, 2, I))
