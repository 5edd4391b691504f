"""runtime.cpu.engine.prepare starts building only what the selected GEMM will use."""
from runtime.cpu import engine


def test_prepare_builds_the_gemm_library_only_for_symrnns_own_gemm(monkeypatch):
    monkeypatch.setenv("SYMRNN_GEMM", "packed")
    started = engine.prepare(("float32",))
    assert len(started) == 1
    for t in started:
        t.join()
    for name in ("blas", "mkl", "nonsense"):  # nonsense: the engine reports it, not prepare
        monkeypatch.setenv("SYMRNN_GEMM", name)
        assert engine.prepare(("float32",)) == []


def test_prepare_ignores_dtypes_without_a_gemm_library(monkeypatch):
    monkeypatch.setenv("SYMRNN_GEMM", "packed")
    assert engine.prepare(("int32",)) == []
