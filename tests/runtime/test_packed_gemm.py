"""runtime.cpu.packed_gemm: the packed-weight GEMM, the blocked GEMM that packs as it goes, and
which steps use them; checked against numpy in float64 and float32."""

import os
import shutil
import signal
import threading

import numpy as np
import pytest

from runtime.cpu import blas, packed_gemm
from runtime.cpu import gemm_source as gemm_c
from runtime.program import Step, View

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

SHAPES = [(1, 1, 1), (7, 5, 3), (13, 33, 70), (9, 17, 32), (64, 96, 130), (3, 200, 1)]
TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}


def threads(n):
    return np.full(1, n, np.intc)


def operand(r, shape, dtype, transposed):
    """A (rows, cols) array stored row-major, or the transpose of a row-major array."""
    x = r.standard_normal(shape[::-1] if transposed else shape).astype(dtype)
    return x.T if transposed else x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_packed_gemm_matches_numpy(dtype, m, k, n, trans_b, nthreads):
    r = np.random.default_rng(m * 1000 + k * 10 + n)
    b = operand(r, (k, n), dtype, trans_b)
    a = r.standard_normal((m, k)).astype(dtype)
    pg = packed_gemm.PackedGemm(dtype, k, n, threads(nthreads))
    pg.pack_call(b)()
    c = np.full((m, n), np.nan, dtype)
    pg.gemm_call(a, c, accumulate=False)()
    np.testing.assert_allclose(c, a @ b, **TOL[dtype])
    pg.gemm_call(a, c, accumulate=True)()
    np.testing.assert_allclose(c, 2 * (a @ b), **TOL[dtype])


def test_packed_gemm_reads_and_writes_strided_rows():
    """A and C as column windows of wider arrays (row stride > cols), as arena views are."""
    r = np.random.default_rng(1)
    a_wide, c_wide = r.standard_normal((40, 50)), np.zeros((40, 90))
    a, c = a_wide[:, 3:20], c_wide[:, 10:45]
    b = r.standard_normal((17, 35))
    pg = packed_gemm.PackedGemm("float64", 17, 35, threads(2))
    pg.pack_call(b)()
    pg.gemm_call(a, c, False)()
    np.testing.assert_allclose(c, a @ b, rtol=1e-12)
    assert not c_wide[:, :10].any() and not c_wide[:, 45:].any()  # nothing outside C


@pytest.mark.parametrize("k, n", [(20, 35), (8, 16), (41, 48)])
def test_packing_a_window_of_a_row_major_weight(k, n):
    """B the transpose of a row-major weight whose rows are longer than K (a window, row
    stride > K), float32: the panels transposed 8 x 8 in registers, and the K tail."""
    r = np.random.default_rng(k + n)
    wide = r.standard_normal((n, k + 13)).astype(np.float32)
    b = wide[:, 5:5 + k].T
    a = r.standard_normal((3, k)).astype(np.float32)
    pg = packed_gemm.PackedGemm("float32", k, n, threads(2))
    pg.pack_call(b)()
    c = np.zeros((3, n), np.float32)
    pg.gemm_call(a, c, accumulate=False)()
    np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)


def test_packed_gemm_refuses_mismatched_operands():
    pg = packed_gemm.PackedGemm("float64", 4, 6, threads(1))
    with pytest.raises(ValueError, match="B is"):
        pg.pack_call(np.zeros((6, 4)))
    with pytest.raises(ValueError, match="packed gemm"):
        pg.gemm_call(np.zeros((3, 4)).T.copy().T, np.zeros((3, 6), np.float32), False)


def scratch_for(k, n, dtype):
    return packed_gemm.aligned(packed_gemm.scratch_size(k, n, dtype), dtype)


@pytest.fixture(params=["blas", "blocked"])
def big_path(request, monkeypatch):
    """Each product that runs once through numpy's cblas split over the pool ('blas', where
    numpy's BLAS is an OpenBLAS) and through the blocked GEMM ('blocked')."""
    if request.param == "blas" and blas.openblas() is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS")
    monkeypatch.setenv("SYMRNN_BIG_GEMM", request.param)
    return {"blas": "symrnn_blas_", "blocked": "symrnn_big_"}[request.param]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 5, 3), (200, 40, 70), (13, 1100, 9),
                                   (400, 600, 130), (70, 400, 999)])
@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_big_gemm_matches_numpy(dtype, m, k, n, trans_a, trans_b, accumulate, big_path):
    """Shapes below and above one block (MC rows, KC of K: see the next test) and the size at
    which the product splits over threads (the blas path: into parts of 16 rows or columns,
    the last one short)."""
    r = np.random.default_rng(m + 7 * k + n)
    a, b = operand(r, (m, k), dtype, trans_a), operand(r, (k, n), dtype, trans_b)
    c0 = r.standard_normal((m, n)).astype(dtype)
    c = c0.copy()
    call = packed_gemm.big_call(a, b, c, accumulate, threads(2), scratch_for(k, n, dtype))
    assert call.func.__name__.startswith(big_path)
    with blas.one_pool():
        call()
    exact = a.astype(np.float64) @ b.astype(np.float64) + (c0 if accumulate else 0)
    tol = TOL[dtype] if dtype == "float64" else {"rtol": 1e-5, "atol": 4e-7 * k}
    np.testing.assert_allclose(c, exact, **tol)  # float32 sums of k products round by ~k


@pytest.mark.parametrize("isa", ["-mno-avx512f", "-mno-avx"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemms_built_for_narrower_vectors_match_numpy(isa, dtype):
    """AVX (6 x 2 ymm) and SSE (6 x 2 xmm) builds: their own panel width, the same results."""
    lib, s = packed_gemm.library((isa,)), packed_gemm.SUFFIX[dtype]
    width = getattr(lib, f"symrnn_panel_width_{s}")()
    assert width == {"-mno-avx512f": 32, "-mno-avx": 16}[isa] // np.dtype(dtype).itemsize * 2
    r = np.random.default_rng(5)
    m, k, n = 250, 600, 70
    a, b = r.standard_normal((m, k)).astype(dtype), r.standard_normal((k, n)).astype(dtype)
    at = np.ascontiguousarray(a.T)
    nt, addr, panels = threads(2), packed_gemm._address, -(-n // width)
    packed = packed_gemm.aligned(panels * width * k, dtype)
    getattr(lib, f"symrnn_pack_{s}")(k, n, addr(b), n, 0, addr(packed), addr(nt))
    c = np.zeros((m, n), dtype)
    getattr(lib, f"symrnn_gemm_{s}")(m, n, k, addr(a), k, addr(packed), addr(c), n, 0, addr(nt))
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=4e-7 * k)
    c[:] = 0
    scratch = packed_gemm.aligned(packed_gemm.A_BLOCK + panels * width * gemm_c.KC, dtype)
    getattr(lib, f"symrnn_big_{s}")(1, 0, m, n, k, addr(at), m, addr(b), n, addr(c), n, 0,
                                    addr(scratch), addr(nt))
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=4e-7 * k)


def test_big_gemm_shapes_cross_block_edges():
    assert 1100 > 2 * gemm_c.KC and 400 > 2 * gemm_c.MC


def test_big_gemm_reads_and_writes_strided_rows(big_path):
    r = np.random.default_rng(4)
    a_wide, c_wide = r.standard_normal((300, 50)), np.zeros((300, 90))
    a, c, b = a_wide[:, 3:20], c_wide[:, 10:45], r.standard_normal((17, 35))
    packed_gemm.big_call(a, b, c, False, threads(2), scratch_for(17, 35, "float64"))()
    np.testing.assert_allclose(c, a @ b, rtol=1e-12)
    assert not c_wide[:, :10].any() and not c_wide[:, 45:].any()
    a_t = r.standard_normal((40, 400))[5:22, 10:310].T  # A stored transposed, in a window
    packed_gemm.big_call(a_t, b, c, False, threads(2), scratch_for(17, 35, "float64"))()
    np.testing.assert_allclose(c, a_t @ b, rtol=1e-12)


def test_big_gemm_declines_what_it_does_not_run(monkeypatch):
    monkeypatch.setenv("SYMRNN_BIG_GEMM", "blocked")
    a, b, c = np.zeros((4, 3)), np.zeros((3, 5)), np.zeros((4, 5))
    scratch = scratch_for(3, 5, "float64")
    assert packed_gemm.big_call(a, b, c, False, threads(1), scratch) is not None
    assert packed_gemm.big_call(a, b, c, False, threads(1), scratch[:-1]) is None
    assert packed_gemm.big_call(a, b, c.T.copy().T, False, threads(1), scratch) is None
    assert packed_gemm.big_call(a, b, c, False, threads(1), None) is None
    assert packed_gemm.big_call(a, b, c, False, threads(1), scratch.astype(np.float32)) is None
    assert packed_gemm.big_call(a, b.astype(np.float32), c, False, threads(1), scratch) is None



def test_big_gemm_through_blas_needs_no_scratch_and_declines_odd_layouts(big_path):
    a, b, c = np.ones((4, 3)), np.ones((3, 5)), np.zeros((4, 5))
    call = packed_gemm.big_call(a, b, c, False, threads(1), None)
    assert (call is None) == (big_path == "symrnn_big_")
    assert packed_gemm.big_call(a, b, c.T.copy().T, False, threads(1), None) is None
    assert packed_gemm.big_call(a, b.astype(np.float32), c, False, threads(1), None) is None
    assert packed_gemm.big_call(a[:, :0], b[:0], c, False, threads(1), None) is None
    if call is not None:
        call()
        np.testing.assert_array_equal(c, np.full((4, 5), 3.0))


needs_openblas = pytest.mark.skipif(blas.openblas() is None,
                                    reason="numpy's BLAS is not an OpenBLAS")


@needs_openblas
def test_one_pool_holds_openblas_to_one_thread_and_restores_it():
    ob = blas.openblas()
    with blas.blas_threads(2):
        with blas.one_pool() as n:
            assert n == 2 and ob.get_threads() == 1
        assert ob.get_threads() == 2


@needs_openblas
def test_one_pool_held_in_two_threads_tells_both_the_count_and_restores_it_last():
    """A phase that begins while another thread's phase holds OpenBLAS is told the count the
    first found (it was told 1 before, and ran on one thread: other rounding than alone), and
    OpenBLAS stays at one thread until the last holder leaves."""
    ob, entered, leave, seen = blas.openblas(), threading.Event(), threading.Event(), []

    def first():
        with blas.one_pool() as n:
            seen.append(n)
            entered.set()
            leave.wait(10)

    with blas.blas_threads(2):
        t = threading.Thread(target=first)
        t.start()
        assert entered.wait(10)
        with blas.one_pool() as n:
            seen.append(n)
            assert blas.thread_count() == 2
            leave.set()
            t.join(10)
            assert not t.is_alive() and ob.get_threads() == 1  # the first left; this holds
        assert seen == [2, 2] and ob.get_threads() == 2


# ---- plan: which steps multiply against a packed operand -------------------------------------

def v(buffer, offset, rows, cols, ld=None):
    return View(buffer, offset, rows, cols, cols if ld is None else ld, (rows, cols))


def gemm(name, a, b, out, phase="forward", **attrs):
    return Step("gemm", phase, name, [a, b], [out], attrs)


def plan(steps):
    return packed_gemm.plan(steps, lambda view: "float32")


def test_plan_packs_a_weight_used_at_every_step_once_per_phase():
    w = v("w", 0, 8, 16)
    steps = [gemm(f"f{t}", v("arena", 16 * t, 2, 8), w, v("arena", 100 + 32 * t, 2, 16),
                  trans_b=True) for t in range(3)]
    steps += [gemm(f"b{t}", v("arena", 16 * t, 2, 8), w, v("arena", 300 + 32 * t, 2, 16),
                   "backward", trans_b=True) for t in range(2)]
    found = plan(steps)
    assert sorted(found) == [0, 1, 2, 3, 4]
    assert [found[i][1] for i in range(5)] == [True, False, False, True, False]
    assert found[0][0] != found[3][0]  # each phase packs its own copy


def test_plan_leaves_single_uses_transposed_lefts_and_rewritten_weights():
    w = v("arena", 0, 8, 16)
    once = [gemm("x", v("a", 0, 2, 8), v("w2", 0, 8, 16), v("c", 0, 2, 16))]
    trans_a = [gemm(f"t{t}", v("a", 0, 8, 2), w, v("c", 32 * t, 2, 16), trans_a=True)
               for t in range(2)]
    rewritten = [gemm("r0", v("a", 0, 2, 8), w, v("c", 0, 2, 16)),
                 Step("kernel", "forward", "k", [], [v("arena", 40, 2, 8)], {}),
                 gemm("r1", v("a", 0, 2, 8), w, v("c", 32, 2, 16))]
    assert plan(once) == {} and plan(trans_a) == {} and plan(rewritten) == {}
    elsewhere = [*rewritten[:1], Step("kernel", "forward", "k", [], [v("arena", 128, 2, 8)],
                                      {}), rewritten[2]]
    assert sorted(plan(elsewhere)) == [0, 2]  # a write beside W, not on it


def test_engine_results_do_not_depend_on_the_gemm_path(monkeypatch, tmp_path):
    """A 2-layer LSTM, float64: packed GEMMs (the products that run once through the cblas
    split, and blocked) against numpy's matmul everywhere."""
    sym = pytest.importorskip("symrnn")
    monkeypatch.setenv("SYMRNN_CACHE_DIR", str(tmp_path))
    rnn = sym.RNNFactory([6, 5], data_dim=7, typ="lstm", zoneout=0.1, name="l")
    all_h, _, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=4)
    loss = sym.Group([all_h[-1], *last_h, *last_c])
    r = np.random.default_rng(0)
    results, summed = [], []
    column_sum = packed_gemm.column_sum_call
    monkeypatch.setattr(packed_gemm, "column_sum_call",
                        lambda *a: summed.append(column_sum(*a)) or summed[-1])
    for packed, big in (("1", "blas"), ("1", "blocked"), ("0", "blas")):
        monkeypatch.setenv("SYMRNN_PACKED_GEMM", packed)
        monkeypatch.setenv("SYMRNN_BIG_GEMM", big)
        summed.clear()
        ex = loss.simple_bind(dtype="float64", data=(4, 3, 7))
        # each layer's bias gradient (a sum over all steps' rows) as a threaded column sum
        assert len([s for s in summed if s is not None]) == (2 if packed == "1" else 0)
        planned = ex.engine.train._pack_plan
        assert len(planned) == (16 if packed == "1" else 0)  # 4 steps x 2 layers x 2 phases
        # the products over all steps pack their right operand as they go
        assert bool(ex.engine.train._big_scratch) == (packed == "1")
        if not results:
            values = {n: 0.3 * r.standard_normal(a.shape) for n, a in ex.arg_dict.items()}
        ex.copy_params_from(values)
        outs = [o.copy() for o in ex.forward(is_train=True, seed=3)]
        ex.backward([np.ones_like(o) for o in outs])
        results.append((outs, {n: g.copy() for n, g in ex.grad_dict.items()}))
    (o0, g0) = results[-1]
    for o1, g1 in results[:-1]:
        for x, y in zip(o1, o0):
            np.testing.assert_allclose(x, y, rtol=1e-12)
        for n in g0:
            np.testing.assert_allclose(g1[n], g0[n], rtol=1e-11, atol=1e-12, err_msg=n)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pool_works_in_a_forked_child():
    """The child has no pool workers (threads do not survive fork): it runs every task itself
    rather than waiting for them."""
    r = np.random.default_rng(2)
    a, b = r.standard_normal((64, 256)), r.standard_normal((256, 512))
    pg = packed_gemm.PackedGemm("float64", 256, 512, threads(2))
    pg.pack_call(b)()
    c = np.zeros((64, 512))
    pg.gemm_call(a, c, False)()  # the parent's workers start here
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only if the product is right
        signal.alarm(20)
        c[:] = 0
        pg.gemm_call(a, c, False)()
        os._exit(0 if np.allclose(c, a @ b) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_two_python_threads_share_the_pool_safely():
    """ctypes drops the GIL: a second caller finding the pool busy runs its tasks alone."""
    r = np.random.default_rng(3)
    jobs = []
    for _ in range(2):
        a, b = r.standard_normal((64, 128)), r.standard_normal((128, 640))
        pg = packed_gemm.PackedGemm("float64", 128, 640, threads(2))
        pg.pack_call(b)()
        c = np.zeros((64, 640))
        jobs.append((pg.gemm_call(a, c, True), c, a @ b))

    def run(call):
        for _ in range(50):
            call()
    workers = [threading.Thread(target=run, args=(call,)) for call, _, _ in jobs]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for _, c, expected in jobs:
        np.testing.assert_allclose(c, 50 * expected, rtol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 3), (300, 257), (1000, 600), (2, 513)])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_column_sum_matches_numpy(dtype, rows, cols, nthreads):
    """Column counts across the task width (COLSUM) and rows in a window (row stride > cols)."""
    r = np.random.default_rng(rows + cols)
    wide = r.standard_normal((rows, cols + 5)).astype(dtype)
    x, y = wide[:, 2:2 + cols], np.full((1, cols), np.nan, dtype)
    packed_gemm.column_sum_call(x, y, threads(nthreads))()
    tol = TOL[dtype] if dtype == "float64" else {"rtol": 1e-5, "atol": 1e-6 * rows}
    np.testing.assert_allclose(y[0], x.astype(np.float64).sum(axis=0), **tol)


def test_column_sum_declines_what_it_does_not_run():
    x, y = np.ones((4, 3)), np.zeros(3)
    assert packed_gemm.column_sum_call(x, y, threads(1)) is not None
    assert packed_gemm.column_sum_call(x.T.copy().T, y, threads(1)) is None  # column-major
    assert packed_gemm.column_sum_call(x, np.zeros(4), threads(1)) is None
    assert packed_gemm.column_sum_call(x, np.zeros(3, np.float32), threads(1)) is None
    assert packed_gemm.column_sum_call(x[:0], y, threads(1)) is None
    assert packed_gemm.column_sum_call(x.astype(np.int64), y.astype(np.int64), threads(1)) is None


def test_the_cblas_found_is_checked_once_against_numpy_before_it_is_used(monkeypatch):
    """A cblas whose calling convention was guessed wrong (symbol, integer width) would give
    wrong numbers: big_call checks it on a small product first, and without it falls back."""
    from runtime.cpu import packed_gemm as pg

    if pg.openblas() is None or "float32" not in pg.openblas().gemm:
        pytest.skip("numpy's BLAS is not an OpenBLAS with cblas_sgemm")
    assert pg.blas_agrees("float32") and pg.blas_agrees("float64")
    a, b = np.ones((64, 32), np.float32), np.ones((32, 48), np.float32)
    c, threads = np.zeros((64, 48), np.float32), np.ones(1, np.int32)
    assert pg.blas_call(a, b, c, False, threads) is not None
    monkeypatch.setattr(pg, "blas_agrees", lambda dtype: False)
    assert pg.blas_call(a, b, c, False, threads) is None


def test_the_check_refuses_a_cblas_that_gives_other_numbers(monkeypatch):
    """float64 products sent to cblas_sgemm (a wrong guess of the symbol) are caught."""
    import dataclasses

    from runtime.cpu import packed_gemm as pg

    found = pg.openblas()
    if found is None or "float32" not in found.gemm:
        pytest.skip("numpy's BLAS is not an OpenBLAS with cblas_sgemm")
    wrong = dataclasses.replace(found, gemm={**found.gemm, "float64": found.gemm["float32"]})
    monkeypatch.setattr(pg, "openblas", lambda: wrong)
    assert not pg.blas_agrees.__wrapped__("float64")
    assert pg.blas_agrees.__wrapped__("float32")
