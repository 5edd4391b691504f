"""The kernel IR lives in runtime.kernel_ir (the artifact loader reads it without codegen);
this name stays for codegen's callers."""
from runtime.kernel_ir import Compute, KernelIR, Load, Reduce, Store

__all__ = ["Compute", "KernelIR", "Load", "Reduce", "Store"]
