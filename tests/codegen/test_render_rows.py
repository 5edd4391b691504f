"""Kernels with row reductions (`Reduce`, runtime/render_rows.py): the C rendering against
numpy (layer norm of a row, masks drawn inside a reduction pass, rows longer than a draw
chunk, outputs aliasing inputs), the IR through JSON, refused IRs, the CUDA rendering of the
layer-norm stack's kernels through nvcc. cuda-sim runs them in tests/symrnn/test_rnn_layer_norm.
"""
import shutil
import subprocess

import numpy as np
import pytest

from codegen.interpreter import EvalContext
from codegen.kernel_ir import Compute, KernelIR, Load, Reduce, Store
from codegen.ops import OPS
from codegen.render import RNG_CHUNK, kernel_from_ir, render_c, render_cuda
from codegen.testing import load_sibling
from runtime.kernel_ir import ir_from_dict, ir_to_dict

render_tests = load_sibling(__file__, "test_render.py")
DTYPES = ["float32", "float64"]
TOL = {"float32": {"rtol": 2e-5, "atol": 2e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SYMRNN_CACHE_DIR", str(tmp_path_factory.mktemp("symrnn-cache")))
    yield
    mp.undo()


def layer_norm_ir(dtype: str, width: int, dropout: float | None = None) -> KernelIR:
    """out0 = (x - mean) * rsqrt(var + 1e-5) * gamma over each row of x (dropped first when
    `dropout`), out1 = the row's inverse standard deviation."""
    x = [Load(0, 0)]
    if dropout is not None:
        x.append(Compute(9, "dropout", (0,), (("mask", 0), ("p", dropout))))
    v = x[-1].dst
    body = (*x, Reduce(1, "sum", v), Compute(2, "mul_scalar", (1,), (("scalar", 1 / width),)),
            Compute(3, "sub", (v, 2)), Compute(4, "mul", (3, 3)), Reduce(5, "sum", 4),
            Compute(6, "mul_scalar", (5,), (("scalar", 1 / width),)),
            Compute(7, "add_scalar", (6,), (("scalar", 1e-5),)), Compute(8, "rsqrt", (7,)),
            Load(10, 1), Compute(11, "mul", (3, 8)), Compute(12, "mul", (11, 10)),
            Store(0, 12), Store(1, 8))
    return KernelIR(dtype, 2, 2, int(dropout is not None), body)


def evaluate(ir, ins, train=False):
    """The statements with the op table's numpy implementations; Reduce as a row sum."""
    ctx, values, outs = EvalContext(seed=render_tests.SEED, is_train=train), {}, [None] * 2
    for s in ir.body:
        if isinstance(s, Load):
            values[s.dst] = np.broadcast_to(ins[s.operand], ins[0].shape)
        elif isinstance(s, Store):
            outs[s.operand] = values[s.src]
        elif isinstance(s, Reduce):
            values[s.dst] = OPS["row_sum"].impl(ctx, {}, values[s.src])
        else:
            attrs = dict(s.attrs)
            if "mask" in attrs:
                attrs["mask_id"] = render_tests.MASK_IDS[attrs.pop("mask")]
            values[s.dst] = OPS[s.op].impl(ctx, attrs, *(values[i] for i in s.srcs))
    return outs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [7, 2 * RNG_CHUNK + 5])
def test_layer_norm_of_each_row(cols, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, cols)) * 3 + 2).astype(dtype)
    gamma = rng.standard_normal((1, cols)).astype(dtype)
    ir = layer_norm_ir(dtype, cols)
    got = render_tests.run(ir, [x, np.broadcast_to(gamma, x.shape)], x.shape)
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    inv = 1 / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(got[0], (x - mean) * inv * gamma, **TOL[dtype])
    np.testing.assert_allclose(got[1], np.repeat(inv, cols, 1), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("train", [True, False])
def test_masks_drawn_in_a_reduction_pass_match_the_last_pass(train, dtype):
    """Dropout inside the reduced values: the passes draw in place, the last one from its
    filled chunks; both must be numpy's mask bit for bit."""
    cols = RNG_CHUNK + 9
    rng = np.random.default_rng(1)
    x, gamma = (rng.standard_normal((3, cols)).astype(dtype) for _ in range(2))
    ir = layer_norm_ir(dtype, cols, dropout=0.4)
    got = render_tests.run(ir, [x, np.broadcast_to(gamma[:1], x.shape)], x.shape, train=train)
    want = evaluate(ir, [x, gamma[:1]], train)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **TOL[dtype])


def test_outputs_may_alias_inputs():
    """Stores happen in the last pass only: an output over its input gives the same."""
    x = np.random.default_rng(2).standard_normal((5, 33))
    gamma = np.broadcast_to(np.ones((1, 33)), x.shape)
    ir = layer_norm_ir("float64", 33)
    want = render_tests.run(ir, [x, gamma], x.shape)
    same = x.copy()
    got = render_tests.run(ir, [same, gamma], x.shape, outs=[same, np.zeros_like(x)])
    np.testing.assert_array_equal(got[0], want[0])


def test_a_reduce_goes_through_json_and_is_checked():
    ir = layer_norm_ir("float32", 8, dropout=0.2)
    assert ir_from_dict(ir_to_dict(ir)) == ir
    assert ["reduce", 1, "sum", 9] in ir_to_dict(ir)["body"]
    for bad in (["reduce", 1, "max", 0], ["reduce", 1, "sum"], ["reduce", "1", "sum", 0]):
        d = ir_to_dict(ir)
        d["body"][2] = bad
        with pytest.raises(ValueError, match="body\\[2\\]"):
            ir_from_dict(d)


@pytest.mark.parametrize("body, words", [
    ((Load(0, 0), Reduce(1, "sum", 5), Store(0, 1)), "before it is defined"),
    ((Load(0, 0), Reduce(0, "sum", 0), Store(0, 0)), "redefines"),
    ((Load(0, 0), Reduce(1, "mean", 0), Store(0, 1)), "not a row reduction"),
])
def test_a_bad_reduce_is_refused_by_the_renderers(body, words):
    ir = KernelIR("float32", 1, 1, 0, body)
    for render in (render_c, render_cuda):
        with pytest.raises(ValueError, match=words):
            render(ir)


def test_the_cuda_rendering_gives_each_row_to_one_thread():
    source = kernel_from_ir(layer_norm_ir("float32", 8)).cuda_source
    assert "threadIdx.x; r < rows" in source and "for (long c = 0; c < cols; ++c)" in source
    assert "__syncthreads" not in source and "__shared__" not in source


@pytest.mark.nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_layer_norm_stack_kernels_compile_with_nvcc(arch, tmp_path):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not found on PATH")
    import codegen
    import symrnn as sym
    from symrnn.bind import lower_for_gradients

    rnn = sym.RNNFactory([5, 3], 4, layer_norm=True, zoneout=0.2, name="m")
    out = rnn.step(sym.Variable("data"), seq_len=2, ret_typ="out")[-1]
    units = {}  # one translation unit per prelude (dtype): the prelude once, every kernel
    for dtype in DTYPES:
        graph, wrt, _ = lower_for_gradients(out, "write", dtype, {"data": (2, 2, 4)}, "test")
        for optimize in (True, False):
            options = codegen.CompileOptions(tuple(wrt), optimize=optimize, target="cuda")
            for k in codegen.compile(graph, options).kernels.values():
                if any(isinstance(s, Reduce) for s in k.ir.body):
                    i = k.cuda_source.index('extern "C" __global__')
                    units.setdefault(k.cuda_source[:i], {})[k.name] = k.cuda_source[i:]
    assert len(units) == 2
    for n, (prelude, kernels) in enumerate(units.items()):
        (tmp_path / f"u{n}.cu").write_text(prelude + "\n".join(kernels.values()))
        cmd = ["nvcc", "-ptx", f"-arch={arch}", "--Werror", "all-warnings",
               str(tmp_path / f"u{n}.cu"), "-o", str(tmp_path / f"u{n}.ptx")]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        ptx = (tmp_path / f"u{n}.ptx").read_text()
        assert all(f".entry {name}" in ptx for name in kernels)
