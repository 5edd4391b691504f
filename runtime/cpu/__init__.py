"""The CPU backend: the engine (runtime.cpu.engine.CpuEngine), its GEMMs behind one interface
(gemm: symrnn's packed GEMM in packed_gemm, whose C is gemm_pool.c and gemm_template.c;
numpy's BLAS, held to one thread by blas; MKL's packed API in mkl_gemm)."""
from runtime.cpu.engine import CpuEngine  # noqa: F401
