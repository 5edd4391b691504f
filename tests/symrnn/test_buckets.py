"""Training on windows of mixed lengths (`train(..., buckets=[...])`, symrnn.buckets)."""
from __future__ import annotations

import numpy as np
import pytest

import symrnn as sym
from runtime.errors import ConfigError
from symrnn.buckets import BucketExecutors, bucket_windows
from symrnn.optim import SGD, Adam
from symrnn.train import batchify, train

BACKEND = "cpu"


def test_windows_cycle_through_the_buckets_and_cover_the_stream():
    stream = batchify(np.arange(30), 2)  # 15 rows
    got = list(bucket_windows(stream, [2, 5]))
    assert [T for T, _, _ in got] == [2, 5, 2, 5]  # 14 rows: a fifth window would need 16
    start = 0
    for T, x, y in got:
        np.testing.assert_array_equal(x, stream[start:start + T])
        np.testing.assert_array_equal(y, stream[start + 1:start + T + 1])
        start += T


@pytest.fixture(scope="module")
def tiny_lm():
    lm = sym.CharLM(vocab_size=7, embed_dim=4, num_hidden=[5, 3], name="tiny")
    ex, links = lm.bind(3, 2, BACKEND)
    sym.init_params(ex, seed=3)
    return lm, ex, links


def test_buckets_share_parameters_and_carry_states_like_one_long_forward(tiny_lm):
    lm, ex, links = tiny_lm
    stream = batchify(np.random.default_rng(1).integers(0, 7, 18), 2)  # 9 rows: T=3, T=5
    params = {n: ex.arg_dict[n].copy() for n in ex.grad_dict}
    h = train(ex, stream, links, buckets=[3, 5], optimizer=SGD(0.0), progress=False, log=None)
    assert len(h.losses) == 2
    for n, v in params.items():
        np.testing.assert_array_equal(ex.arg_dict[n], v)
    long_ex, _ = lm.bind(8, 2, BACKEND)
    long_ex.copy_params_from(params)
    long_loss = float(long_ex.forward(data=stream[:8], label=stream[1:9])[0])
    assert long_loss == pytest.approx((3 * h.losses[0] + 5 * h.losses[1]) / 8, rel=1e-5)


def test_one_executor_per_length_sharing_the_arrays(tiny_lm):
    _, ex, _ = tiny_lm
    exs = BucketExecutors(ex, None, "data", "label")
    five = exs[5]
    assert exs[5] is five and exs[3] is ex
    assert five.arg_dict["data"].shape == (5, 2)
    for n in ex.grad_dict:
        assert five.arg_dict[n] is ex.arg_dict[n] and five.grad_dict[n] is ex.grad_dict[n]


def test_bucketed_training_lowers_the_loss():
    lm = sym.CharLM(vocab_size=4, embed_dim=4, num_hidden=[8], name="rep")
    ex, links = lm.bind(6, 4, BACKEND, seed=0)
    sym.init_params(ex, seed=0)
    stream = batchify(np.tile([0, 1, 2, 3, 2, 1], 60), 4)
    h = train(ex, stream, links, epochs=4, optimizer=Adam(0.03), clip=5.0, buckets=[4, 6, 9],
              progress=False, log=None)
    assert h.epochs[-1]["loss"] < 0.5 * h.epochs[0]["loss"]


@pytest.mark.parametrize("buckets", [[], [0], [3, 100], "3", [2.5], None])
def test_bad_buckets_are_refused(tiny_lm, buckets):
    _, ex, links = tiny_lm
    stream = batchify(np.zeros(18, int), 2)
    if buckets is None:  # a plain executor has no sym_gen to unroll other lengths
        plain = ex.symbol.simple_bind(backend=BACKEND, data=(3, 2), label=(3, 2))
        with pytest.raises(ConfigError, match="sym_gen"):
            train(plain, stream, links, buckets=[3, 4], progress=False, log=None)
        return
    with pytest.raises(ConfigError, match="buckets"):
        train(ex, stream, links, buckets=buckets, progress=False, log=None)
