"""The renderer lives in runtime.render, so that there is one, and the artifact loader renders
kernels from their IR without codegen; this name stays for codegen's callers."""
from runtime.render import (
    C_TYPE,
    MATH,
    RNG_CHUNK,
    CRenderer,
    CudaRenderer,
    c_literal,
    kernel_from_ir,
    placeholders,
    render_c,
    render_cuda,
)

__all__ = ["C_TYPE", "MATH", "RNG_CHUNK", "CRenderer", "CudaRenderer", "c_literal",
           "kernel_from_ir", "placeholders", "render_c", "render_cuda"]
