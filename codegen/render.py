"""Kernel IR -> C for the CPU and CUDA C, from one skeleton.

Both renderings share the prelude (the `real` type, the `symrnn_*` helpers, the Philox RNG
of `runtime.rng`), the parameter list (`runtime.compile_cache.kernel_args`) and the body
(one line per SSA statement, each op's `c_expr` from the op table). They differ only in the
class attributes of `CRenderer` and `CudaRenderer`: qualifiers, the loop header, includes.

Outputs may alias inputs only element for element (the same view): the loops carry no
dependence from one element to the next, which is what `#pragma omp simd` asserts.

The CUDA kernel walks rows with `blockIdx.y` and columns with the x threads, both
grid-stride, so any launch covers the index space; for example block `(256, 1, 1)` and grid
`(ceil(cols / 256), min(rows, 65535), 1)`.

Literals are exact: float attributes become hex-float literals of the kernel's dtype, mask
thresholds `runtime.rng.threshold(p)` unsigned literals, and the dropout scale is
`dtype(1 / (1 - p))` computed in float64 first, as `runtime.rng.dropout_mask` does.
"""
from __future__ import annotations

import math
import re

import numpy as np

from codegen.kernel_ir import Compute, KernelIR, Load, Store
from codegen.ops import OPS
from runtime import rng
from runtime.compile_cache import c_params
from runtime.program import Kernel

MATH = {
    "float32": {"exp": "expf", "log": "logf", "tanh": "tanhf"},
    "float64": {"exp": "exp", "log": "log", "tanh": "tanh"},
}
C_TYPE = {"float32": "float", "float64": "double"}

# glibc's vector math (libmvec) is declared only under the full -ffast-math; these
# declarations let the simd loop call `_ZGV...` variants with NaN/Inf semantics kept
# (see runtime/compile_cache.py). tanh/tanhf entered libmvec in glibc 2.35.
SIMD_DECLS = """
#if defined(SYMRNN_LIBMVEC) && defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double tanh(double);
#endif
#endif
"""

HELPERS = """
typedef {real} real;

SYMRNN_INLINE real symrnn_sigmoid(real x) {{ return (real)1 / ((real)1 + {exp}(-x)); }}
SYMRNN_INLINE real symrnn_tanh(real x) {{ return {tanh}(x); }}
/* `x < 0 ? 0 : x` (not `x > 0 ? x : 0`) lets NaN through, as np.maximum does. */
SYMRNN_INLINE real symrnn_relu(real x) {{ return x < (real)0 ? (real)0 : x; }}
SYMRNN_INLINE real symrnn_exp(real x) {{ return {exp}(x); }}
SYMRNN_INLINE real symrnn_log(real x) {{ return {log}(x); }}

/* Inverted dropout's factor: 0 where the Philox draw is below the threshold, else scale.
   Both modes are computed and one selected: a load of ctl[0] under a branch stops GCC from
   vectorizing, and the kernel's per-mode loop copies drop the unused one anyway. */
SYMRNN_INLINE real symrnn_dropout(const uint64_t* ctl, uint32_t mask, uint64_t idx,
                                  uint32_t threshold, real scale)
{{
    const real factor = symrnn_philox_bits(ctl[0], mask, idx) < threshold ? (real)0 : scale;
    return ctl[1] ? factor : (real)1;
}}

/* Zoneout: keep `prev` where the draw is below the threshold (never when p == 0, so the
   result is `next` exactly); at inference the expectation p * prev + (1 - p) * next. */
SYMRNN_INLINE real symrnn_zoneout(const uint64_t* ctl, uint32_t mask, uint64_t idx,
                                  uint32_t threshold, real p, real prev, real next)
{{
    const real kept = symrnn_philox_bits(ctl[0], mask, idx) < threshold ? prev : next;
    return ctl[1] ? kept : p * prev + ((real)1 - p) * next;
}}
"""


def c_literal(value: float, dtype: str) -> str:
    """`value` rounded to `dtype`, as an exact C literal: `c_literal(0.1, "float32")` is
    `0x1.99999ap-4f`."""
    v = float(np.dtype(dtype).type(value))
    if math.isnan(v):
        return "((real)NAN)"
    if math.isinf(v):
        return "((real)INFINITY)" if v > 0 else "(-(real)INFINITY)"
    mantissa, exponent = v.hex().split("p")
    text = f"{mantissa.rstrip('0').rstrip('.')}p{exponent}" + ("f" if dtype == "float32" else "")
    return f"({text})" if text.startswith("-") else text


def placeholders(attrs: dict, dtype: str) -> dict:
    """The `{scalar}`, `{mask}`, `{threshold}`, `{p}` and `{scale}` fields of a c_expr."""
    fields = {}
    if "scalar" in attrs:
        fields["scalar"] = c_literal(attrs["scalar"], dtype)
    if "mask" in attrs:
        fields["mask"] = f"masks[{int(attrs['mask'])}]"
    if "p" in attrs:
        p = float(attrs["p"])
        fields["p"] = c_literal(p, dtype)
        fields["threshold"] = f"{rng.threshold(p)}u"
        if p < 1.0:
            fields["scale"] = c_literal(1.0 / (1.0 - p), dtype)
    return fields


class CRenderer:
    """A C99 function for the CPU: rows outside, a `#pragma omp simd` loop over columns."""

    qualifier = ""
    inline = "static inline"
    includes = "#include <math.h>\n"
    simd_decls = SIMD_DECLS
    row_loop = "for (long r = 0; r < rows; ++r)"
    col_loop = "#pragma omp simd\nfor (long c = 0; c < cols; ++c)"

    def render(self, ir: KernelIR) -> str:
        kernel = self.kernel(ir)  # checks the IR first
        return self.prelude(ir.dtype) + kernel

    def prelude(self, dtype: str) -> str:
        helpers = HELPERS.format(real=C_TYPE[dtype], **MATH[dtype])
        return (f"#define SYMRNN_INLINE {self.inline}\n{self.includes}{rng.C_SOURCE}"
                f"{self.simd_decls}{helpers}\n")

    def kernel(self, ir: KernelIR) -> str:
        lines = [self.statement(s, ir.dtype) for s in _checked(ir)]
        uses_rng = any(isinstance(s, Compute) and "idx" in OPS[s.op].c_expr for s in ir.body)
        if uses_rng:
            lines.insert(0, "const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;")
        loops = self.loops(lines)
        if uses_rng:  # one copy of the loops per mode, so that inference never runs the RNG
            loops = f"if (ctl[1]) {{\n{_indent(loops, 1)}}} else {{\n{_indent(loops, 1)}}}\n"
        return (f"{self.qualifier}void {ir.name}({c_params(ir.n_in, ir.n_out)})\n"
                f"{{\n{_indent(loops, 1)}}}\n")

    def loops(self, lines: list) -> str:
        body = "".join(f"{line}\n" for line in lines)
        return (f"{self.row_loop} {{\n{_indent(self.col_loop, 1)} {{\n{_indent(body, 2)}"
                f"    }}\n}}\n")

    def statement(self, s, dtype: str) -> str:
        if isinstance(s, Load):
            return f"const real v{s.dst} = in{s.operand}[r * ld_in{s.operand} + c];"
        if isinstance(s, Store):
            return f"out{s.operand}[r * ld_out{s.operand} + c] = v{s.src};"
        expr = OPS[s.op].c_expr.format(*(f"v{i}" for i in s.srcs),
                                       **placeholders(dict(s.attrs), dtype))
        return f"const real v{s.dst} = {expr};"


class CudaRenderer(CRenderer):
    """The same kernel as CUDA C: rows over `blockIdx.y`, columns over x threads."""

    qualifier = 'extern "C" __global__ '
    inline = "__device__ __forceinline__"
    includes = ""
    simd_decls = ""
    row_loop = "for (long r = blockIdx.y; r < rows; r += gridDim.y)"
    col_loop = ("for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols;"
                " c += (long)blockDim.x * gridDim.x)")


def render_c(ir: KernelIR) -> str:
    """C source of `ir`: the prelude and one function named `ir.name`."""
    return CRenderer().render(ir)


def render_cuda(ir: KernelIR) -> str:
    """CUDA C source of `ir`: the prelude and one `extern "C" __global__` kernel."""
    return CudaRenderer().render(ir)


def kernel_from_ir(ir: KernelIR) -> Kernel:
    """The Program's record of a kernel: both renderings and the launch arity."""
    return Kernel(name=ir.name, c_source=render_c(ir), cuda_source=render_cuda(ir),
                  n_in=ir.n_in, n_out=ir.n_out, n_masks=ir.n_masks, dtype=ir.dtype)


def _indent(text: str, levels: int) -> str:
    pad = "    " * levels
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def _checked(ir: KernelIR) -> tuple:
    """The body, after checking that it is SSA over the declared operands and masks."""
    if ir.dtype not in C_TYPE:
        raise ValueError(f"kernel dtype must be float32 or float64, got {ir.dtype!r}")
    defined = set()
    for s in ir.body:
        uses = (s.src,) if isinstance(s, Store) else getattr(s, "srcs", ())
        if any(u not in defined for u in uses):
            raise ValueError(f"{s} uses a value before it is defined")
        if isinstance(s, Load) and not 0 <= s.operand < ir.n_in:
            raise ValueError(f"{s} reads input {s.operand} of {ir.n_in}")
        if isinstance(s, Store) and not 0 <= s.operand < ir.n_out:
            raise ValueError(f"{s} writes output {s.operand} of {ir.n_out}")
        if isinstance(s, Compute):
            _check_compute(s, ir.n_masks)
        if isinstance(s, (Load, Compute)):
            if s.dst in defined:
                raise ValueError(f"{s} redefines v{s.dst}")
            defined.add(s.dst)
    return ir.body


def _check_compute(s: Compute, n_masks: int) -> None:
    op = OPS.get(s.op)
    if op is None or not op.elementwise or op.c_expr is None:
        raise ValueError(f"{s.op!r} is not an elementwise op with a C expression")
    attrs = dict(s.attrs)
    if s.op == "dropout" and not 0.0 <= attrs.get("p", -1) < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {attrs.get('p')}")
    if "mask" in attrs and not 0 <= attrs["mask"] < n_masks:
        raise ValueError(f"{s}: mask {attrs['mask']} but the kernel has n_masks={n_masks}")
    wanted = set(re.findall(r"\{([a-z_]+)\}", op.c_expr))
    missing = wanted - set(placeholders(attrs, "float64"))
    if missing:
        raise ValueError(f"{s}: {s.op} needs the attributes behind {sorted(missing)}")
    arity = len(set(re.findall(r"\{(\d+)\}", op.c_expr)))
    if len(s.srcs) != arity:
        raise ValueError(f"{s}: {s.op} takes {arity} inputs, got {len(s.srcs)}")
