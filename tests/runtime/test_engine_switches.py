"""The CPU engine's switches (SYMRNN_BIG_GEMM, SYMRNN_LOOP_ROWS) are read when the engine is
built: the steps it builds later, at its first call, keep the path it was built with."""
from functools import partial

import numpy as np
import pytest

import symrnn as sym
from runtime.cpu import blas

T, N, I, H = 16, 3, 5, 6


def executor():
    rnn = sym.RNNFactory(num_hidden=[H], data_dim=I, typ="lstm")
    net = sym.Group([rnn.step(sym.Variable("data"), seq_len=T)[0][-1]])
    ex = net.simple_bind(backend="cpu", data=(T, N, I))
    sym.init_params(ex, seed=0)
    return ex


def names(call) -> set:
    """The C functions a built call reaches (through partials and in_order)."""
    found = set()
    if isinstance(call, partial):
        found.add(getattr(call.func, "__name__", ""))
        for a in call.args:
            found |= names(a)
    return found


def run(ex):
    x = np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32)
    out = ex.forward(is_train=True, data=x)[0].copy()
    ex.backward([np.ones_like(out)])
    return out, {n: g.copy() for n, g in ex.grad_dict.items()}


@pytest.mark.parametrize("blocked", [False, True])
def test_the_big_gemm_path_is_the_one_the_engine_was_built_with(blocked, monkeypatch):
    if not blocked and blas.openblas() is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS")
    monkeypatch.setenv("SYMRNN_BIG_GEMM", "blocked" if blocked else "blas")
    ex = executor()
    monkeypatch.setenv("SYMRNN_BIG_GEMM", "blas" if blocked else "blocked")  # the other one
    out, grads = run(ex)  # builds the steps that read `data` now
    reached = set().union(*(names(c) for c in ex.engine.train._calls))
    big = {n for n in reached if n.startswith(("symrnn_big_", "symrnn_blas_"))}
    assert big and all(n.startswith("symrnn_big_" if blocked else "symrnn_blas_") for n in big)
    monkeypatch.delenv("SYMRNN_BIG_GEMM")
    ref_out, ref_grads = run(executor())
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
    for n, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[n], rtol=1e-4, atol=1e-5, err_msg=n)


def test_the_loop_split_is_read_when_the_engine_is_built(monkeypatch):
    monkeypatch.setenv("SYMRNN_LOOP_ROWS", "0")
    ex = executor()
    monkeypatch.delenv("SYMRNN_LOOP_ROWS")
    assert not ex.engine.train.loop_rows
    run(ex)
    reached = set().union(*(names(c) for c in ex.engine.train._calls))
    assert "symrnn_loop_rows" not in reached and "symrnn_loop_run" in reached
    assert executor().engine.train.loop_rows
