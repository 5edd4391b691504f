"""The CUDA engine on a GPU: marked `gpu`, skipped where PyCUDA or a device is missing.

What tests/runtime/test_cuda_host.py cannot check without a GPU: that the CUDA rendering of
the kernels, real cuBLAS and PyCUDA's launches give the reference executor's numbers. The
stacks are those of tests/test_backends_agree.py (LSTM, GRU, RNN tanh and relu with per-layer
sizes, dropout, recurrent dropout and zoneout), fused and unfused, float32 and float64, with
and without CUDA graphs; the masks are checked to be the CPU's, position for position.
"""
from __future__ import annotations

import importlib.util
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest

import symrnn as sym
from runtime.cuda.commands import Matrix, copy_call, gemm_call
from runtime.errors import BackendUnavailable

pytestmark = pytest.mark.gpu


def _sibling(path: Path):
    """Helpers of another test file (tests/ is not a package under importlib mode); the name
    is the one tests/test_emitted_cuda.py uses, so the module is loaded once."""
    name = f"_symrnn_{path.stem}_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


agree = _sibling(Path(__file__).parents[1] / "test_backends_agree.py")


@pytest.fixture(scope="module")
def device():
    try:
        from runtime.cuda.device import default_device

        return default_device()
    except BackendUnavailable as e:
        pytest.skip(f"no CUDA backend here: {e}")


def run_against_reference(stack, fuse: bool, graphs: bool) -> None:
    symbol = stack.symbol()
    ref = symbol.simple_bind(backend="reference", dtype=stack.dtype, **stack.shapes)
    gpu = symbol.simple_bind(backend="cuda", optimize=fuse, dtype=stack.dtype, **stack.shapes)
    gpu.engine.graphs = graphs
    params = agree.random_args(ref)
    for ex in (ref, gpu):
        ex.copy_params_from(params)
    for seed in (7, 8, 9):  # graphs: plain, captured, replayed
        outs = [ex.forward(is_train=True, seed=seed) for ex in (ref, gpu)]
        for head, a, b in zip(ref.output_names, *outs):
            agree.assert_close(b, a, stack.dtype, f"seed {seed}: output {head!r}")
        grads = agree.random_out_grads(ref, seed)
        for ex in (ref, gpu):
            ex.backward(out_grads=grads)
        for arg, g in ref.grad_dict.items():
            agree.assert_close(gpu.grad_dict[arg], g, stack.dtype, f"seed {seed}: d{arg}")
    for a, b in zip(ref.forward(is_train=False), gpu.forward(is_train=False)):
        agree.assert_close(b, a, stack.dtype, "inference")


@pytest.mark.parametrize("typ", agree.TYPES)
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stack_against_reference(device, typ, fuse, dtype):
    stack = agree.Stack(typ, sizes=(7, 5, 3), dropout=0.3, recurrent_dropout=0.2,
                        zoneout=0.25, T=5, N=3, dtype=dtype)
    run_against_reference(stack, fuse, graphs=False)


@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_stack_with_cuda_graphs(device, typ):
    stack = agree.Stack(typ, sizes=(7, 5), dropout=0.3, zoneout=0.25, T=5, N=3,
                        dtype="float32")
    run_against_reference(stack, fuse=True, graphs=True)


def test_masks_are_the_cpus(device):
    """Dropped and zoned-out positions are exactly the CPU's for the same seed."""
    x, prev = sym.Variable("x"), sym.Variable("prev")
    net = sym.Group([sym.Dropout(x, p=0.4, name="drop"), sym.zoneout(prev, x, 0.3, name="zo")])
    shapes = {"x": (37, 300), "prev": (37, 300)}
    rng = np.random.default_rng(0)
    args = {"x": rng.uniform(1, 2, (37, 300)).astype(np.float32),
            "prev": rng.uniform(-2, -1, (37, 300)).astype(np.float32)}
    outs = []
    for backend in ("cpu", "cuda"):
        ex = net.simple_bind(backend=backend, grad_req="null", **shapes)
        ex.copy_params_from(args)
        outs.append(ex.forward(is_train=True, seed=1234))
    (cpu_drop, cpu_zo), (gpu_drop, gpu_zo) = outs
    np.testing.assert_array_equal(gpu_drop == 0, cpu_drop == 0)
    np.testing.assert_array_equal(gpu_zo < 0, cpu_zo < 0)  # kept: the negative `prev`
    assert 0.3 < (cpu_drop == 0).mean() < 0.5 and 0.2 < (cpu_zo < 0).mean() < 0.4
    np.testing.assert_allclose(gpu_drop, cpu_drop, rtol=1e-6)
    np.testing.assert_allclose(gpu_zo, cpu_zo, rtol=1e-6)


@pytest.mark.parametrize("trans_a, trans_b", list(product((False, True), repeat=2)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cublas_mapping_on_the_gpu(device, trans_a, trans_b, dtype):
    m, k, n, pad = 33, 17, 9, 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    ma, mb = upload_padded(device, a, pad), upload_padded(device, b, pad)
    mc = upload_padded(device, np.zeros((m, n), dtype), pad)
    gemm_call(dtype, ma, mb, mc, trans_a, trans_b).issue(device)
    want = (a.T if trans_a else a) @ (b.T if trans_b else b)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(download(device, mc, dtype), want, rtol=tol, atol=tol)
    mt = upload_padded(device, np.zeros(a.T.shape, dtype), pad)
    copy_call(dtype, ma, mt, transpose=True).issue(device)
    np.testing.assert_array_equal(download(device, mt, dtype), a.T)


def upload_padded(device, x: np.ndarray, pad: int) -> Matrix:
    padded = np.full((x.shape[0], x.shape[1] + pad), np.nan, x.dtype)
    padded[:, :x.shape[1]] = x
    ptr = device.alloc(padded.nbytes)
    device.memcpy_htod(ptr, padded)
    return Matrix(ptr, x.shape[0], x.shape[1], padded.shape[1])


def download(device, m: Matrix, dtype) -> np.ndarray:
    host = np.empty((m.rows, m.ld), dtype)
    device.memcpy_dtoh(host, m.ptr)
    return host[:, :m.cols]


def test_rows_beyond_the_grid_limit(device):
    """70000 rows: the grid's y is capped at 65535 and the kernel's row loop does the rest."""
    x = sym.Variable("x")
    ex = sym.tanh(x).simple_bind(backend="cuda", grad_req="null", x=(70000, 3))
    value = np.random.default_rng(0).standard_normal((70000, 3)).astype(np.float32)
    (out,) = ex.forward(x=value)
    np.testing.assert_allclose(out, np.tanh(value), rtol=1e-5, atol=1e-6)
