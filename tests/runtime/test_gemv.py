"""runtime.cpu.gemv: small-batch products against a weight read in place, against numpy."""
import numpy as np
import pytest

from runtime.cpu import gemv

THREADS = np.array([2], np.intc)


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("m, k, n", [(1, 512, 2048), (1, 7, 5), (2, 33, 17), (3, 16, 64),
                                     (5, 100, 9), (8, 512, 1536), (4, 1, 3)])
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


def test_strided_rows_and_accumulate():
    rng = np.random.default_rng(1)
    big_a = rng.standard_normal((3, 40)).astype(np.float32)
    big_w = rng.standard_normal((30, 50)).astype(np.float32)
    big_c = rng.standard_normal((3, 70)).astype(np.float32)
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
