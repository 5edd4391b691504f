"""Kernel IR -> C for the CPU and CUDA C, from one skeleton.

It lives in `runtime` so that the artifact loader renders kernels from their IR itself and
never compiles source text taken from an artifact; codegen.emit calls the same functions.

Both renderings share the prelude (the `real` type, the `symrnn_*` helpers, the Philox RNG
of `runtime.rng`), the parameter list (`runtime.compile_cache.kernel_args`) and the body
(one line per SSA statement, each op's C expression from the closed table
runtime.kernel_ops, which codegen's op table refers to). They differ only in the
class attributes of `CRenderer` and `CudaRenderer`: qualifiers, the loop header, includes.

Outputs may alias inputs only element for element (the same view): the loops carry no
dependence from one element to the next, which is what `#pragma omp simd` asserts.

The CUDA kernel walks rows with `blockIdx.y` and columns with the x threads, both
grid-stride, so any launch covers the index space; for example block `(256, 1, 1)` and grid
`(ceil(cols / 256), min(rows, 65535), 1)`.

Masks: a kernel that draws has one copy of its loops per mode (`ctl[1]`), and the inference copy
draws nothing. In the training copy a CUDA thread draws its element's bits in place; the C
loops first fill a row's draws chunk by chunk (`symrnn_philox_fill`: 16 Philox blocks of four
draws at a time with AVX-512), because GCC vectorizes the in-place draw with 64-bit multiplies
and one block per draw.

Literals are exact: float attributes become hex-float literals of the kernel's dtype, mask
thresholds `runtime.rng.threshold(p)` unsigned literals, and the dropout scale is
`dtype(1 / (1 - p))` computed in float64 first, as `runtime.rng.dropout_mask` does.
"""
from __future__ import annotations

import math
from importlib import resources

import numpy as np

from runtime import rng
from runtime.compile_cache import c_params, kernel_args
from runtime.kernel_ir import Compute, KernelIR, Load, Reduce, Store
from runtime.kernel_ops import C_EXPRS, arity, fields
from runtime.program import Kernel
from runtime.render_rows import IDX, check_reduce, has_reductions, reducing_loops

MATH = {
    "float32": {"exp": "expf", "log": "logf", "tanh": "tanhf"},
    "float64": {"exp": "exp", "log": "log", "tanh": "tanh"},
}
C_TYPE = {"float32": "float", "float64": "double"}
PRELUDE = "prelude"  # the C text of the prelude: .h files in runtime/prelude/ (package data)


def _prelude(name: str) -> str:
    return resources.files("runtime").joinpath(PRELUDE, name).read_text()


RNG_CHUNK = 256  # columns per filled row of draws in the C training loops (1 KiB per mask)

# glibc's vector math (libmvec) is declared only under the full -ffast-math; these
# declarations let the simd loop call `_ZGV...` variants with NaN/Inf semantics kept
# (see runtime/compile_cache.py). tanh/tanhf entered libmvec in glibc 2.35.
SIMD_DECLS = _prelude("simd_decls.h")

# The float C kernels' sigmoid and tanh. glibc's vector expf and tanhf take a scalar slow path for
# large arguments (|x| above about 10: an LSTM cell kernel ran 2x slower on such values); these
# are branch-free, inline and vectorize with the loop. The `exp` op keeps libm's expf.
# Their contract (README "Backends"; tests/codegen/test_float32_activation_accuracy.py), against
# float64: sigmoid within 3 ulp of normal results, tanh within 2 ulp, both within 2^-23
# absolute. Below x = -87.3 sigmoid's value is subnormal: it returns a subnormal or 0 (off by
# less than 2^-126), 0 from -88.4 down, as e^-x overflows. NaN gives NaN; sigmoid(+-Inf) is 1
# and 0, tanh(+-Inf) +-1; tanh keeps tiny (and subnormal) inputs, not the sign of zero.
FAST_FLOAT_MATH = _prelude("fast_float_math.h")

HELPERS = _prelude("helpers.h")


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


def placeholders(attrs: dict, dtype: str, mode: str = "train") -> dict:
    """The `{scalar}`, `{mask}`, `{threshold}`, `{p}`, `{scale}`, `{train}` and `{bits}` fields
    of a c_expr. In `mode` "train", `{bits}` draws the element's Philox bits in place (the
    CUDA form; the C renderer reads them from a filled row instead); in "infer" it is 0."""
    fields = {}
    if "scalar" in attrs:
        fields["scalar"] = c_literal(attrs["scalar"], dtype)
    if "mask" in attrs:
        fields["mask"] = f"masks[{int(attrs['mask'])}]"
        fields["train"] = "1" if mode == "train" else "0"
        fields["bits"] = f"symrnn_philox_bits(ctl[0], {fields['mask']}, idx)" \
            if mode == "train" else "0u"
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
    rng_fill = f"#define SYMRNN_CHUNK {RNG_CHUNK}\n{rng.C_FILL_SOURCE}"
    simd_decls = SIMD_DECLS
    fast_float_math = True  # FAST_FLOAT_MATH for float32 sigmoid and tanh
    row_loop = "for (long r = r0; r < rows; ++r)"
    col_loop = "#pragma omp simd\nfor (long c = 0; c < cols; ++c)"
    reduce_row_loop = row_loop  # kernels with row reductions (runtime.render_rows)

    def render(self, ir: KernelIR) -> str:
        kernel = self.kernel(ir)  # checks the IR first
        return self.prelude(ir.dtype) + kernel

    def prelude(self, dtype: str) -> str:
        math = MATH[dtype]
        fast = self.fast_float_math and dtype == "float32"
        helpers = HELPERS.format(
            real=C_TYPE[dtype], sigmoid_exp="symrnn_fast_expf" if fast else math["exp"],
            activation_tanh="symrnn_fast_tanhf" if fast else math["tanh"], **math)
        return (f"#define SYMRNN_INLINE {self.inline}\n{self.includes}{rng.C_SOURCE}"
                f"{self.rng_fill}{self.simd_decls}{FAST_FLOAT_MATH if fast else ''}"
                f"{helpers}\n")

    def kernel(self, ir: KernelIR) -> str:
        body = _checked(ir)
        slots = sorted({dict(s.attrs)["mask"] for s in body
                        if isinstance(s, Compute) and "{bits}" in C_EXPRS[s.op]})
        if has_reductions(body):
            return self.functions(ir, self.reducing(body, ir.dtype, slots))
        if slots:  # one copy of the loops per mode, so that inference never runs the RNG
            train = self.train_loops([self.statement(s, ir.dtype, "train") for s in body],
                                     slots)
            infer = self.loops([self.statement(s, ir.dtype, "infer") for s in body])
            loops = f"if (ctl[1]) {{\n{_indent(train, 1)}}} else {{\n{_indent(infer, 1)}}}\n"
        else:
            loops = self.loops([self.statement(s, ir.dtype) for s in body])
        return self.functions(ir, loops)

    def functions(self, ir: KernelIR, loops: str) -> str:
        """The C rendering: the loops over rows [r0, rows) in a static function; the kernel
        (every row) and `NAME_task(job, task)`, one task's rows for runtime.cpu.gemm_source's pool.
        `job` holds 64-bit words: rows, cols, rows per task, ctl, masks, then every operand's
        address and row stride, as kernel_args orders them."""
        params = c_params(ir.n_in, ir.n_out)
        args = kernel_args(ir.n_in, ir.n_out)
        names = [a.name for a in args]
        unpack = [f"({a.c_type})(intptr_t)w[{5 + i}]" if "*" in a.c_type else f"w[{5 + i}]"
                  for i, a in enumerate(args[2:-2])]  # the operands and their strides
        call = ", ".join(["r0", "r1", "w[1]", *unpack, "(const uint64_t*)(intptr_t)w[3]",
                          "(const uint32_t*)(intptr_t)w[4]"])
        return (f"static void {ir.name}_rows(long r0, {params})\n{{\n{_indent(loops, 1)}}}\n\n"
                f"void {ir.name}({params})\n{{\n"
                f"    {ir.name}_rows(0, {', '.join(names)});\n}}\n\n"
                f"void {ir.name}_task(const void* job, long task)\n{{\n"
                f"    const long* w = (const long*)job;\n"
                f"    const long r0 = task * w[2], r1 = r0 + w[2] < w[0] ? r0 + w[2] : w[0];\n"
                f"    {ir.name}_rows({call});\n}}\n")

    def reducing(self, body, dtype: str, slots: list) -> str:
        """The loops of a kernel with row reductions: runtime.render_rows."""
        if not slots:
            return reducing_loops(self, body, dtype, "infer")
        train = reducing_loops(self, body, dtype, "train")
        infer = reducing_loops(self, body, dtype, "infer")
        return f"if (ctl[1]) {{\n{_indent(train, 1)}}} else {{\n{_indent(infer, 1)}}}\n"

    def reduce_loop(self, accumulators: list) -> str:
        """The header of a reduction pass over a row's columns."""
        return (f"#pragma omp simd reduction(+:{', '.join(accumulators)})\n"
                f"for (long c = 0; c < cols; ++c)")

    def last_pass(self, lines: list, slots: list) -> str:
        """A reducing kernel's last pass over a row: its draws filled chunk by chunk."""
        if slots:
            return self.train_columns(lines, slots)
        body = "".join(f"{line}\n" for line in lines)
        return f"{self.col_loop} {{\n{_indent(body, 1)}}}\n"

    def loops(self, lines: list) -> str:
        body = "".join(f"{line}\n" for line in lines)
        return (f"{self.row_loop} {{\n{_indent(self.col_loop, 1)} {{\n{_indent(body, 2)}"
                f"    }}\n}}\n")

    def train_loops(self, lines: list, slots: list) -> str:
        """The training loops: each row in chunks of SYMRNN_CHUNK columns, whose draws are
        filled first for every mask slot (`bits{k}`), 16 or 8 at a time, and read in the
        simd loop."""
        return f"{self.row_loop} {{\n{_indent(self.train_columns(lines, slots), 1)}}}\n"

    def train_columns(self, lines: list, slots: list) -> str:
        """One row's training loop, chunk by chunk."""
        body = "".join(f"{line}\n" for line in lines)
        arrays = ", ".join(f"bits{k}[SYMRNN_CHUNK]" for k in slots)
        fills = "".join(f"symrnn_philox_fill(ctl[0], masks[{k}], first, c1 - c0, bits{k});\n"
                        for k in slots)
        chunk = (f"const long c1 = cols - c0 < SYMRNN_CHUNK ? cols : c0 + SYMRNN_CHUNK;\n"
                 f"const uint64_t first = (uint64_t)r * (uint64_t)cols + (uint64_t)c0;\n"
                 f"uint32_t {arrays};\n{fills}"
                 f"#pragma omp simd\nfor (long c = c0; c < c1; ++c) {{\n{_indent(body, 1)}}}\n")
        return (f"for (long c0 = 0; c0 < cols; c0 += SYMRNN_CHUNK) {{\n"
                f"{_indent(chunk, 1)}}}\n")

    def statement(self, s, dtype: str, mode: str = "train", draw_in_place=False) -> str:
        if isinstance(s, Load):
            return f"const real v{s.dst} = in{s.operand}[r * ld_in{s.operand} + c];"
        if isinstance(s, Store):
            return f"out{s.operand}[r * ld_out{s.operand} + c] = v{s.src};"
        fields = placeholders(dict(s.attrs), dtype, mode)
        if mode == "train" and "bits" in fields and not draw_in_place:
            fields["bits"] = self.bits(dict(s.attrs)["mask"], fields)
        expr = C_EXPRS[s.op].format(*(f"v{i}" for i in s.srcs), **fields)
        return f"const real v{s.dst} = {expr};"

    def bits(self, slot: int, fields: dict) -> str:
        """A training statement's draw: read from the row's filled chunk."""
        return f"bits{slot}[c - c0]"


class CudaRenderer(CRenderer):
    """The same kernel as CUDA C: rows over `blockIdx.y`, columns over x threads; each thread
    draws its elements' bits itself."""

    qualifier = 'extern "C" __global__ '
    inline = "__device__ __forceinline__"
    includes = ""
    rng_fill = ""
    simd_decls = ""
    fast_float_math = False  # CUDA's expf and tanhf are fast already
    row_loop = "for (long r = blockIdx.y; r < rows; r += gridDim.y)"
    col_loop = ("for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols;"
                " c += (long)blockDim.x * gridDim.x)")
    # with row reductions: a row per thread of the whole grid, its columns in order
    reduce_row_loop = ("for (long r = ((long)blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x"
                       " + threadIdx.x; r < rows;\n"
                       "     r += (long)blockDim.x * gridDim.x * gridDim.y)")

    def functions(self, ir: KernelIR, loops: str) -> str:
        return (f"{self.qualifier}void {ir.name}({c_params(ir.n_in, ir.n_out)})\n"
                f"{{\n{_indent(loops, 1)}}}\n")

    def train_loops(self, lines: list, slots: list) -> str:
        return self.loops(
            ["const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;", *lines])

    def bits(self, slot: int, fields: dict) -> str:
        return fields["bits"]

    def reduce_loop(self, accumulators: list) -> str:
        return "for (long c = 0; c < cols; ++c)"

    def last_pass(self, lines: list, slots: list) -> str:
        body = "".join(f"    {line}\n" for line in ([IDX] if slots else []) + lines)
        return f"for (long c = 0; c < cols; ++c) {{\n{body}}}\n"


_rendered: dict = {}  # (renderer, structural key) -> source: loading an artifact again is cheap


def render_c(ir: KernelIR) -> str:
    """C source of `ir`: the prelude and one function named `ir.name`."""
    return _render(CRenderer, ir)


def render_cuda(ir: KernelIR) -> str:
    """CUDA C source of `ir`: the prelude and one `extern "C" __global__` kernel."""
    return _render(CudaRenderer, ir)


def _render(renderer: type, ir: KernelIR) -> str:
    key = (renderer, repr(ir))  # the repr tells IRs apart exactly (1 and 1.0, True and 1)
    if key not in _rendered:
        if len(_rendered) > 4096:
            _rendered.clear()
        _rendered[key] = renderer().render(ir)
    return _rendered[key]


def kernel_from_ir(ir: KernelIR) -> Kernel:
    """The Program's record of a kernel: both renderings and the launch arity."""
    return Kernel(name=ir.name, c_source=render_c(ir), cuda_source=render_cuda(ir),
                  n_in=ir.n_in, n_out=ir.n_out, n_masks=ir.n_masks, dtype=ir.dtype, ir=ir)


def _indent(text: str, levels: int) -> str:
    pad = "    " * levels
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def _checked(ir: KernelIR) -> tuple:
    """The body, after checking that it is SSA over the declared operands and masks."""
    if ir.dtype not in C_TYPE:
        raise ValueError(f"kernel dtype must be float32 or float64, got {ir.dtype!r}")
    defined = set()
    for s in ir.body:
        if isinstance(s, Reduce):
            check_reduce(s, defined)
            if s.dst in defined:
                raise ValueError(f"{s} redefines v{s.dst}")
            defined.add(s.dst)
            continue
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
    if s.op not in C_EXPRS:
        raise ValueError(f"{s.op!r} is not an elementwise op with a C expression")
    attrs = dict(s.attrs)
    if s.op == "dropout" and not 0.0 <= attrs.get("p", -1) < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {attrs.get('p')}")
    if "mask" in attrs and not 0 <= attrs["mask"] < n_masks:
        raise ValueError(f"{s}: mask {attrs['mask']} but the kernel has n_masks={n_masks}")
    missing = fields(s.op) - set(placeholders(attrs, "float64"))
    if missing:
        raise ValueError(f"{s}: {s.op} needs the attributes behind {sorted(missing)}")
    if len(s.srcs) != arity(s.op):
        raise ValueError(f"{s}: {s.op} takes {arity(s.op)} inputs, got {len(s.srcs)}")
