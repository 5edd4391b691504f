"""`backend='cuda-sim'`: the CUDA engine running the CUDA rendering on the host
(runtime/cuda/sim.py), held to the CPU backend's acceptance (tests/test_backends_agree.py)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import symrnn as sym
from codegen import render
from codegen.testing import load_sibling
from runtime.cuda import sim as cuda_sim
from runtime.cuda.recording import DeviceFault
from runtime.errors import CompileError

agree = load_sibling(__file__.replace("/runtime/", "/"), "test_backends_agree.py")
needs_cxx = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                               reason="needs a C++ compiler")
pytestmark = needs_cxx
SIM = {"reference": ("reference", False), "fused": ("cuda-sim", True),
       "unrolled": ("cuda-sim", False)}
# Every cell type, both dropout modes, bidirectional, every grad_req, both dtypes.
SIM_CASES = ["lstm-bidir-step-float64-write", "gru-bidir-sequence-float32-mixed",
             "rnn_tanh-float32-add", "rnn_relu-float32-null", "rnn_relu-bidir-step-float64-write",
             "lstm-float32-null"]


@pytest.mark.parametrize("case_id", SIM_CASES)
def test_stack_agrees_on_cuda_sim(case_id, monkeypatch):
    monkeypatch.setattr(agree, "EXECUTORS", SIM)
    case = agree.CASES[case_id]
    symbol = case.stack.symbol()
    exs = agree.check_stack(case.stack, agree.grad_req_of(case.grad_req, symbol), None,
                            seeds=case.seeds, new_out_grads=case.new_out_grads, symbol=symbol,
                            masks_visible=True)
    engine = exs["fused"].engine
    assert isinstance(getattr(engine, "train", engine).device, cuda_sim.SimDevice)


def _dropout_symbol():
    data = sym.Variable("data")
    h = sym.Dropout(data, p=0.4, name="drop")
    doubled = sym.elemwise_add(data, data)  # exact: the outputs are data, 2 data or 0
    return sym.Group([h, sym.zoneout(data, doubled, p=0.3, name="zone")])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masks_bit_identical_to_cpu(dtype):
    """Dropout and zoneout drawn by the CUDA Philox (each thread its elements) equal the C
    rendering's filled rows, bit for bit, for every seed. At inference (no draws) zoneout's
    expectation may round differently in the last bit."""
    exs = [_dropout_symbol().simple_bind(backend=b, dtype=dtype, data=(3, 5, 300))
           for b in ("cpu", "cuda-sim")]
    x = np.random.default_rng(0).standard_normal((3, 5, 300)).astype(dtype)
    for seed in (0, 1, 2**40 + 3):
        outs = [ex.forward(is_train=True, seed=seed, data=x) for ex in exs]
        for a, b in zip(*outs):
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
        assert 0.3 < np.mean(outs[0][0] == 0) < 0.5
    for a, b in zip(*(ex.forward(is_train=False, data=x) for ex in exs)):
        np.testing.assert_allclose(a, b, rtol=2e-7 if dtype == "float32" else 1e-15)


def test_broken_cuda_renderer_fails_cuda_sim_but_not_cpu(monkeypatch):
    """An off-by-one in the CUDA column loop reaches cuda-sim (so the CUDA rendering is what
    runs there) and leaves the CPU backend, which renders C, correct."""
    loop = render.CudaRenderer.col_loop
    assert "c < cols;" in loop
    monkeypatch.setattr(render.CudaRenderer, "col_loop", loop.replace("c < cols;", "c <= cols;"))
    stack = agree.Stack("gru", (7, 5), dtype="float32", dropout=0.3)
    agree.check_stack(stack)  # the CPU backend
    monkeypatch.setattr(agree, "EXECUTORS", SIM)
    with pytest.raises((DeviceFault, AssertionError)):
        agree.check_stack(stack)


def test_broken_column_start_gives_wrong_numbers(monkeypatch):
    """Starting one column late leaves column 0 unwritten: caught by the comparison."""
    loop = render.CudaRenderer.col_loop
    monkeypatch.setattr(render.CudaRenderer, "col_loop",
                        loop.replace("threadIdx.x;", "threadIdx.x + 1;"))
    monkeypatch.setattr(agree, "EXECUTORS", SIM)
    with pytest.raises(AssertionError):
        agree.check_stack(agree.Stack("rnn_tanh", (7, 5), dtype="float32"))


def _kernel(body: str, n_in=1, n_out=1):
    """A hand-written CUDA kernel over the renderer's parameter list."""
    from runtime.compile_cache import c_params
    from runtime.program import Kernel

    source = (f'typedef float real;\nextern "C" __global__ void k_test({c_params(n_in, n_out)})'
              f"\n{{\n{body}\n}}\n")
    return Kernel(name="k_test", c_source="", cuda_source=source, n_in=n_in, n_out=n_out,
                  n_masks=0, dtype="float32")


def _launch(kernel, rows, cols, ld=None, grid=None):
    dev = cuda_sim.SimDevice()
    dev.load_kernels([kernel])
    ld = cols if ld is None else ld
    span = (rows - 1) * ld + cols
    a, b, ctl, masks = dev.alloc(4 * span), dev.alloc(4 * span), dev.alloc(16), dev.alloc(4)
    dev.memcpy_htod(a, np.arange(span, dtype=np.float32))
    dev.memcpy_htod(b, np.zeros(span, np.float32))
    grid = grid or (1, rows, 1)
    args = (np.int64(rows), np.int64(cols), np.uintp(a), np.int64(ld), np.uintp(b),
            np.int64(ld), np.uintp(ctl), np.uintp(masks))
    dev.launch("k_test", grid, (32, 1, 1), args)
    return dev.array_at(b, np.float32, span).reshape(-1)


GRID_STRIDE = """
for (long r = blockIdx.y; r < rows; r += gridDim.y)
    for (long c = (long)blockIdx.x * blockDim.x + threadIdx.x; c < cols;
         c += (long)blockDim.x * gridDim.x)
        out0[r * ld_out0 + c] = 2 * in0[r * ld_in0 + c];
"""


@pytest.mark.parametrize("grid", [(1, 1, 1), (3, 2, 1), (1, 7, 1)])
def test_every_thread_of_the_grid_runs(grid):
    out = _launch(_kernel(GRID_STRIDE), 7, 70, ld=75, grid=grid).reshape(-1)
    expect = 2 * np.arange(6 * 75 + 70, dtype=np.float32)
    window = np.arange(out.size) % 75 < 70
    np.testing.assert_array_equal(out[window], expect[window])
    assert (out[~window] == 0).all()


def test_threads_run_in_a_permuted_order():
    """A kernel that records which thread ran when: neither the natural order nor its
    reverse."""
    body = ("static long tick = 0;\n"
            "long t = blockIdx.y * blockDim.x + threadIdx.x;\n"
            "if (t < rows * cols) out0[t] = (real)(tick++);")
    order = _launch(_kernel(body), 4, 32)
    assert sorted(order) == list(range(128))
    assert list(order) != sorted(order) and list(order) != sorted(order, reverse=True)


def test_writes_outside_the_window_are_faults():
    past_row = GRID_STRIDE.replace("c < cols;", "c <= cols;")
    with pytest.raises(DeviceFault, match="padding|outside"):
        _launch(_kernel(past_row), 3, 8, ld=12)
    with pytest.raises(DeviceFault, match="outside"):
        _launch(_kernel(past_row), 3, 8)
    into_input = "((real*)in0)[0] = 1;"
    with pytest.raises(DeviceFault, match="input"):
        _launch(_kernel(into_input), 2, 4)


@pytest.mark.parametrize("construct", ["__syncthreads();", "__shared__ real tile[32];",
                                       "atomicAdd(out0, 1.0f);", "asm volatile(\"\");"])
def test_constructs_without_a_host_meaning_are_refused(construct):
    kernel = _kernel(construct + GRID_STRIDE)
    with pytest.raises(cuda_sim.SimUnsupported, match="k_test uses") as info:
        cuda_sim.SimDevice().load_kernels([kernel])
    assert isinstance(info.value, CompileError)


def test_prelude_is_package_data():
    from importlib import resources

    assert resources.files("runtime.cuda").joinpath("sim.h").is_file()
    assert "__umulhi" in cuda_sim.prelude() and "blockIdx" in cuda_sim.prelude()


def test_intrinsics_of_the_prelude():
    body = ("if (threadIdx.x == 0 && blockIdx.y == 0) {\n"
            "out0[0] = __expf(1.0f); out0[1] = __fdividef(1.0f, 4.0f);\n"
            "out0[2] = rsqrtf(16.0f); out0[3] = fmaf(2.0f, 3.0f, 1.0f);\n"
            "out0[4] = (real)__umulhi(0x80000000u, 6u); out0[5] = tanhf(0.5f); }")
    out = _launch(_kernel(body), 1, 6)
    np.testing.assert_allclose(out, [np.e, 0.25, 0.25, 7.0, 3.0, np.tanh(0.5)], rtol=1e-6)


def test_cuda_graphs_capture_and_replay_on_cuda_sim(monkeypatch):
    """With SYMRNN_CUDA_GRAPHS=1 the segments are captured on their second run and replayed
    from then on; the kernels replayed are the CUDA rendering's, and agree."""
    monkeypatch.setenv("SYMRNN_CUDA_GRAPHS", "1")
    monkeypatch.setattr(agree, "EXECUTORS", SIM)
    stack = agree.Stack("lstm", (7, 5), dtype="float64", dropout=0.3, zoneout=0.2)
    exs = agree.check_stack(stack, seeds=(1, 2, 3), new_out_grads=True)
    device = exs["fused"].engine.train.device
    assert device.graphs and device.count("launch_graph") >= 2


T, N, I, H, C = 4, 3, 5, 6, 3


def _model_executor(backend: str):
    data, label = sym.Variable("data"), sym.Variable("label", dtype="int32")
    h = sym.tanh(sym.FullyConnected(data, num_hidden=H, name="fc1"))
    loss = sym.softmax_cross_entropy(sym.FullyConnected(h, num_hidden=C, name="fc2"), label,
                                     name="loss")
    ex = loss.simple_bind(backend=backend, grad_req="add", data=(T, N, I))
    rng = np.random.default_rng(0)
    for k, v in ex.arg_dict.items():
        v[...] = rng.integers(0, C, v.shape) if k == "label" else rng.standard_normal(v.shape)
    ex.forward(is_train=True)
    ex.backward()
    return ex


BAD_CALLS = {
    "data shape": lambda ex: ex.forward(data=np.zeros((T, N, I + 1), np.float32)),
    "data dtype": lambda ex: ex.forward(data=np.zeros((T, N, I), np.float64)),
    "a list": lambda ex: ex.forward(data=[[0.0] * I] * N),
    "unknown argument": lambda ex: ex.forward(dta=np.zeros((T, N, I), np.float32)),
    "non-integer label": lambda ex: ex.forward(label=np.full((T, N), 0.5, np.float32)),
    "label out of range": lambda ex: ex.forward(label=np.full((T, N), C, np.int32)),
    "NaN input": lambda ex: ex.forward(check_finite=True,
                                       data=np.full((T, N, I), np.nan, np.float32)),
    "out_grads shape": lambda ex: ex.backward(out_grads=[np.ones((2, 2), np.float32)]),
    "grad_req": lambda ex: ex.symbol.simple_bind(backend=ex.backend, grad_req="sometimes",
                                                 data=(T, N, I)),
}


@pytest.mark.parametrize("bad", list(BAD_CALLS))
def test_bad_input_gives_the_same_error_as_cpu(bad):
    """The same SymRNNError type and message on cuda-sim as on cpu, and nothing changed."""
    seen = []
    for backend in ("cpu", "cuda-sim"):
        ex = _model_executor(backend)
        ex.backend = backend
        before = {k: v.copy() for d in (ex.arg_dict, ex.grad_dict) for k, v in d.items()}
        with pytest.raises(sym.SymRNNError) as info:
            BAD_CALLS[bad](ex)
        seen.append((type(info.value), str(info.value)))
        after = {k: v for d in (ex.arg_dict, ex.grad_dict) for k, v in d.items()}
        for k, v in before.items():
            np.testing.assert_array_equal(after[k], v, err_msg=k)
    assert seen[0] == seen[1]


def _table(capsys, backend: str) -> dict:
    from symrnn.cli import main

    code = main(["compare", "--hidden", "6,4", "-T", "3", "-N", "2", "-I", "3", "--repeat", "1",
                 "--dropout", "0.2", "--backend", backend])
    out = capsys.readouterr().out
    assert code in (0, None), out
    rows = [line for line in out.splitlines() if line.startswith(("max|diff|", "kernels",
                                                                  "launches", "GEMMs"))]
    return {line[:44].strip(): line[44:].split() for line in rows}


def test_compare_on_cuda_sim_prints_the_cpu_table(capsys):
    cpu, sim = _table(capsys, "cpu"), _table(capsys, "cuda-sim")
    assert list(sim) == list(cpu) and any(k.startswith("max|diff| grad") for k in sim)
    for label, values in sim.items():
        if label.startswith("max|diff|"):
            assert all(v == "-" or float(v) < 1e-4 for v in values), (label, values)
        else:
            assert values == cpu[label], label


@pytest.mark.parametrize("out_offset, ld_out, fault", [
    (0, 20, False),  # the identical view: in place, element for element
    (5, 20, False),  # interleaved windows: the spans meet, the elements do not
    (4, 20, True),  # one shared column
    (20, 20, True),  # shifted by a row
])
def test_races_between_an_output_and_an_input(out_offset, ld_out, fault):
    dev = cuda_sim.SimDevice()
    dev.load_kernels([_kernel(GRID_STRIDE)])
    base, ctl, masks = dev.alloc(4 * 100), dev.alloc(16), dev.alloc(4)
    dev.memcpy_htod(base, np.arange(100, dtype=np.float32))
    args = (np.int64(3), np.int64(5), np.uintp(base), np.int64(20),
            np.uintp(base + 4 * out_offset), np.int64(ld_out), np.uintp(ctl), np.uintp(masks))
    if fault:
        with pytest.raises(DeviceFault, match="overlaps"):
            dev.launch("k_test", (1, 3, 1), (32, 1, 1), args)
        return
    dev.launch("k_test", (1, 3, 1), (32, 1, 1), args)
    mem = dev.array_at(base, np.float32, 100).reshape(5, 20)
    np.testing.assert_array_equal(mem[:3, out_offset:out_offset + 5],
                                  2 * np.arange(100).reshape(5, 20)[:3, :5])


def test_cuda_sim_never_loads_a_c_rendering(monkeypatch):
    """With the C kernel loader broken, cuda-sim still binds, runs and agrees."""
    from runtime import compile_cache

    def refuse(*args, **kwargs):
        raise AssertionError("a C rendering was loaded on the cuda-sim path")

    monkeypatch.setattr(compile_cache, "load_kernel", refuse)
    monkeypatch.setattr(compile_cache, "load_kernels", refuse)
    monkeypatch.setattr(agree, "EXECUTORS", SIM)
    agree.check_stack(agree.Stack("gru", (5, 3), dtype="float64", zoneout=0.2))
