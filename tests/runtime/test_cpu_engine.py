"""The CPU engine on hand-built Programs, checked against numpy.

Kernels are tiny hand-written C functions compiled with the system compiler into tmp_path (the
renderer is tested elsewhere); one test runs them through runtime.compile_cache instead.
"""

import ctypes
import shutil
import subprocess
import tracemalloc

import numpy as np
import pytest

from runtime.cpu import CpuEngine
from runtime.executor import Executor
from runtime.program import Buffer, Kernel, Program, Step, View

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

# out0 = in0 + in1 (+ masks[0] + seed % 5 in training): shows that ctl and masks arrive.
ADD_SOURCE = """
#include <stdint.h>
typedef {real} real;
void {name}(long rows, long cols, const real* in0, long ld_in0, const real* in1, long ld_in1,
            real* out0, long ld_out0, const uint64_t* ctl, const uint32_t* masks)
{{
    real extra = ctl[1] ? (real)(masks[0] + ctl[0] % 5) : (real)0;
    for (long r = 0; r < rows; ++r)
        for (long c = 0; c < cols; ++c)
            out0[r * ld_out0 + c] = in0[r * ld_in0 + c] + in1[r * ld_in1 + c] + extra;
}}
"""
REAL = {"float32": "float", "float64": "double"}


def add_kernel(dtype):
    name = f"test_add_{dtype}"
    src = ADD_SOURCE.format(real=REAL[dtype], name=name)
    return Kernel(name, src, "", n_in=2, n_out=1, n_masks=1, dtype=dtype)


@pytest.fixture
def loader(tmp_path):
    """load_kernels for CpuEngine: cc into tmp_path, counting the kernels it loads."""
    loaded = []

    def load(kernels):
        fns = {}
        for k in kernels:
            src, lib = tmp_path / f"{k.name}.c", tmp_path / f"{k.name}.so"
            src.write_text(k.c_source)
            subprocess.run(["cc", "-O2", "-fPIC", "-shared", str(src), "-o", str(lib)],
                           check=True)
            fns[k.name] = getattr(ctypes.CDLL(str(lib)), k.name)
            loaded.append(k.name)
        return fns
    load.loaded = loaded
    return load


def v(buffer, offset, rows, cols, ld=None, shape=None):
    return View(buffer, offset, rows, cols, cols if ld is None else ld,
                (rows, cols) if shape is None else tuple(shape))


# ---- program 1: gemm into a padded arena temp, kernel with ld > cols and ld = 0, a loss --------

T, N, K, C = 2, 3, 4, 5
LD = C + 3  # the temp's rows are padded


def loss_program(dtype="float32"):
    """Argument buffers named as codegen.emit names them, `arg:NAME`."""
    k = add_kernel(dtype)
    x, w, b, label = "arg:x", "arg:w", "arg:b", "arg:label"
    buffers = {
        x: Buffer(x, "arg", T * N * K, dtype), w: Buffer(w, "arg", C * K, dtype),
        b: Buffer(b, "arg", C, dtype), label: Buffer(label, "arg", T * N, dtype),
        "arena": Buffer("arena", "arena", 2 * T * N * LD + 1 + 2 * C * K + C, dtype),
        "g_loss": Buffer("g_loss", "head_grad", 1, dtype),
        "g_y": Buffer("g_y", "head_grad", T * N * C, dtype),
    }
    temp, y, loss = 0, T * N * LD, 2 * T * N * LD  # y keeps the padded stride too
    dw, db = loss + 1, loss + 1 + C * K
    rows = T * N
    steps = [
        Step("gemm", "forward", "xw", [v(x, 0, rows, K), v(w, 0, C, K)],
             [v("arena", temp, rows, C, LD)], {"trans_b": True}),
        Step("kernel", "forward", "y", [v("arena", temp, rows, C, LD), v(b, 0, rows, C, 0)],
             [v("arena", y, rows, C, LD)], {"kernel": k.name, "rows": rows, "cols": C,
                                             "masks": (7,)}),
        Step("op", "forward", "loss",
             [v("arena", y, rows, C, LD, (T, N, C)), v(label, 0, 1, rows, shape=(T, N))],
             [v("arena", loss, 1, 1, shape=())], {"op": "softmax_cross_entropy"}),
        Step("gemm", "backward", "dw", [v("g_y", 0, rows, C), v(x, 0, rows, K)],
             [v("arena", dw, C, K)], {"trans_a": True}),
        Step("op", "backward", "db", [v("g_y", 0, rows, C, shape=(T, N, C))],
             [v("arena", db, 1, C, shape=(C,))], {"op": "sum", "axis": (0, 1)}),
    ]
    return Program(
        dtype=dtype,
        args={"x": ((T, N, K), dtype), "w": ((C, K), dtype), "b": ((C,), dtype),
              "label": ((T, N), dtype)},
        outputs=[("loss", v("arena", loss, 1, 1, shape=())),
                 ("y", v("arena", y, rows, C, LD, (T, N, C)))],
        grads={"w": v("arena", dw, C, K), "b": v("arena", db, 1, C, shape=(C,))},
        head_grads=[("loss", "g_loss"), ("y", "g_y")],
        buffers=buffers, steps=steps, kernels={k.name: k},
    )


def loss_args(dtype="float32", seed=0):
    r = np.random.default_rng(seed)
    return {"x": r.standard_normal((T, N, K)).astype(dtype),
            "w": r.standard_normal((C, K)).astype(dtype),
            "b": r.standard_normal(C).astype(dtype),
            "label": r.integers(0, C, (T, N)).astype(dtype)}


def loss_expected(a, is_train=False, seed=0):
    y = a["x"].astype(np.float64) @ a["w"].T.astype(np.float64) + a["b"]
    y = y + (7 + seed % 5 if is_train else 0)
    z = y - y.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    idx = a["label"].astype(int)
    loss = -np.take_along_axis(logp, idx[..., None], -1).sum()
    return loss, y


TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("is_train,seed", [(False, 0), (True, 12)])
def test_forward_matches_numpy(loader, dtype, is_train, seed):
    engine, a = CpuEngine(loss_program(dtype), loader), loss_args(dtype)
    loss, y = engine.forward(a, is_train, seed)
    want_loss, want_y = loss_expected(a, is_train, seed)
    assert loss.shape == () and y.shape == (T, N, C) and y.dtype == dtype
    np.testing.assert_allclose(loss, want_loss, **TOL[dtype])
    np.testing.assert_allclose(y, want_y, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backward_matches_numpy(loader, dtype):
    engine, a = CpuEngine(loss_program(dtype), loader), loss_args(dtype)
    engine.forward(a, True, 3)
    g_y = np.random.default_rng(5).standard_normal((T, N, C)).astype(dtype)
    grads = engine.backward([np.ones((), dtype), g_y])
    g2 = g_y.reshape(-1, C).astype(np.float64)
    np.testing.assert_allclose(grads["w"], g2.T @ a["x"].reshape(-1, K), **TOL[dtype])
    np.testing.assert_allclose(grads["b"], g2.sum(0), **TOL[dtype])
    assert grads["b"].shape == (C,)


def test_runs_under_the_executor(loader):
    engine, a = CpuEngine(loss_program("float64"), loader), loss_args("float64")
    ex = Executor(engine, grad_req={"w": "add", "b": "write"}, args=a)
    assert ex.program is engine.program
    out = ex.forward(is_train=False)
    np.testing.assert_allclose(out[0], loss_expected(a)[0], rtol=1e-12)
    g_y = np.ones((T, N, C))
    ex.backward([np.ones(()), g_y])
    ex.backward([np.ones(()), g_y])
    np.testing.assert_allclose(ex.grad_dict["w"], 2 * g_y.reshape(-1, C).T @
                               a["x"].reshape(-1, K), rtol=1e-12)
    np.testing.assert_allclose(ex.grad_dict["b"], np.full(C, T * N), rtol=1e-12)


def test_program_survives_a_json_round_trip(loader):
    program = Program.from_json(loss_program("float64").to_json())
    a = loss_args("float64")
    loss, _ = CpuEngine(program, loader).forward(a, False, 0)
    np.testing.assert_allclose(loss, loss_expected(a)[0], rtol=1e-12)


def test_outputs_are_copies(loader):
    engine, a = CpuEngine(loss_program(), loader), loss_args()
    _, y1 = engine.forward(a, False, 0)
    y1[...] = 0
    _, y2 = engine.forward(a, False, 0)
    assert np.abs(y2).sum() > 0


def test_a_replaced_argument_array_is_picked_up_and_only_its_steps_rebuilt(loader):
    engine, a = CpuEngine(loss_program("float64"), loader), loss_args("float64")
    engine.forward(a, False, 0)
    calls = list(engine._calls)
    engine.forward(a, False, 0)
    assert all(x is y for x, y in zip(calls, engine._calls))  # bound once, reused
    a["b"] = a["b"] + 1.0  # a new array for b: the kernel step must see it
    _, y = engine.forward(a, False, 0)
    np.testing.assert_allclose(y, loss_expected(a)[1], rtol=1e-12)
    rebuilt = [s.name for s, x, old in zip(engine._steps, engine._calls, calls) if x is not old]
    assert rebuilt == ["y"]
    a["x"][...] = 0.5  # written in place: same memory, nothing rebuilt, new values used
    calls = list(engine._calls)
    _, y = engine.forward(a, False, 0)
    assert all(x is y for x, y in zip(calls, engine._calls))
    np.testing.assert_allclose(y, loss_expected(a)[1], rtol=1e-12)


def test_unbindable_arrays_are_staged(loader):
    engine, a = CpuEngine(loss_program("float32"), loader), loss_args("float32")
    a64 = {n: x.astype(np.float64) for n, x in a.items()}  # wrong dtype
    a64["w"] = np.asfortranarray(a64["w"])  # and not C-contiguous
    _, y = engine.forward(a64, False, 0)
    np.testing.assert_allclose(y, loss_expected(a)[1], rtol=1e-5)
    a64["w"][0, 0] += 1.0  # staged arrays are copied on every call
    _, y = engine.forward(a64, False, 0)
    np.testing.assert_allclose(y, loss_expected(a64)[1], rtol=1e-5)


def test_malformed_programs_are_refused(loader):
    p = loss_program()
    p.steps[1].outputs[0] = v("arena", p.buffers["arena"].size - 2, T * N, C, LD)
    with pytest.raises(ValueError, match="reaches past buffer 'arena'"):
        CpuEngine(p, loader)
    p = loss_program()
    p.steps[1].attrs["masks"] = ()
    with pytest.raises(ValueError, match=r"\(inputs, outputs, masks\) \(2, 1, 0\)"):
        CpuEngine(p, loader)
    p = loss_program()
    p.steps[2].attrs["op"] = "nope"
    with pytest.raises(ValueError, match="'nope', which is not a library op"):
        CpuEngine(p, loader)


def test_default_loader_is_the_compile_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMRNN_CACHE_DIR", str(tmp_path))
    engine, a = CpuEngine(loss_program()), loss_args()
    loss, y = engine.forward(a, True, 2)
    want_loss, want_y = loss_expected(a, True, 2)
    np.testing.assert_allclose(y, want_y, rtol=1e-5)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)


# ---- program 2: a recurrence, h_t = x_t W^T + h_{t-1} U, for the allocation check -----------

def recurrence_program(steps, n, k, h):
    ker = add_kernel("float32")
    buffers = {"x": Buffer("x", "arg", steps * n * k, "float32"),
               "w": Buffer("w", "arg", h * k, "float32"),
               "u": Buffer("u", "arg", h * h, "float32"),
               "h0": Buffer("h0", "arg", n * h, "float32"),
               "arena": Buffer("arena", "arena", 2 * steps * n * h + n * h, "float32")}
    xw, hs, hu = 0, steps * n * h, 2 * steps * n * h
    prog = [Step("gemm", "forward", "xw", [v("x", 0, steps * n, k), v("w", 0, h, k)],
                 [v("arena", xw, steps * n, h)], {"trans_b": True})]
    for t in range(steps):
        prev = v("h0", 0, n, h) if t == 0 else v("arena", hs + (t - 1) * n * h, n, h)
        prog += [Step("gemm", "forward", f"hu{t}", [prev, v("u", 0, h, h)],
                      [v("arena", hu, n, h)]),
                 Step("kernel", "forward", f"h{t}",
                      [v("arena", xw + t * n * h, n, h), v("arena", hu, n, h)],
                      [v("arena", hs + t * n * h, n, h)],
                      {"kernel": ker.name, "rows": n, "cols": h, "masks": (t,)})]
    last = v("arena", hs + (steps - 1) * n * h, 1, 4, shape=(4,))  # a small output
    return Program("float32", {"x": ((steps, n, k), "float32"), "w": ((h, k), "float32"),
                               "u": ((h, h), "float32"), "h0": ((n, h), "float32")},
                   [("h_last", last)], {}, [], buffers, prog, {ker.name: ker})


def test_recurrence_matches_numpy_and_forward_allocates_nothing_sizable(loader):
    steps, n, k, h = 20, 64, 32, 256  # one (n, h) float32 temporary is 64 KiB
    r = np.random.default_rng(0)
    a = {"x": r.standard_normal((steps, n, k)).astype("float32"),
         "w": (0.1 * r.standard_normal((h, k))).astype("float32"),
         "u": (0.05 * r.standard_normal((h, h))).astype("float32"),
         "h0": r.standard_normal((n, h)).astype("float32")}
    engine = CpuEngine(recurrence_program(steps, n, k, h), loader)
    assert loader.loaded == ["test_add_float32"]  # one compiled kernel, launched 20 times
    (got,) = engine.forward(a, False, 0)
    hh = a["h0"].astype(np.float64)
    for t in range(steps):
        hh = a["x"][t] @ a["w"].T.astype(np.float64) + hh @ a["u"]
    np.testing.assert_allclose(got, hh[0, :4], rtol=1e-4, atol=1e-4)
    tracemalloc.start()
    try:
        engine.forward(a, True, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024, f"forward allocated a peak of {peak} bytes"


def test_argument_buffers_take_no_memory_before_the_first_call(loader):
    """The caller's arrays are bound at the first call: the engine holds no copy of its own of
    the (T-long) data meanwhile; run before any argument is bound, it runs on arrays of its
    own (as it did before)."""
    steps, n, k, h = 20, 64, 1024, 8  # x is 5.2 MB, the arena 84 kB
    program = recurrence_program(steps, n, k, h)
    tracemalloc.start()
    try:
        engine = CpuEngine(program, loader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < program.buffers["x"].size * 4 // 4, f"construction peaked at {peak} bytes"
    idle = CpuEngine(program, loader)
    idle._run("forward")  # what backward() before any forward() runs
    assert all(c is not None for c in idle._calls)
    zeros = {name: np.zeros(shape, dtype) for name, (shape, dtype) in program.args.items()}
    (got,) = engine.forward(zeros, False, 0)
    assert got.shape == (4,) and not got.any()


def test_compiled_symbol_matches_the_reference_engine(tmp_path, monkeypatch):
    """End to end through codegen: a two-layer perceptron with a loss, fused and unfused."""
    sym = pytest.importorskip("symrnn")
    monkeypatch.setenv("SYMRNN_CACHE_DIR", str(tmp_path))
    data, label = sym.Variable("data"), sym.Variable("label")
    h = sym.tanh(sym.FullyConnected(data, num_hidden=5, name="fc1"), name="act")
    loss = sym.softmax_cross_entropy(sym.FullyConnected(h, num_hidden=3, name="fc2"), label)
    r = np.random.default_rng(0)
    values = None
    results = []
    for backend, fuse in [("reference", True), ("cpu", True), ("cpu", False)]:
        ex = loss.simple_bind(backend=backend, optimize=fuse, dtype="float64", data=(T, N, K))
        values = values or {n: r.integers(0, 3, a.shape).astype(a.dtype) if n == "label"
                            else r.standard_normal(a.shape) for n, a in ex.arg_dict.items()}
        ex.copy_params_from(values)
        out = ex.forward(is_train=True)
        ex.backward()
        results.append((out[0], {n: g.copy() for n, g in ex.grad_dict.items()}))
    (ref_loss, ref_grads), *compiled = results
    for got_loss, got_grads in compiled:
        np.testing.assert_allclose(got_loss, ref_loss, rtol=1e-12)
        assert got_grads.keys() == ref_grads.keys()
        for n, g in ref_grads.items():
            np.testing.assert_allclose(got_grads[n], g, rtol=1e-10, atol=1e-12, err_msg=n)


def test_row_split_kernels_match_the_reference_masks_included(tmp_path, monkeypatch):
    """Kernels of PARALLEL_KERNEL elements or more run as row blocks over the pool
    (`NAME_task`); a block draws its rows' masks from their global index, so a training LSTM
    with dropout and zoneout agrees with the reference executor, in float64."""
    sym = pytest.importorskip("symrnn")
    from runtime.cpu import engine as cpu
    from runtime.cpu import packed_gemm

    monkeypatch.setenv("SYMRNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("SYMRNN_PACKED_GEMM", "1")
    T, N, H = 3, 40, 2 * cpu.PARALLEL_KERNEL // 40 // 4 * 4  # 40 rows, 2 x the threshold
    rnn = sym.RNNFactory(num_hidden=[H], data_dim=5, typ="lstm", dropout=0.3, zoneout=0.2,
                         name="lstm")
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    r = np.random.default_rng(1)
    values, results = None, []
    for backend in ("reference", "cpu"):
        ex = out.simple_bind(backend=backend, dtype="float64", data=(T, N, 5))
        values = values or {n: 0.5 * r.standard_normal(a.shape) for n, a in ex.arg_dict.items()}
        ex.copy_params_from(values)
        if backend == "cpu":
            engine = ex.engine.train if hasattr(ex.engine, "train") else ex.engine
            parallel = packed_gemm.library().symrnn_parallel
            split = [c for c in engine._calls if getattr(c, "func", None) is parallel]
            assert split, "no kernel was split over the pool"
        y = ex.forward(is_train=True, seed=7)[0]
        ex.backward(out_grads=[np.ones_like(y)])
        results.append((y, {n: g.copy() for n, g in ex.grad_dict.items()}))
    (want, want_grads), (got, got_grads) = results
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for n, g in want_grads.items():
        np.testing.assert_allclose(got_grads[n], g, rtol=1e-10, atol=1e-12, err_msg=n)
