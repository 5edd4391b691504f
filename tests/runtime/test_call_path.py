"""The per-call shortcuts of a streaming chunk (runtime.cpu.phase_plan, the engine's bound
arguments, the carrier's cached pairs): the numbers are those of the path they stand for, and
any change to what was checked takes the full path again."""
import numpy as np
import pytest

import symrnn as sym
from runtime.cpu import blas, phase_plan
from runtime.errors import BindError, ShapeError

I, H = 8, 512  # H=512: the one-row GEMVs run over the pool (the streaming bench's shape)


def chunk(grad_req="null", t=1, n=1):
    rnn = sym.RNNFactory(num_hidden=[H], data_dim=I, typ="lstm", name="lstm")
    got = rnn.step(sym.Variable("data"), seq_len=t, ret_typ="all")
    ex = sym.Group([got[0][-1], *got[2], *got[3]]).simple_bind(data=(t, n, I),
                                                               grad_req=grad_req)
    rng = np.random.default_rng(5)
    ex.copy_params_from({k: rng.uniform(-0.1, 0.1, a.shape).astype(a.dtype)
                         for k, a in ex.arg_dict.items()})
    return ex


PAIRS = {"lstm_l0_init_h": "lstm_l0_t0_h_output", "lstm_l0_init_c": "lstm_l0_t0_c_output"}


def unfused(monkeypatch):
    monkeypatch.setattr(phase_plan, "fused", lambda calls, threads, own=True: (calls, False))


def test_the_fused_phase_is_one_call_and_gives_the_same_bits(monkeypatch):
    ex = chunk()
    ex.forward()
    engine = ex.engine
    assert len(engine._phase_runs["forward"]) == 1 < len(engine._phase_calls["forward"])
    assert engine._blas_free["forward"]
    unfused(monkeypatch)
    plain = chunk()
    for _ in range(3):
        got, want = ex.forward(), plain.forward()
        for a, b in zip(got, want):
            assert np.array_equal(a, b)
        ex.carry_states(PAIRS)
        plain.carry_states(PAIRS)


def test_training_phases_fused_give_the_same_bits(monkeypatch):
    x = np.random.default_rng(1).standard_normal((3, 2, I)).astype(np.float32)
    runs = []
    for fuse in (True, False):
        if not fuse:
            unfused(monkeypatch)
        ex = chunk("write", t=3, n=2)
        outs = [o.copy() for o in ex.forward(is_train=True, data=x)]
        ex.backward([np.ones_like(o) for o in outs])
        runs.append((outs, {k: g.copy() for k, g in ex.grad_dict.items()}))
    (a, ga), (b, gb) = runs
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert all(np.array_equal(ga[k], gb[k]) for k in ga)


def test_a_phase_without_blas_leaves_openblas_as_it_is(monkeypatch):
    """A phase of symrnn's own C calls only reads OpenBLAS's thread count (one_pool, which
    sets it to 1 and back, is for phases that call a BLAS)."""
    ex = chunk()
    ex.forward()
    seen = []
    fake = blas.OpenBlas(seen.append, lambda: 3, {}, 32)
    monkeypatch.setattr(blas, "openblas", lambda: fake)
    ex.forward()
    assert seen == [] and ex.engine._threads[0] == 3
    with blas.one_pool() as n:
        assert n == 3 and seen == [1]
    assert seen == [1, 3]


def test_an_argument_array_swapped_in_is_bound():
    ex = chunk()
    ex.forward()
    swapped = np.full_like(ex.arg_dict["lstm_l0_init_h"], 0.25)
    dict.__setitem__(ex.arg_dict, "lstm_l0_init_h", swapped)  # bypasses ArgDict's copy
    got = ex.forward()[1].copy()
    ref = chunk()
    ref.arg_dict["lstm_l0_init_h"][...] = 0.25
    np.testing.assert_array_equal(got, ref.forward()[1])


def test_a_staged_argument_is_copied_at_every_call():
    """An argument the engine cannot bind (float64 here) is copied each call: the check of
    the bound arrays has nothing to stand for."""
    ex = chunk()
    engine = ex.engine
    args = dict(ex.arg_dict)
    args["data"] = np.zeros((1, 1, I))  # float64: staged
    first = [o.copy() for o in engine.forward(args, False, 0)]
    assert engine._bound is None
    args["data"][...] = 0.5
    second = engine.forward(args, False, 0)
    ref = chunk()
    ref.arg_dict["data"][...] = 0.5
    assert not np.array_equal(first[0], second[0])
    np.testing.assert_array_equal(second[0], ref.forward()[0])


def test_a_missing_argument_is_still_refused():
    ex = chunk()
    engine = ex.engine
    ex.forward()
    args = dict(ex.arg_dict)
    del args["data"]
    with pytest.raises(BindError, match="no array for argument 'data'"):
        engine.forward(args, False, 0)
    args["data"] = np.zeros(3, np.float32)
    with pytest.raises(ShapeError, match="'data' has shape"):
        engine.forward(args, False, 0)


def test_changed_pairs_are_checked_again():
    ex = chunk()
    ex.forward()
    pairs = dict(PAIRS)
    ex.carry_states(pairs)
    pairs["data"] = "lstm_l0_t0_h_output"  # the same dict object, now with a bad pair
    before = {k: a.copy() for k, a in ex.arg_dict.items()}
    with pytest.raises(ShapeError, match="argument 'data' has"):
        ex.carry_states(pairs)
    assert all(np.array_equal(ex.arg_dict[k], a) for k, a in before.items())


def test_carry_writes_the_array_now_bound():
    ex = chunk()
    out = ex.forward()
    ex.carry_states(PAIRS)
    mine = np.zeros_like(ex.arg_dict["lstm_l0_init_c"])
    ex.arg_dict.adopt("lstm_l0_init_c", mine)
    ex.carry_states(PAIRS)
    np.testing.assert_array_equal(mine, out[2])


def test_a_replaced_output_of_another_shape_is_refused_as_before():
    ex = chunk()
    ex.forward()
    ex.outputs[1] = np.zeros(7, np.float32)
    with pytest.raises(ValueError):
        ex.carry_states(PAIRS)
