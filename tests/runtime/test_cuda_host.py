"""The CUDA engine's host logic, without a GPU.

The engine runs on runtime.cuda.recording.RecordingDevice: device memory is numpy bytes behind fake
pointers, kernels are their C rendering called at the host addresses the pointers stand for,
and cuBLAS calls are carried out by reading pointers and leading dimensions as column-major
matrices exactly as cuBLAS would. So the launch configuration, argument packing, arena pointer
arithmetic, the row-major -> column-major GEMM mapping, the device ops, the host ops, graph
segments and the upload policy are all checked here, against the CPU engine on real programs.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import types
from itertools import product
from pathlib import Path

import numpy as np
import pytest

import symrnn as sym
from runtime.compile_cache import kernel_args
from runtime.cuda import cublas
from runtime.cuda import device as cuda_device
from runtime.cuda.commands import (
    Gemm,
    Launch,
    Matrix,
    copy_call,
    gemm_call,
    launch_args,
    launch_config,
)
from runtime.cuda.engine import ALIGN, CudaEngine
from runtime.cuda.recording import DeviceFault, RecordingDevice
from runtime.errors import BackendUnavailable
from runtime.executor import Executor
from runtime.program import Buffer, Kernel, Program, Step, View

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
TOL = {"float32": 1e-5, "float64": 1e-12}


# ---- launch configuration and argument packing -------------------------------------------------

@pytest.mark.parametrize("rows, cols, grid", [
    (1, 1, (1, 1, 1)), (3, 256, (1, 3, 1)), (3, 257, (2, 3, 1)), (64, 2048, (8, 64, 1)),
    (70000, 5, (1, 65535, 1)), (0, 0, (1, 1, 1)),
])
def test_launch_config(rows, cols, grid):
    assert launch_config(rows, cols) == (grid, (256, 1, 1))

CUBLAS_C_SOURCE = Path(__file__).with_name("fake_cublas.c")  # a stand-in libcublas


def test_launch_args_follow_kernel_args():
    k = Kernel("k", "", "", n_in=2, n_out=1, n_masks=1, dtype="float32")
    args = launch_args(k, 3, 7, [(0x1000, 7), (0x2000, 0), (0x3000, 9)], 0x4000, 0x5000)
    assert [type(a) for a in args] == [np.int64, np.int64, np.uintp, np.int64, np.uintp,
                                       np.int64, np.uintp, np.int64, np.uintp, np.uintp]
    assert [int(a) for a in args] == [3, 7, 0x1000, 7, 0x2000, 0, 0x3000, 9, 0x4000, 0x5000]
    assert len(args) == len(kernel_args(2, 1))


# ---- the cuBLAS mapping, checked by a literal column-major cuBLAS ---------------------------------

def _placed(dev, x: np.ndarray, ld: int, offset: int):
    """`x` written as a row-major window (row stride ld) at `offset` elements into a new
    allocation filled with a sentinel; returns (Matrix, the allocation's elements)."""
    rows, cols = x.shape
    size = offset + (rows - 1) * ld + cols + 5
    base = dev.alloc(size * x.itemsize)
    mem = dev.array_at(base, x.dtype, size)
    mem[:] = -7.0
    np.lib.stride_tricks.as_strided(mem[offset:], x.shape, (ld * x.itemsize, x.itemsize))[...] = x
    return Matrix(base + offset * x.itemsize, rows, cols, ld), mem


def _window(mem, m: Matrix, offset: int):
    item = mem.itemsize
    return np.lib.stride_tricks.as_strided(mem[offset:], (m.rows, m.cols), (m.ld * item, item))


def test_gemm_mapping_swaps_operands():
    """Row-major C = A B is the column-major C^T = B^T A^T: operands swapped, ld as given."""
    a, b, c = Matrix(100, 2, 3, 5), Matrix(200, 3, 4, 4), Matrix(300, 2, 4, 6)
    assert gemm_call("float32", a, b, c) == Gemm("float32", "N", "N", 4, 2, 3, 1.0, 200, 4,
                                                 100, 5, 0.0, 300, 6)
    at, bt = Matrix(100, 3, 2, 2), Matrix(200, 4, 3, 3)
    assert gemm_call("float64", at, bt, c, True, True, beta=1.0) == Gemm(
        "float64", "T", "T", 4, 2, 3, 1.0, 200, 3, 100, 2, 1.0, 300, 6)
    with pytest.raises(ValueError, match="multiplies"):
        gemm_call("float32", a, a, c)


@pytest.mark.parametrize("trans_a, trans_b", list(product((False, True), repeat=2)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("pad", [(0, 0, 0), (3, 1, 2)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_mapping_on_column_major_cublas(trans_a, trans_b, dtype, pad, accumulate):
    m, k, n = 5, 4, 3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    dev = RecordingDevice()
    (ma, _), (mb, _) = (_placed(dev, x, x.shape[1] + p, 2) for x, p in ((a, pad[0]), (b, pad[1])))
    mc, mem_c = _placed(dev, c0, n + pad[2], 3)
    before = mem_c.copy()
    gemm_call(dtype, ma, mb, mc, trans_a, trans_b, beta=float(accumulate)).issue(dev)
    want = (a.T if trans_a else a) @ (b.T if trans_b else b) + (c0 if accumulate else 0)
    np.testing.assert_allclose(_window(mem_c, mc, 3), want, rtol=TOL[dtype], atol=TOL[dtype])
    outside = np.ones(mem_c.size, bool)
    _window(outside, mc, 3)[...] = False
    np.testing.assert_array_equal(mem_c[outside], before[outside])  # padding untouched


def test_gemm_single_rows_with_zero_stride():
    """A one-row operand may have ld 0 (a broadcast view); cuBLAS gets ld >= cols."""
    dev = RecordingDevice()
    x = np.arange(4, dtype=np.float32)[None]
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    mx, _ = _placed(dev, x, 4, 0)
    mw, _ = _placed(dev, w, 3, 0)
    mc, mem = _placed(dev, np.zeros((1, 3), np.float32), 3, 0)
    call = gemm_call("float32", Matrix(mx.ptr, 1, 4, 0), mw, Matrix(mc.ptr, 1, 3, 0))
    assert (call.lda, call.ldb, call.ldc) == (3, 4, 3)
    call.issue(dev)
    np.testing.assert_array_equal(mem[:3], (x @ w)[0])
    with pytest.raises(ValueError, match="ld < cols"):
        _ = Matrix(0, 2, 3, 0).lead


@pytest.mark.parametrize("transpose", [False, True])
def test_copy_mapping(transpose):
    dev = RecordingDevice()
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    src, _ = _placed(dev, x, 6, 1)
    shape = x.T.shape if transpose else x.shape
    dst, mem = _placed(dev, np.zeros(shape), shape[1] + 2, 4)
    copy_call("float64", src, dst, transpose).issue(dev)
    np.testing.assert_array_equal(_window(mem, dst, 4), x.T if transpose else x)
    assert mem[0] == -7.0 and mem[-1] == -7.0


def test_fake_cublas_refuses_what_cublas_refuses():
    dev = RecordingDevice()
    base = dev.alloc(64 * 4)
    with pytest.raises(DeviceFault, match="ld=2"):  # 3 x 3 column-major with lda 2
        dev.gemm("float32", "N", "N", 3, 3, 3, 1.0, base, 2, base, 3, 0.0, base + 128, 3)
    with pytest.raises(DeviceFault, match="overlaps"):
        dev.gemm("float32", "N", "N", 2, 2, 2, 1.0, base, 2, base + 64, 2, 0.0, base + 8, 2)
    with pytest.raises(DeviceFault, match="inside one allocation"):
        dev.gemm("float32", "N", "N", 8, 8, 8, 1.0, base, 8, base, 8, 0.0, base + 128, 8)


@needs_cc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ctypes_binding_on_a_stand_in_cublas(tmp_path, dtype):
    """The ctypes binding itself (argument types, enums, alpha/beta by reference) against a
    C stand-in for libcublas with cuBLAS's column-major semantics and ld rules."""
    src, lib = tmp_path / "cublas.c", tmp_path / "libcublas.so"
    src.write_text(CUBLAS_C_SOURCE.read_text())
    subprocess.run(["cc", "-O1", "-fPIC", "-shared", str(src), "-o", str(lib)], check=True)
    blas = cublas.Cublas(stream=0x5, lib=ctypes.CDLL(str(lib)))
    assert blas.set_workspace(0, 1 << 20)
    rng = np.random.default_rng(0)
    for trans_a, trans_b in product((False, True), repeat=2):
        a = rng.standard_normal((4, 5) if trans_a else (5, 4)).astype(dtype)
        b = rng.standard_normal((3, 4) if trans_b else (4, 3)).astype(dtype)
        host = [np.pad(x, ((0, 0), (0, 2))) for x in (a, b, np.zeros((5, 3), dtype))]
        ma, mb, mc = (Matrix(x.ctypes.data, x.shape[0], x.shape[1] - 2, x.shape[1])
                      for x in host)
        gemm_call(dtype, ma, mb, mc, trans_a, trans_b).issue(blas)
        want = (a.T if trans_a else a) @ (b.T if trans_b else b)
        np.testing.assert_allclose(host[2][:, :3], want, rtol=TOL[dtype], atol=TOL[dtype])
        assert not host[2][:, 3:].any()
    t = np.zeros(a.T.shape, dtype)
    copy_call(dtype, ma, Matrix(t.ctypes.data, *t.shape, t.shape[1]), True).issue(blas)
    np.testing.assert_array_equal(t, a.T)
    with pytest.raises(RuntimeError, match="CUBLAS_STATUS_INVALID_VALUE"):
        blas.gemm(dtype, "N", "N", 5, 3, 4, 1.0, ma.ptr, 1, mb.ptr, 6, 0.0, mc.ptr, 5)


# ---- engines on real programs --------------------------------------------------------------

def stack_symbol(typ: str, T: int = 4):
    rnn = sym.RNNFactory(num_hidden=[7, 5], data_dim=4, typ=typ, dropout=0.3, zoneout=0.2,
                         name="rnn")
    parts = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    last = parts[1] + parts[3] if typ == "lstm" else parts[1]  # final h (and c)
    return sym.Group([parts[0][-1], *last])


def pair(symbol, fuse=True, dtype="float32", shapes=None, **engine):
    """(the CPU executor, an executor of CudaEngine on a RecordingDevice) with equal args."""
    cpu = symbol.simple_bind(backend="cpu", optimize=fuse, dtype=dtype,
                             **({"data": (4, 3, 4)} if shapes is None else shapes))
    dev = RecordingDevice()
    gpu = Executor(CudaEngine(cpu.engine.train.program, device=dev, **engine), cpu.grad_req)
    rng = np.random.default_rng(0)
    args = {n: (rng.standard_normal(v.shape) * 0.5).astype(v.dtype) for n, v in
            cpu.arg_dict.items() if v.dtype.kind == "f"}
    cpu.copy_params_from(args)
    gpu.copy_params_from(args)
    return cpu, gpu, dev


def assert_same(cpu, gpu, dtype, seeds=(11, 12, 13)):
    tol = {"rtol": TOL[dtype], "atol": TOL[dtype]}
    rng = np.random.default_rng(1)
    for seed in seeds:
        outs = [ex.forward(is_train=True, seed=seed) for ex in (cpu, gpu)]
        for a, b in zip(*outs):
            np.testing.assert_allclose(b, a, **tol)
        grads = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs[0]]
        for ex in (cpu, gpu):
            ex.backward(grads)
        for name, g in cpu.grad_dict.items():
            np.testing.assert_allclose(gpu.grad_dict[name], g, err_msg=name, **tol)
    for a, b in zip(cpu.forward(is_train=False), gpu.forward(is_train=False)):
        np.testing.assert_allclose(b, a, **tol)


@needs_cc
@pytest.mark.parametrize("typ", ["lstm", "gru"])
@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_matches_cpu(typ, fuse, dtype):
    cpu, gpu, _ = pair(stack_symbol(typ), fuse, dtype)
    assert_same(cpu, gpu, dtype)
    summary = gpu.engine.summary()
    assert summary["forward"]["HostOp"] == summary["backward"]["HostOp"] == 0
    assert summary["forward"]["Segment"] == summary["backward"]["Segment"] == 1


@needs_cc
@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_graphs_capture_the_second_run_and_replay(typ):
    cpu, gpu, dev = pair(stack_symbol(typ), graphs=True)
    assert_same(cpu, gpu, "float32", seeds=(1,))  # each phase once, then inference
    assert dev.count("begin_capture") == dev.count("launch_graph") == 1  # forward's 2nd run
    assert_same(cpu, gpu, "float32", seeds=(2, 3))
    assert dev.count("begin_capture") == 2 and dev.count("launch_graph") == 1 + 5
    launches = dev.count("launch")
    assert_same(cpu, gpu, "float32", seeds=(4,))  # new seeds reach the replayed graphs
    assert dev.count("launch") == launches and dev.count("begin_capture") == 2
    assert dev.count("launch_graph") == 6 + 3


@needs_cc
@pytest.mark.parametrize("graphs", [False, True])
def test_host_ops_between_segments(graphs):
    """With device ops off, stack/sum/concat run on the host, between segments (the forward
    has none: its one segment runs every launch and product)."""
    cpu, gpu, _ = pair(stack_symbol("gru"), device_ops=False, graphs=graphs)
    assert_same(cpu, gpu, "float32")
    summary = gpu.engine.summary()
    assert summary["forward"]["HostOp"] == 0 and summary["forward"]["Segment"] == 1
    assert summary["forward"]["Geam"] == 0
    assert summary["backward"]["HostOp"] > 1 and summary["backward"]["Segment"] > 1


@needs_cc
def test_language_model_with_integer_inputs_and_host_losses():
    lm = sym.CharLM(vocab_size=11, embed_dim=6, num_hidden=[7, 5], dropout=0.2)
    net, _ = lm.symbol(seq_len=4, batch=3)
    cpu, gpu, _ = pair(net, shapes={})
    tokens = np.random.default_rng(2).integers(0, 11, (2, 4, 3)).astype(np.int32)
    for ex in (cpu, gpu):
        ex.copy_params_from({"data": tokens[0], "label": tokens[1]})
    assert_same(cpu, gpu, "float32")
    names = {type(i).__name__ for p in gpu.engine.phases.values() for i in p}
    assert "HostOp" in names


@needs_cc
def test_pointers_masks_and_control_block():
    _, gpu, dev = pair(stack_symbol("lstm"))
    engine, program = gpu.engine, gpu.engine.program
    arena = [b for b in program.buffers.values() if b.kind == "arena"]
    assert next(c[1] for c in dev.calls if c[0] == "alloc") == sum(-(-b.size * 4 // ALIGN) * ALIGN for b in arena)  # one allocation
    launches = [c for s in engine.phases.values() for seg in s for c in seg.commands
                if isinstance(c, Launch)]
    steps = [s for p in ("forward", "backward") for s in program.steps_in(p)
             if s.kind == "kernel"]
    assert len(launches) == len(steps)
    for launch, step in zip(launches, steps):
        views = [*step.inputs, *step.outputs]
        pointers = [int(a) for a in launch.args[2:-2:2]]
        assert pointers == [engine.bases[v.buffer] + 4 * v.offset for v in views]
        assert [int(a) for a in launch.args[3:-2:2]] == [v.ld for v in views]
        masks = tuple(step.attrs["masks"]) or (0,)
        assert tuple(dev.array_at(int(launch.args[-1]), np.uint32, len(masks))) == masks
        assert (launch.grid, launch.block) == launch_config(step.attrs["rows"],
                                                            step.attrs["cols"])
    gpu.forward(is_train=True, seed=2**64 + 5)
    assert list(dev.array_at(engine.ctl, np.uint64, 2)) == [5, 1]


def test_arena_buffers_of_two_dtypes_share_one_aligned_allocation():
    program = Program(
        dtype="float32", args={"x": ((2, 3), "float32"), "y": ((3, 2), "float64")},
        outputs=[("a", View("arena.float32", 0, 2, 2, 2, (2, 2))),
                 ("b", View("arena.float64", 1, 3, 3, 4, (3, 3)))],
        grads={}, head_grads=[],
        buffers={"arg:x": Buffer("arg:x", "arg", 6, "float32"),
                 "arg:y": Buffer("arg:y", "arg", 6, "float64"),
                 "arena.float32": Buffer("arena.float32", "arena", 5, "float32"),
                 "arena.float64": Buffer("arena.float64", "arena", 13, "float64")},
        steps=[Step("gemm", "forward", "a", [View("arg:x", 0, 2, 3, 3, (2, 3))] * 2,
                    [View("arena.float32", 0, 2, 2, 2, (2, 2))], {"trans_b": True}),
               Step("gemm", "forward", "b", [View("arg:y", 0, 3, 2, 2, (3, 2))] * 2,
                    [View("arena.float64", 1, 3, 3, 4, (3, 3))], {"trans_b": True})],
        kernels={})
    dev = RecordingDevice()
    engine = CudaEngine(program, device=dev)
    assert engine.bases["arena.float64"] - engine.bases["arena.float32"] == ALIGN
    assert next(c[1] for c in dev.calls if c[0] == "alloc") == 2 * ALIGN
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((3, 2))
    a, b = engine.forward({"x": x, "y": y}, False, 0)
    np.testing.assert_allclose(a, x @ x.T, rtol=1e-6)
    np.testing.assert_allclose(b, y @ y.T, rtol=1e-12)


def test_host_op_into_padded_rows_keeps_the_padding():
    out = View("arena.float32", 1, 3, 2, 4, (3, 2))
    program = Program(
        dtype="float32", args={"x": ((2, 3), "float32")}, outputs=[("y", out)], grads={},
        head_grads=[], buffers={"arg:x": Buffer("arg:x", "arg", 6, "float32"),
                                "arena.float32": Buffer("arena.float32", "arena", 12, "float32")},
        steps=[Step("op", "forward", "y", [View("arg:x", 0, 2, 3, 3, (2, 3))], [out],
                    {"op": "transpose"})], kernels={})
    dev = RecordingDevice()
    for device_ops in (False, True):
        engine = CudaEngine(program, device=dev, device_ops=device_ops)
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        (y,) = engine.forward({"x": x}, False, 0)
        np.testing.assert_array_equal(y, x.T)
        arena = dev.array_at(engine.bases["arena.float32"], np.float32, 12)
        assert np.isnan(arena[[0, 3, 4, 7, 8, 11]]).all()  # NaN-initialized under SYMRNN_DEBUG


@needs_cc
@pytest.mark.parametrize("policy", ["always", "changed"])
def test_upload_policy(policy):
    _, gpu, dev = pair(stack_symbol("lstm"), upload=policy)
    n_args = len(gpu.arg_dict)

    def uploads():
        before = dev.count("memcpy_htod")
        gpu.forward(is_train=True, seed=1)
        return dev.count("memcpy_htod") - before - 1  # minus the control block

    assert uploads() == n_args
    assert uploads() == (n_args if policy == "always" else 0)
    gpu.arg_dict["data"] += 1.0
    assert uploads() == (n_args if policy == "always" else 1)
    with pytest.raises(ValueError, match="upload"):
        CudaEngine(gpu.engine.program, device=dev, upload="never")


# ---- BackendUnavailable, one missing piece at a time -------------------------------------------

def test_bind_without_pycuda_names_pycuda():
    try:
        import pycuda  # noqa: F401
        pytest.skip("PyCUDA is installed here")
    except ImportError:
        pass
    with pytest.raises(BackendUnavailable, match=r"PyCUDA.*pip install -e '\.\[cuda\]'"):
        stack_symbol("gru").simple_bind(backend="cuda", data=(4, 3, 4))


def fake_driver(devices: int):
    """A stand-in `pycuda.driver` with `devices` GPUs and nothing else."""
    context = types.SimpleNamespace(push=lambda: None, pop=lambda: None)
    device = types.SimpleNamespace(retain_primary_context=lambda: context, name=lambda: "Fake")

    class Device:
        count = staticmethod(lambda: devices)

        def __new__(cls, ordinal):
            return device

    return types.SimpleNamespace(Error=type("Error", (Exception,), {}), init=lambda: None,
                                 Device=Device, Stream=lambda: types.SimpleNamespace(handle=0))


@pytest.mark.parametrize("missing, match", [
    ("driver", "libcuda.so.1"), ("device", "no CUDA device 0"), ("nvcc", "nvcc.*CUDA toolkit"),
    ("cublas", r"cuBLAS.*libcublas.so.13.*nvidia-cublas"),
])
def test_each_missing_piece_is_named(monkeypatch, tmp_path, missing, match):
    """A stand-in `pycuda` package, complete but for the piece `missing`."""
    pkg = types.ModuleType("pycuda")
    pkg.__path__ = []
    monkeypatch.setitem(sys.modules, "pycuda", pkg)
    driver = None if missing == "driver" else fake_driver(0 if missing == "device" else 1)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)  # None: ImportError, as when
    monkeypatch.setattr(cuda_device.atexit, "register", lambda *a: None)  # libcuda is absent
    if missing == "nvcc":
        monkeypatch.setattr(cuda_device.shutil, "which", lambda name: None)
        monkeypatch.setattr(cuda_device.os, "access", lambda path, mode: False)
    else:
        monkeypatch.setattr(cuda_device, "find_nvcc", lambda: "/usr/bin/nvcc")
    broken = tmp_path / "libcublas.so.13"
    broken.write_text("not a library")
    monkeypatch.setattr(cublas, "candidates", lambda: [str(broken)])
    with pytest.raises(BackendUnavailable, match=match):
        cuda_device.PyCudaDevice()


def test_cublas_search_order(monkeypatch, tmp_path):
    lib64 = tmp_path / "cuda" / "lib64"
    lib64.mkdir(parents=True)
    for name in ("libcublas.so.12", "libcublas.so.13.1.0", "libcublasLt.so.13"):
        (lib64 / name).write_text("")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "cuda"))
    monkeypatch.setenv("SYMRNN_CUBLAS", "/opt/mine/libcublas.so")
    monkeypatch.setattr(cublas.ctypes.util, "find_library", lambda name: None)
    found = cublas.candidates()
    assert found[:3] == ["/opt/mine/libcublas.so", str(lib64 / "libcublas.so.13.1.0"),
                         str(lib64 / "libcublas.so.12")]
    assert cublas.OPS == {"N": 0, "T": 1} and ctypes.sizeof(ctypes.c_long) == 8
