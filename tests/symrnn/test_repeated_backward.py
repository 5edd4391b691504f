"""A second `backward()` after one `forward()` (issue 17, bug 1): MXNet's semantics.

The compiled programs' memory plan lets the backward pass reuse the storage of forward values
once their last reader has run, so a second backward can no longer read them. Rather than
keep them live (more arena), the executor replays the forward pass (same arguments, same
`is_train`, same seed, so the same masks) before a repeated backward. So every backend gives:
'write' the same gradients again, 'add' twice them, 'null' none; the outputs stay those of
the forward call.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import symrnn as sym
from runtime.cuda import CudaEngine
from runtime.cuda.recording import RecordingDevice
from runtime.executor import Executor

BACKENDS = ["reference", "fused", "unrolled", "cuda-fake"]
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


def stack_symbol(typ: str):
    rnn = sym.RNNFactory(num_hidden=[4, 3], data_dim=2, typ=typ, dropout=0.3, zoneout=0.2,
                         name="rnn")
    parts = rnn.step(sym.Variable("data"), seq_len=5, ret_typ="all")
    last = parts[1] + parts[3] if typ == "lstm" else parts[1]
    return sym.Group([parts[0][-1], *last])


def bind(symbol, backend: str, grad_req):
    shapes = {"data": (5, 2, 2)}
    if backend == "reference":
        return symbol.simple_bind(backend="reference", grad_req=grad_req, dtype="float64",
                                  **shapes)
    cpu = symbol.simple_bind(backend="cpu", fuse=backend != "unrolled", grad_req=grad_req,
                             dtype="float64", **shapes)
    if backend != "cuda-fake":
        return cpu
    program = getattr(cpu.engine, "train", cpu.engine).program
    return Executor(CudaEngine(program, device=RecordingDevice()),
                    cpu.grad_req)


def run_twice(ex, is_train: bool):
    rng = np.random.default_rng(0)
    ex.copy_params_from({n: rng.standard_normal(v.shape) * 0.5 for n, v in ex.arg_dict.items()})
    outs = [o.copy() for o in ex.forward(is_train=is_train, seed=5)]
    heads = [rng.standard_normal(o.shape) for o in outs]
    ex.backward(heads)
    first = {n: g.copy() for n, g in ex.grad_dict.items()}
    ex.backward(heads)
    for a, b in zip(ex.outputs, outs):
        np.testing.assert_array_equal(a, b)
    return first, {n: g.copy() for n, g in ex.grad_dict.items()}


@needs_cc
@pytest.mark.parametrize("typ", ["lstm", "gru"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("grad_req", ["write", "add", "null"])
@pytest.mark.parametrize("is_train", [True, False])
def test_second_backward_repeats_the_first(typ, backend, grad_req, is_train):
    symbol = stack_symbol(typ)
    ref_first, _ = run_twice(bind(symbol, "reference", grad_req), is_train)
    first, second = run_twice(bind(symbol, backend, grad_req), is_train)
    assert sorted(first) == sorted(ref_first)
    if grad_req == "null":
        assert first == second == {}
    factor = 2.0 if grad_req == "add" else 1.0
    for n, g in first.items():
        np.testing.assert_allclose(g, ref_first[n], rtol=1e-10, atol=1e-10, err_msg=n)
        np.testing.assert_allclose(second[n], factor * g, rtol=1e-10, atol=1e-10, err_msg=n)


@needs_cc
@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_before_any_forward_is_refused(backend):
    ex = bind(stack_symbol("lstm"), backend, "write")
    before = {n: g.copy() for n, g in ex.grad_dict.items()}
    with pytest.raises(sym.SymRNNError, match="forward"):
        ex.backward([np.ones(s) for _, s, _ in ex.engine.out_specs])
    for n, g in ex.grad_dict.items():
        np.testing.assert_array_equal(g, before[n])
