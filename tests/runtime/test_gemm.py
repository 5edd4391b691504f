"""runtime.cpu.gemm: every implementation behind the one interface computes the same products, and
the environment chooses among them (SYMRNN_GEMM, and the older SYMRNN_PACKED_GEMM)."""
import numpy as np
import pytest

from runtime.cpu import gemm
from runtime.cpu.packed_gemm import aligned
from runtime.errors import BackendUnavailable, ConfigError


def available() -> list[str]:
    names = ["packed", "blas"]
    try:
        gemm.implementation("mkl")
        names.append("mkl")
    except BackendUnavailable:
        pass
    return names


def operand(r, shape, dtype, transposed):
    x = r.standard_normal(shape[::-1] if transposed else shape).astype(dtype)
    return x.T if transposed else x


@pytest.mark.parametrize("name", available())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
def test_every_product_matches_numpy(name, dtype, trans_a, trans_b):
    impl, r = gemm.implementation(name), np.random.default_rng(0)
    m, k, n = 37, 70, 45
    a, b = operand(r, (m, k), dtype, trans_a), operand(r, (k, n), dtype, trans_b)
    c = np.full((m, n), np.nan, dtype)
    size = impl.scratch_size(k, n, dtype)
    impl.product(a, b, c, np.full(1, 2, np.intc), aligned(size, dtype) if size else None)()
    exact = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(c, exact, rtol=1e-4 if dtype == "float32" else 1e-12,
                               atol=1e-4 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("name", [n for n in available() if n != "blas"])
@pytest.mark.parametrize("trans_b", [False, True])
def test_a_packed_weight_serves_every_step_and_follows_repacking(name, trans_b):
    impl, r = gemm.implementation(name), np.random.default_rng(1)
    k, n = 64, 96
    assert impl.packs("float64")
    b = operand(r, (k, n), "float64", trans_b)
    packed = impl.packed("float64", k, n, np.ones(1, np.intc))
    steps = [(r.standard_normal((m, k)), np.zeros((m, n))) for m in (8, 8, 3)]
    calls = [packed.gemm_call(a, c) for a, c in steps]  # built before the first packing
    pack = packed.pack_call(b)
    for update in (False, True):
        if update:
            b[...] = r.standard_normal(b.shape)  # the weight changes between phases
        pack()
        for call, (a, c) in zip(calls, steps):
            call()
            np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)


def test_blas_packs_nothing():
    assert not gemm.implementation("blas").packs("float32")


@pytest.mark.parametrize("env, expected", [
    ({}, gemm.DEFAULT), ({"SYMRNN_GEMM": "blas"}, "blas"), ({"SYMRNN_GEMM": " Packed "}, "packed"),
    ({"SYMRNN_PACKED_GEMM": "0"}, "blas"), ({"SYMRNN_PACKED_GEMM": "1"}, gemm.DEFAULT),
    ({"SYMRNN_PACKED_GEMM": "0", "SYMRNN_GEMM": "packed"}, "packed"),  # the new name wins
])
def test_the_environment_chooses(monkeypatch, env, expected):
    for var in ("SYMRNN_GEMM", "SYMRNN_PACKED_GEMM"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert gemm.selected_name() == expected


def test_an_unknown_gemm_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("SYMRNN_GEMM", "cublas")
    with pytest.raises(ConfigError, match="SYMRNN_GEMM must be one of packed, blas, mkl, "
                                          "given 'cublas'"):
        gemm.selected()


def test_mkl_missing_says_what_to_install(monkeypatch):
    from runtime.cpu import mkl_gemm

    monkeypatch.setattr(mkl_gemm, "_candidates", lambda: ["/nonexistent/libmkl_rt.so"])
    mkl_gemm.library.cache_clear()
    try:
        with pytest.raises(BackendUnavailable, match=r"pip install 'symrnn\[mkl\]'"):
            mkl_gemm.MklImpl()
    finally:
        mkl_gemm.library.cache_clear()


@pytest.mark.parametrize("name", available())
def test_the_engine_agrees_with_the_reference_on_every_gemm(monkeypatch, tmp_path, name):
    sym = pytest.importorskip("symrnn")
    monkeypatch.setenv("SYMRNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SYMRNN_GEMM", name)
    rnn = sym.RNNFactory([6, 5], data_dim=7, typ="lstm", name="l")
    all_h, _, _, _ = rnn.step(sym.Variable("data"), seq_len=4)
    loss = sym.sum(all_h[-1] * all_h[-1])
    results = []
    for backend in ("reference", "cpu"):
        ex = loss.simple_bind(backend=backend, dtype="float64", data=(4, 3, 7))
        if backend == "cpu":
            engine = ex.engine.train
            assert engine._gemms.name == name
            assert bool(engine._pack_plan) == (name != "blas")
        values = {n: 0.3 * np.random.default_rng(0).standard_normal(a.shape)
                  for n, a in ex.arg_dict.items()}
        ex.copy_params_from(values)
        out = ex.forward(is_train=True, seed=3)[0].copy()
        ex.backward([np.ones_like(out)])
        results.append((out, {n: g.copy() for n, g in ex.grad_dict.items()}))
    (o_ref, g_ref), (o_cpu, g_cpu) = results
    np.testing.assert_allclose(o_cpu, o_ref, rtol=1e-11)
    for n in g_ref:
        np.testing.assert_allclose(g_cpu[n], g_ref[n], rtol=1e-10, atol=1e-12, err_msg=n)
