"""An engine for a backend name: the one place that maps names to engines.

    >>> engine = make_engine("cpu", train_program, infer_program)      # doctest: +SKIP

`ENGINES` are the names: 'cpu' (runtime.cpu.CpuEngine: C kernels, BLAS), 'cuda'
(runtime.cuda.CudaEngine on the first GPU) and 'cuda-sim' (the CUDA engine over
runtime.cuda.sim's host simulation of the device, which runs the CUDA kernels on the CPU).
Both `symrnn.simple_bind` (symrnn.compiled.Compiled.engine) and `runtime.load`
(runtime.artifact) build their engines here. Given an inference program, the engine is a
runtime.dual.DualEngine: the training engine, and an inference one built on first use.
"""
from __future__ import annotations

from runtime.errors import BackendUnavailable, BindError

ENGINES = ("cpu", "cuda", "cuda-sim")


def engine_class(backend: str, where: str = "bind"):
    """The engine constructor `(program, **options) -> engine` for `backend`."""
    if backend not in ENGINES:
        raise BindError(f"{where}: 'backend' must be one of {ENGINES}, given {backend!r}")
    try:
        if backend == "cpu":
            from runtime.cpu import CpuEngine
            return CpuEngine
        if backend == "cuda-sim":
            from runtime.cuda.sim import sim_engine
            return sim_engine
        from runtime.cuda import CudaEngine  # raises BackendUnavailable itself, where needed
        return CudaEngine
    except ModuleNotFoundError as e:
        raise BackendUnavailable(f"{where}: backend {backend!r} needs the module {e.name!r}, "
                                 f"which is not installed") from None


def prepare(backend: str, dtypes=(), program=None) -> list:
    """Starts building in the background what `backend`'s engine will load for programs of
    `dtypes` and for `program`'s kernels (the CPU's GEMM libraries and C kernels), so that
    the compiler's passes and the C compiler run at once; the threads (none but for 'cpu')."""
    if backend != "cpu":
        return []
    from runtime.cpu.engine import prepare as prepare_cpu

    return prepare_cpu(dtypes, program)


def make_engine(backend: str, train, infer=None, where: str = "bind", **options):
    """An engine running Program `train`; with `infer` (a Program, or a function making one,
    called on first use), a DualEngine that runs it for `forward(is_train=False)`.
    `options` go to the engine's constructor (`device=`, ...)."""
    engine = engine_class(backend, where)
    trained = engine(train, **options)
    if infer is None:
        return trained
    from runtime.dual import DualEngine

    return DualEngine(trained, lambda: engine(infer() if callable(infer) else infer, **options))
