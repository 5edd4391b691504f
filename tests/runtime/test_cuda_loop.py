"""Loop steps (codegen.roll) on the CUDA engine's host logic (runtime.cuda_fake's recording
device), against the CPU engine on the same rolled program and the CUDA engine unrolled."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import symrnn as sym
from runtime.cuda import CudaEngine
from runtime.cuda.loop import LoopCommand
from runtime.cuda.recording import RecordingDevice
from runtime.executor import Executor
from runtime.program import unrolled

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
T = 11


def _symbol(typ: str):
    rnn = sym.RNNFactory(num_hidden=[6, 5], data_dim=4, typ=typ, dropout=0.3, zoneout=0.2,
                         name="rnn")
    parts = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    return sym.Group([parts[0][-1], *parts[1]])


def _runs(ex, seed):
    outs = ex.forward(is_train=True, seed=seed)
    ex.backward([np.full(o.shape, 0.25, o.dtype) for o in outs])
    return outs, {k: np.array(v) for k, v in ex.grad_dict.items()}


@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_rolled_program_on_the_cuda_engine(typ):
    cpu = _symbol(typ).simple_bind(backend="cpu", data=(T, 3, 4))
    program = cpu.engine.train.program
    assert any(s.kind == "loop" for s in program.steps)  # compile rolls by default
    flat = CudaEngine(unrolled(program), device=RecordingDevice())
    rolled = CudaEngine(program, device=RecordingDevice())
    loops = [c for p in rolled.phases.values() for seg in p for c in getattr(seg, "commands", ())
             if isinstance(c, LoopCommand)]
    assert loops and all(c.trips >= 3 for c in loops)
    rng = np.random.default_rng(0)
    args = {n: (rng.standard_normal(v.shape) * 0.5).astype(v.dtype)
            for n, v in cpu.arg_dict.items()}
    exs = [Executor(e, cpu.grad_req) for e in (flat, rolled)]
    for ex in [cpu, *exs]:
        ex.copy_params_from(args)
    for seed in (5, 6):
        ref, (a, b) = _runs(cpu, seed), [_runs(ex, seed) for ex in exs]
        for x, y in zip(a[0], b[0]):
            np.testing.assert_array_equal(x, y)  # same commands, same order
        for name in a[1]:
            np.testing.assert_array_equal(a[1][name], b[1][name])
            np.testing.assert_allclose(b[1][name], ref[1][name], rtol=1e-5, atol=1e-5)
        for x, y in zip(ref[0], b[0]):
            np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-5)


def test_summary_counts_every_iteration():
    cpu = _symbol("gru").simple_bind(backend="cpu", data=(T, 3, 4))
    program = cpu.engine.train.program
    rolled = CudaEngine(program, device=RecordingDevice()).summary()
    flat = CudaEngine(unrolled(program), device=RecordingDevice()).summary()
    assert rolled == flat
