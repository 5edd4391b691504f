"""runtime.cpu.gemv: small-batch products against a weight read in place, against numpy."""
import numpy as np
import pytest

from runtime.cpu import gemv

THREADS = np.array([2], np.intc)


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("m, k, n", [(1, 512, 2048), (1, 7, 5), (2, 33, 17), (3, 16, 64),
                                     (5, 100, 9), (8, 512, 1536), (4, 1, 3),
                                     # one row: 8 rows of W at a time, then 4, then 1; K with
                                     # a tail past whole vectors and cache lines
                                     (1, 37, 23), (1, 515, 2051), (1, 16, 8), (1, 24, 13),
                                     (7, 45, 29)])
def test_matches_numpy(dtype, tol, m, k, n):
    rng = np.random.default_rng(m * 1000 + k + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)
    call = gemv.call(a, w.T, c, THREADS)
    assert call is not None
    call()
    want = a.astype(np.float64) @ w.T.astype(np.float64)
    np.testing.assert_allclose(c, want, rtol=tol, atol=tol * np.sqrt(k))


@pytest.mark.parametrize("m", [1, 3])
def test_strided_rows_and_accumulate(m):
    rng = np.random.default_rng(1)
    big_a = rng.standard_normal((m, 40)).astype(np.float32)
    big_w = rng.standard_normal((30, 50)).astype(np.float32)
    big_c = rng.standard_normal((m, 70)).astype(np.float32)
    a, w, c = big_a[:, 5:25], big_w[:, 10:30], big_c[:, 3:33]
    outside = big_c.copy()
    gemv.call(a, w.T, c, THREADS, accumulate=True)()
    np.testing.assert_allclose(c, outside[:, 3:33] + a @ w.T, rtol=1e-5, atol=1e-5)
    outside[:, 3:33] = c
    assert np.array_equal(big_c, outside)  # nothing outside the window is written


@pytest.mark.parametrize("why, a, b", [
    ("too many rows", np.zeros((9, 4), np.float32), np.zeros((3, 4), np.float32).T),
    ("b not a transposed row-major weight", np.zeros((1, 4), np.float32),
     np.zeros((4, 3), np.float32)),
    ("mixed dtypes", np.zeros((1, 4), np.float64), np.zeros((3, 4), np.float32).T),
    ("integers", np.zeros((1, 4), np.int32), np.zeros((3, 4), np.int32).T),
    ("a column-strided", np.zeros((1, 8), np.float32)[:, ::2], np.zeros((3, 4), np.float32).T),
])
def test_refuses_what_it_does_not_handle(why, a, b):
    c = np.zeros((a.shape[0], b.shape[1]), a.dtype)
    assert gemv.call(a, b, c, THREADS) is None, why


def test_the_engine_takes_it_for_one_row_only():
    a1, a2 = np.zeros((1, 4), np.float32), np.zeros((2, 4), np.float32)
    w = np.zeros((3, 4), np.float32)
    assert gemv.engine_call(a1, w.T, np.zeros((1, 3), np.float32), THREADS) is not None
    assert gemv.engine_call(a2, w.T, np.zeros((2, 3), np.float32), THREADS) is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_row_accumulates_in_every_block(dtype):
    """Accumulating, one row of A: the 8-row blocks (vector sums), the 4-row and the 1-row."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((1, 64)).astype(dtype)
    w = rng.standard_normal((21, 64)).astype(dtype)
    c = rng.standard_normal((1, 21)).astype(dtype)
    want = c + a @ w.T
    gemv.call(a, w.T, c, THREADS, accumulate=True)()
    np.testing.assert_allclose(c, want, rtol=1e-5)


def _small_batch(typ, n, backend):
    import symrnn as sym

    rnn = sym.RNNFactory(num_hidden=[19, 12], data_dim=13, typ=typ, name=typ)
    ex = rnn.step(sym.Variable("data"), seq_len=4, ret_typ="all")[0][-1].simple_bind(
        data=(4, n, 13), backend=backend, grad_req="null")
    rng = np.random.default_rng(n)
    ex.copy_params_from({k: rng.uniform(-0.5, 0.5, v.shape).astype(v.dtype)
                         for k, v in ex.arg_dict.items()})
    return ex


@pytest.mark.parametrize("typ", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_inference_matches_the_reference(typ, n):
    """Small-batch inference programs (their per-step products read the weight in place at
    ENGINE_ROWS rows or fewer, else run packed) against the reference executor."""
    cpu, ref = _small_batch(typ, n, "cpu"), _small_batch(typ, n, "reference")
    np.testing.assert_allclose(cpu.forward(is_train=False)[0], ref.forward(is_train=False)[0],
                               rtol=1e-4, atol=1e-5)


def test_per_step_products_of_one_row_are_not_packed():
    """At N <= ENGINE_ROWS the per-step products join no packing group; above, they do."""
    from runtime.cpu.gemm import selected_name

    if selected_name() != "packed":
        pytest.skip("the packing plan is the packed GEMM's")
    small = _small_batch("lstm", 1, "cpu").engine
    large = _small_batch("lstm", gemv.ENGINE_ROWS + 1, "cpu").engine
    small, large = getattr(small, "infer", small), getattr(large, "infer", large)
    assert not small._pack_plan and large._pack_plan
