"""Rendered C against the op table's numpy implementations; the CUDA rendering through nvcc.

Kernels are built from hand-written KernelIRs, compiled by `runtime.compile_cache`, run on
numpy arrays through ctypes (strided views, ld=0 broadcasts) and compared with `OPS[op].impl`.
Masks must match bit for bit.
"""
import re
import shutil
import subprocess

import numpy as np
import pytest

from codegen.interpreter import EvalContext
from codegen.kernel_ir import Compute, KernelIR, Load, Store
from codegen.ops import OPS
from codegen.render import (
    CudaRenderer,
    c_literal,
    kernel_from_ir,
    placeholders,
    render_c,
    render_cuda,
)
from runtime import compile_cache, rng
from runtime.errors import BackendUnavailable

DTYPES = ["float32", "float64"]
TOL = {"float32": {"rtol": 2e-6, "atol": 1e-7}, "float64": {"rtol": 1e-14, "atol": 1e-15}}
SEED, MASK_IDS = 2**40 + 12345, (0xDEADBEEF, 7)
SHAPE = (5, 37)
DROPOUT_RATES, ZONEOUT_RATES = [0.0, 0.3, 0.5, 0.9], [0.0, 0.25, 1.0]
ELEMENTWISE = sorted(name for name, op in OPS.items() if op.elementwise)


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SYMRNN_CACHE_DIR", str(tmp_path_factory.mktemp("symrnn-cache")))
    compile_cache.clear_memory_cache()
    try:  # in parallel; without a C compiler only the tests that run kernels fail
        compile_cache.load_kernels(kernel_from_ir(ir) for ir in all_cases())
    except BackendUnavailable:
        pass
    yield
    mp.undo()
    compile_cache.clear_memory_cache()


def run(ir, ins, out_shape, *, train=False, outs=None):
    """Compile `ir`, launch it over `out_shape` and return the outputs."""
    outs = outs or [np.zeros(out_shape, ir.dtype) for _ in range(ir.n_out)]
    ctl = np.array([SEED, int(train)], np.uint64)
    masks = np.array(MASK_IDS, np.uint32)
    args = [*out_shape]
    for a in [*ins, *outs]:
        assert a.dtype == ir.dtype and (a.strides[1] == a.itemsize or a.shape[1] == 1)
        args += [a.ctypes.data, a.strides[0] // a.itemsize]
    compile_cache.load_kernel(kernel_from_ir(ir))(*args, ctl.ctypes.data, masks.ctypes.data)
    return outs


def reference(ir, ins, *, train=False):
    """The same statements evaluated with the op table's numpy implementations."""
    ctx, values, outs = EvalContext(seed=SEED, is_train=train), {}, [None] * ir.n_out
    for s in ir.body:
        if isinstance(s, Load):
            values[s.dst] = np.array(ins[s.operand])
        elif isinstance(s, Store):
            outs[s.operand] = values[s.src]
        else:
            attrs = dict(s.attrs)
            if "mask" in attrs:
                attrs["mask_id"] = MASK_IDS[attrs.pop("mask")]
            with np.errstate(all="ignore"):
                values[s.dst] = OPS[s.op].impl(ctx, attrs, *(values[i] for i in s.srcs))
    return outs


def arity(op: str) -> int:
    return len(set(re.findall(r"\{(\d+)\}", OPS[op].c_expr)))


def attrs_for(op: str, dtype: str) -> tuple:
    fields = set(re.findall(r"\{([a-z_]+)\}", OPS[op].c_expr))
    bound = 1.3 if op.startswith("clip") else -1.3  # a clip's bound is positive
    attrs = {"scalar": bound} if "scalar" in fields else {}
    if arity(op) == 0:  # a constant such as zeros: its numpy impl needs the shape
        attrs.update(shape=SHAPE, dtype=dtype)
    if "bits" in fields:  # a mask op
        attrs.update(mask=0, p=0.3)
    elif "mask" in fields:  # a step op (variable lengths): the step is the launch's MASK_IDS[1]
        attrs.update(mask=1)
    return tuple(sorted(attrs.items()))


def single_op(op, dtype, attrs=None) -> KernelIR:
    n, attrs = arity(op), attrs_for(op, dtype) if attrs is None else attrs
    body = [Load(i, i) for i in range(n)]
    body += [Compute(n, op, tuple(range(n)), attrs), Store(0, n)]
    return KernelIR(dtype, n, 1, len(MASK_IDS) if "mask" in dict(attrs) else 0, tuple(body))


def operands(op, dtype, seed=0):
    """Values away from zero (divisions) and positive for log."""
    g, size = np.random.default_rng(seed), (arity(op), *SHAPE)
    sign = 1 if op == "log" else g.choice([-1.0, 1.0], size=size)
    return list((sign * g.uniform(0.25, 2.0, size=size)).astype(dtype))


def lstm_cell(dtype) -> KernelIR:
    """Gates i, f, g, o as strided views of one (N, 4H) buffer, a broadcast bias on g, c_prev."""
    ld = [Load(k, k) for k in range(6)]  # in0..3 gates, in4 c_prev, in5 bias row
    ops = [
        Compute(6, "sigmoid", (0,)), Compute(7, "sigmoid", (1,)),
        Compute(8, "add", (2, 5)), Compute(9, "tanh", (8,)), Compute(10, "sigmoid", (3,)),
        Compute(11, "mul", (7, 4)), Compute(12, "mul", (6, 9)), Compute(13, "add", (11, 12)),
        Compute(14, "tanh", (13,)), Compute(15, "mul", (10, 14)),
    ]
    return KernelIR(dtype, 6, 2, 0, tuple(ld + ops + [Store(0, 13), Store(1, 15)]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_cell_with_strided_gates_and_broadcast_bias(dtype):
    n, h = 6, 19
    g = np.random.default_rng(1)
    gates = g.standard_normal((n, 4 * h)).astype(dtype)
    c_prev = g.standard_normal((n, h)).astype(dtype)
    bias = np.broadcast_to(g.standard_normal(h).astype(dtype), (n, h))  # ld = 0
    ins = [gates[:, k * h:(k + 1) * h] for k in range(4)] + [c_prev, bias]
    h_buf = np.full((n, h + 3), 42.0, dtype)  # h written into a view with ld > cols
    ir = lstm_cell(dtype)
    c, hv = run(ir, ins, (n, h), outs=[np.zeros((n, h), dtype), h_buf[:, :h]])
    want_c, want_h = reference(ir, ins)
    np.testing.assert_allclose(c, want_c, **TOL[dtype])
    np.testing.assert_allclose(hv, want_h, **TOL[dtype])
    assert (h_buf[:, h:] == 42.0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ELEMENTWISE)
def test_every_elementwise_op_matches_numpy(op, dtype):
    ins = operands(op, dtype)
    ir = single_op(op, dtype)
    for train in (False, True):
        (got,) = run(ir, ins, SHAPE, train=train)
        (want,) = reference(ir, ins, train=train)
        np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["step_select", "step_zero"])
def test_step_ops_select_by_the_row_length_and_the_launch_step(op, dtype):
    """Rows of lengths 0..9 around the step MASK_IDS[1] = 7: valid where the length exceeds 7."""
    ins = operands(op, dtype)
    ins[-1] = np.repeat(np.arange(5, dtype=dtype)[:, None] + 5, SHAPE[1], axis=1)
    ir = single_op(op, dtype)
    (got,) = run(ir, ins, SHAPE)
    (want,) = reference(ir, ins)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(got[3:], ins[-2][3:]) and not np.array_equal(got[:3], ins[-2][:3])


def test_every_elementwise_op_is_covered_and_renderable():
    assert ELEMENTWISE and all(OPS[op].c_expr for op in ELEMENTWISE)
    known = set(placeholders({"scalar": 1.0, "mask": 0, "p": 0.5}, "float32"))
    assert {"add", "tanh", "sigmoid", "dropout", "zoneout"} <= set(ELEMENTWISE)
    for op in ELEMENTWISE:
        assert set(re.findall(r"\{([a-z_]+)\}", OPS[op].c_expr)) <= known, op
        assert "symrnn_k" in render_c(single_op(op, "float32"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", DROPOUT_RATES)
def test_dropout_masks_are_bit_identical_to_numpy(p, dtype):
    x = np.random.default_rng(2).standard_normal((7, 45)).astype(dtype)
    ir = single_op("dropout", dtype, (("mask", 1), ("p", p)))
    (got,) = run(ir, [x], x.shape, train=True)
    mask = rng.dropout_mask(SEED, MASK_IDS[1], x.shape, p, dtype)
    assert np.array_equal(got, x * mask)
    if p == 0.5:
        assert 0.4 < (got == 0).mean() < 0.6
    (got,) = run(ir, [x], x.shape, train=False)
    assert np.array_equal(got, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", ZONEOUT_RATES)
def test_zoneout_train_and_inference(p, dtype):
    g = np.random.default_rng(3)
    prev, new = g.standard_normal((2, 6, 41)).astype(dtype)
    ir = single_op("zoneout", dtype, (("mask", 1), ("p", p)))
    (got,) = run(ir, [prev, new], prev.shape, train=True)
    keep = rng.zoneout_mask(SEED, MASK_IDS[1], prev.shape, p, dtype)
    assert np.array_equal(got, np.where(keep == 1, prev, new))
    assert np.array_equal(got, reference(ir, [prev, new], train=True)[0])
    (got,) = run(ir, [prev, new], prev.shape, train=False)
    np.testing.assert_allclose(got, reference(ir, [prev, new])[0], **TOL[dtype])
    if p == 0.0:
        assert np.array_equal(got, new)


def test_masks_span_several_filled_chunks():
    """Rows longer than RNG_CHUNK: the C loops fill the draws chunk by chunk."""
    from codegen.render import RNG_CHUNK
    x = np.random.default_rng(4).standard_normal((3, 2 * RNG_CHUNK + 21)).astype("float32")
    ir = single_op("dropout", "float32", (("mask", 1), ("p", 0.5)))
    (got,) = run(ir, [x], x.shape, train=True)
    assert np.array_equal(got, x * rng.dropout_mask(SEED, MASK_IDS[1], x.shape, 0.5))


def two_masks(dtype) -> KernelIR:
    body = (Load(0, 0), Compute(1, "dropout", (0,), (("mask", 0), ("p", 0.5))),
            Compute(2, "dropout", (0,), (("mask", 1), ("p", 0.5))), Store(0, 1), Store(1, 2))
    return KernelIR(dtype, 1, 2, 2, body)


def test_two_masks_in_one_kernel_draw_independently():
    x = np.ones((4, 33), "float32")
    a, b = run(two_masks("float32"), [x], x.shape, train=True)
    for got, mask_id in ((a, MASK_IDS[0]), (b, MASK_IDS[1])):
        assert np.array_equal(got, rng.dropout_mask(SEED, mask_id, x.shape, 0.5))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_follow_numpy(dtype):
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 100.0, -100.0, 1e30]
    x = np.resize(np.array(special, dtype), (3, 50))  # vector body and scalar tail
    y = np.roll(x, 3, axis=1).copy()
    for op in ["tanh", "sigmoid", "add", "mul", "relu", "exp", "log", "heaviside"]:
        ins = [x, y][:arity(op)]
        ir = single_op(op, dtype)
        (got,) = run(ir, ins, x.shape)
        np.testing.assert_allclose(got, reference(ir, ins)[0], equal_nan=True, err_msg=op,
                                   **TOL[dtype])
    (sig,) = run(single_op("sigmoid", dtype), [x], x.shape)
    assert np.isnan(sig[np.isnan(x)]).all()
    assert (sig[x == np.inf] == 1).all() and (sig[x == -np.inf] == 0).all()


def test_literals_are_exact_in_the_kernel_dtype():
    assert c_literal(0.1, "float32") == "0x1.99999ap-4f"
    assert c_literal(0.1, "float64") == "0x1.999999999999ap-4"
    assert c_literal(-2.0, "float64") == "(-0x1p+1)"
    assert float.fromhex(c_literal(1 / 3, "float32")[:-1]) == float(np.float32(1 / 3))
    fields = placeholders({"p": 0.3, "mask": 1}, "float32")
    assert fields["threshold"] == f"{rng.threshold(0.3)}u" and fields["mask"] == "masks[1]"
    assert float.fromhex(fields["scale"][:-1]) == float(np.float32(1 / (1 - 0.3)))


def test_c_and_cuda_share_the_skeleton():
    ir = lstm_cell("float32")
    c, cu = render_c(ir), render_cuda(ir)
    sig = f"void {ir.name}({compile_cache.c_params(6, 2)})"
    assert sig in c and f'extern "C" __global__ {sig}' in cu
    body = [line for line in c.splitlines() if line.strip().startswith("const real v")]
    assert body and all(line.strip() in cu for line in body)
    assert "#pragma omp simd" in c and "blockIdx.y" in cu and "#pragma" not in cu


def test_invalid_ir_is_refused():
    bad = [
        KernelIR("float32", 1, 1, 0, (Store(0, 0),)),
        KernelIR("float32", 1, 1, 0, (Load(0, 1), Store(0, 0))),
        KernelIR("float32", 1, 1, 0, (Load(0, 0), Compute(1, "dropout", (0,), (("p", .5),)))),
        KernelIR("float16", 1, 1, 0, (Load(0, 0), Store(0, 0))),
        KernelIR("float32", 1, 1, 0, (Load(0, 0), Compute(1, "mul_scalar", (0,)))),
        KernelIR("float32", 1, 1, 0, (Load(0, 0), Compute(1, "add", (0,)))),
        KernelIR("float32", 1, 1, 0, (Load(0, 0), Compute(1, "dot", (0, 0)))),
        single_op("dropout", "float32", (("mask", 2), ("p", 0.5))),
        single_op("dropout", "float32", (("mask", 0), ("p", 1.0))),
    ]
    for ir in bad:
        with pytest.raises(ValueError):
            render_c(ir)


def test_generated_c_compiles_without_warnings():
    tc = compile_cache.toolchain()
    for ir in [lstm_cell("float64"), single_op("zoneout", "float32")]:
        cmd = [*tc.command, "-fsyntax-only", "-fopenmp-simd", "-DSYMRNN_LIBMVEC", "-Wall",
               "-Wextra", "-Wno-unused-parameter", "-Werror", "-x", "c", "-"]
        done = subprocess.run(cmd, input=render_c(ir), capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr


def dynamic_symbols(ir) -> str:
    """`nm -D` of the compiled kernel of `ir`, built alone (the module's fixture built it in a
    bundle with others: compile_cache.load_kernels)."""
    compile_cache.clear_memory_cache()
    tc = compile_cache.toolchain()
    kernel = kernel_from_ir(ir)
    compile_cache.load_kernel(kernel)
    lib = compile_cache.cache_dir() / f"{tc.key(kernel.c_source, tc.flags)}.so"
    return subprocess.run(["nm", "-D", str(lib)], capture_output=True, text=True,
                          check=False).stdout


def test_tanh_kernel_calls_vector_math():
    """With libmvec, the double simd loop must call `_ZGV..tanh`, not the scalar tanh only;
    the float one computes sigmoid and tanh inline (FAST_FLOAT_MATH) and calls neither."""
    tc = compile_cache.toolchain()
    if "-DSYMRNN_LIBMVEC" not in tc.flags or not shutil.which("nm"):
        pytest.skip(f"no libmvec in the probed flags {tc.flags} (or no nm)")
    symbols = dynamic_symbols(single_op("tanh", "float64"))
    assert re.search(r"_ZGV\w+_tanh\b", symbols), symbols
    for op in ("tanh", "sigmoid"):
        symbols = dynamic_symbols(single_op(op, "float32"))
        assert not re.search(r"(tanh|exp)f", symbols), symbols


@pytest.mark.parametrize("op", ["tanh", "sigmoid"])
def test_float_sigmoid_and_tanh_are_accurate_everywhere(op):
    """FAST_FLOAT_MATH against float64 numpy over [-100, 100]: within 3 ulp of the result."""
    x = np.concatenate([np.linspace(-100, 100, 200_001), np.linspace(-1, 1, 20_001),
                        np.linspace(-1e-3, 1e-3, 2_001)]).astype("float32").reshape(-1, 1)
    (got,) = run(single_op(op, "float32"), [x], x.shape)
    x64 = x.astype(np.float64)
    want = np.tanh(x64) if op == "tanh" else 1 / (1 + np.exp(-x64))
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    tiny = np.abs(want) < 1e-30  # sigmoid far below -87: compared absolutely
    assert np.all(np.abs(got - want)[~tiny] <= 3 * ulp[~tiny])
    assert np.all(np.abs(got - want)[tiny] < 1e-37)


def all_cases() -> list:
    """Every KernelIR the tests above compile for the CPU."""
    irs = [f(d) for d in DTYPES for f in (lstm_cell, two_masks)]
    irs += [single_op(op, d) for op in ELEMENTWISE for d in DTYPES]
    irs += [single_op(op, d, (("mask", 1), ("p", p))) for d in DTYPES
            for op, rates in (("dropout", DROPOUT_RATES), ("zoneout", ZONEOUT_RATES))
            for p in rates]
    return list({ir.name: ir for ir in irs}.values())


@pytest.mark.nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_cuda_rendering_compiles_with_nvcc(arch, tmp_path):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found on PATH")
    # One translation unit per dtype (one prelude, every kernel) keeps nvcc runs few; the
    # LSTM kernels also go in whole, exactly as rendered.
    cuda = CudaRenderer()
    units = {d: cuda.prelude(d) + "".join(cuda.kernel(ir) for ir in all_cases()
                                          if ir.dtype == d) for d in DTYPES}
    units |= {f"lstm_{d}": render_cuda(lstm_cell(d)) for d in DTYPES}
    for name, source in units.items():
        (tmp_path / f"{name}.cu").write_text(source)
        cmd = ["nvcc", "-ptx", f"-arch={arch}", "--Werror", "all-warnings",
               str(tmp_path / f"{name}.cu"), "-o", str(tmp_path / f"{name}.ptx")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{name}:\n{done.stderr}"
        assert ".entry symrnn_k" in (tmp_path / f"{name}.ptx").read_text()
