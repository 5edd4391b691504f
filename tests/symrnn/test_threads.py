"""Executors and Python threads (issue 17).

Two executors used from two threads at once give the results they give alone, bit for bit
(the CPU engine's GEMM thread pool and the kernels' control blocks are per call or per engine,
and a phase is told the BLAS thread count another thread's phase found: runtime.cpu.blas's
one_pool; before, it was told 1, and the splits of its products rounded otherwise). One
executor used from two threads at once is refused with a BusyError (a per-executor
non-blocking lock), not a crash, and the refused call changes nothing. Executors that share
gradient arrays (made by reshape) write them one backward at a time.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import symrnn as sym


def bound(typ: str, backend: str = "cpu", H: int = 16):
    rnn = sym.RNNFactory(num_hidden=[H, 8], data_dim=8, typ=typ, dropout=0.2, name=typ)
    parts = rnn.step(sym.Variable("data"), seq_len=6, ret_typ="all")
    ex = sym.Group([parts[0][-1], *parts[1]]).simple_bind(backend=backend, data=(6, 40, 8))
    rng = np.random.default_rng(0)
    ex.copy_params_from({n: (rng.standard_normal(v.shape) * 0.3).astype(v.dtype)
                         for n, v in ex.arg_dict.items()})
    return ex


def train_steps(ex, steps: int = 6):
    results = []
    for k in range(steps):
        outs = [o.copy() for o in ex.forward(is_train=True, seed=k)]
        ex.backward([np.ones_like(o) for o in outs])
        results.append((outs, {n: g.copy() for n, g in ex.grad_dict.items()}))
    return results


def assert_same(a, b):
    for (outs_a, grads_a), (outs_b, grads_b) in zip(a, b):
        for x, y in zip(outs_a, outs_b):
            np.testing.assert_array_equal(x, y)
        for n, g in grads_a.items():
            np.testing.assert_array_equal(g, grads_b[n], err_msg=n)


@pytest.mark.parametrize("backends", [("cpu", "cpu"), ("cpu", "reference")])
def test_two_executors_in_two_threads_give_what_they_give_alone(backends):
    exs = [bound("lstm", backends[0]), bound("gru", backends[1])]
    alone = [train_steps(ex) for ex in exs]
    together, errors = [None, None], []

    def work(i):
        try:
            together[i] = train_steps(exs[i])
        except Exception as e:  # noqa: BLE001 (reported below; a thread would lose it)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for a, b in zip(alone, together):
        assert_same(a, b)


@pytest.mark.parametrize("second", ["forward", "backward", "reshape"])
def test_one_executor_from_two_threads_is_refused(second):
    ex = bound("lstm")
    train_steps(ex, 1)
    started, release = threading.Event(), threading.Event()
    engine_forward = ex.engine.forward

    def held_forward(*args):  # the first thread's forward, held until the check is done
        started.set()
        release.wait(30)
        return engine_forward(*args)

    ex.engine.forward = held_forward
    first = threading.Thread(target=lambda: ex.forward(is_train=True, seed=9))
    first.start()
    assert started.wait(30)
    args = {n: v.copy() for n, v in ex.arg_dict.items()}
    grads = {n: g.copy() for n, g in ex.grad_dict.items()}
    calls = {"forward": lambda: ex.forward(data=np.ones((6, 40, 8), "float32")),
             "backward": lambda: ex.backward([np.ones_like(o) for o in ex.outputs]),
             "reshape": lambda: ex.reshape(data=(6, 3, 8))}
    try:
        with pytest.raises(sym.BusyError, match=f"{second}: .*another thread"):
            calls[second]()
    finally:
        release.set()
        first.join()
    ex.engine.forward = engine_forward
    for n, v in args.items():
        np.testing.assert_array_equal(ex.arg_dict[n], v, err_msg=n)
    for n, g in grads.items():
        np.testing.assert_array_equal(ex.grad_dict[n], g, err_msg=n)
    train_steps(ex, 1)  # the lock was released: the executor works on


@pytest.mark.parametrize("grad_req", ["add", "write"])
def test_reshaped_executors_sharing_gradients_in_two_threads_lose_no_update(grad_req):
    """`reshape` shares the gradient arrays (as MXNet's): two backwards in two threads write
    them one after the other, so 'add' sums every batch's gradient and 'write' leaves one
    batch's whole. Unguarded, numpy's `+=` (which lets the GIL go) lost updates here (a
    relative error of 3e-3 in two runs of five)."""
    rnn = sym.RNNFactory(num_hidden=[256], data_dim=64, typ="lstm", name="l")
    head = rnn.step(sym.Variable("data"), seq_len=4, ret_typ="all")[0][-1]
    small = head.simple_bind(backend="cpu", grad_req=grad_req, data=(4, 2, 64))
    rng = np.random.default_rng(0)
    small.copy_params_from({n: (rng.standard_normal(v.shape) * 0.1).astype(v.dtype)
                            for n, v in small.arg_dict.items()})
    large = small.reshape(data=(4, 3, 64))
    shared = [n for n, g in small.grad_dict.items() if large.grad_dict[n] is g]
    assert "l_l0_h2h_weight" in shared

    def run(ex, steps):
        for _ in range(steps):
            ex.forward(is_train=True)
            ex.backward([np.ones_like(o) for o in ex.outputs])

    def zero():
        for g in small.grad_dict.values():
            g[...] = 0

    alone = []
    for ex in (small, large):
        zero()
        run(ex, 1)
        alone.append({n: small.grad_dict[n].copy() for n in shared})
    steps = 20 if grad_req == "add" else 5
    for _ in range(4):
        zero()
        threads = [threading.Thread(target=run, args=(ex, steps)) for ex in (small, large)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if grad_req == "add":
            for n in shared:
                np.testing.assert_allclose(small.grad_dict[n], steps * (alone[0][n] + alone[1][n]),
                                           rtol=1e-4, atol=1e-5, err_msg=n)
        else:
            whose = [{i for i in (0, 1) if np.array_equal(small.grad_dict[n], alone[i][n])}
                     for n in shared]
            assert all(whose), "each gradient is one batch's whole"
            assert set.intersection(*whose), "every gradient is the same batch's"
