"""The C loop runner (runtime.cpu.loop_runner): rolled programs whose loops run in one C call
give bit for bit the outputs and gradients of the same program unrolled and of its loops run
in Python (runtime.cpu.loop), on small stacks: LSTM, GRU and RNN with zoneout and dropout
masks, bidirectional, variable lengths, one row, the pool's split kernels; backward hooks."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import symrnn as sym
from runtime.cpu import engine as cpu_engine
from runtime.cpu import gemm_source, loop_runner
from runtime.cpu.engine import CpuEngine
from runtime.executor import Executor
from runtime.program import unrolled

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
T = 9


def _stack(typ: str, bidirectional=False, lengths=False, **kw):
    rnn = sym.RNNFactory(num_hidden=[6, 5], data_dim=4, typ=typ, name="rnn",
                         bidirectional=bidirectional, **kw)
    extra = {"sequence_length": sym.Variable("lengths", dtype="int32")} if lengths else {}
    parts = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all", **extra)
    last = parts[2] + parts[3] if typ == "lstm" else parts[1]
    return sym.Group([parts[0][-1], *last])


def _c_loops(engine: CpuEngine,
             runners=("symrnn_loop_run", "symrnn_loop_rows", "symrnn_loop_cols")) -> list:
    """For each loop step: whether its call is the C runner's (step by step, by rows or by
    columns)."""
    runs = [getattr(loop_runner.library(), r) for r in runners]
    return [any(getattr(c, "func", None) is run for run in runs)
            for c, s in zip(engine._calls, engine._steps) if s.kind == "loop"]


def _runs(program, bound, args, is_train, monkeypatch) -> dict:
    """{runner: ((outputs, gradients), whether each loop ran as one C call)}. An engine builds
    the steps that touch its arguments at its first call (and again when an argument array
    moves), so the Python runner's engine runs whole under the patch that turns the C one off."""
    out = {}
    for name, prog in (("c", program), ("python", program), ("unrolled", unrolled(program))):
        with monkeypatch.context() as m:
            if name == "python":
                m.setattr(loop_runner, "loop_call", lambda *a: None)
            engine = CpuEngine(prog)
            result = _run(Executor(engine, bound.grad_req), args, is_train, 7)
            out[name] = result, _c_loops(engine)
    return out


def _run(ex, args, is_train, seed):
    ex.copy_params_from(args)
    outs = [o.copy() for o in ex.forward(is_train=is_train, seed=seed)]
    if not ex.grad_dict:
        return outs, {}
    ex.backward([np.full(o.shape, 0.25, o.dtype) for o in outs])
    return outs, {k: np.array(v) for k, v in ex.grad_dict.items()}


def _args(bound, lengths=False):
    rng = np.random.default_rng(0)
    args = {n: (rng.standard_normal(v.shape) * 0.5).astype(v.dtype)
            for n, v in bound.arg_dict.items() if n != "lengths"}
    if lengths:
        args["lengths"] = np.array([T, 4, 1][:bound.arg_dict["lengths"].shape[0]], np.int32)
    return args


def _check_agree(bound, monkeypatch, phases=("train",), is_train=True, lengths=False):
    args = _args(bound, lengths)
    for phase in phases:
        program = (getattr(bound.engine, phase) if phase else bound.engine).program
        found = _runs(program, bound, args, is_train, monkeypatch)
        assert found["c"][1] and all(found["c"][1])
        assert not any(found["python"][1])
        want_outs, want_grads = found["unrolled"][0]
        for (outs, grads), _ in found.values():
            for x, y in zip(outs, want_outs):
                np.testing.assert_array_equal(x, y)
            assert grads.keys() == want_grads.keys()
            for name in grads:
                np.testing.assert_array_equal(grads[name], want_grads[name])


@pytest.mark.parametrize("typ", ["lstm", "gru", "rnn_tanh"])
def test_masked_stacks_agree_with_unrolled_and_python_loops(typ, monkeypatch):
    bound = _stack(typ, dropout=0.3, zoneout=0.2).simple_bind(backend="cpu", data=(T, 3, 4))
    _check_agree(bound, monkeypatch)


def test_float64_stack_agrees(monkeypatch):
    bound = _stack("gru", dropout=0.3, zoneout=0.2).simple_bind(backend="cpu", dtype="float64",
                                                              data=(T, 2, 4))
    _check_agree(bound, monkeypatch)


def test_bidirectional_variable_lengths_agree(monkeypatch):
    bound = _stack("lstm", bidirectional=True, lengths=True, zoneout=0.2) \
        .simple_bind(backend="cpu", data=(T, 3, 4), lengths=(3,))
    _check_agree(bound, monkeypatch, lengths=True)


@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_one_row_inference_agrees(typ, monkeypatch):
    bound = _stack(typ, zoneout=0.2).simple_bind(backend="cpu", data=(T, 1, 4),
                                                 grad_req="null")
    _check_agree(bound, monkeypatch, phases=(None,), is_train=False)


def test_kernels_and_products_split_over_the_pool_agree(monkeypatch):
    """Thresholds lowered so that every kernel and one-row GEMV runs as tasks of the pool."""
    monkeypatch.setattr(cpu_engine, "PARALLEL_KERNEL", 1)
    monkeypatch.setitem(gemm_source.PARALLEL, "PARALLEL_GEMM", 1)
    bound = _stack("gru", dropout=0.3, zoneout=0.2).simple_bind(backend="cpu", data=(T, 3, 4))
    _check_agree(bound, monkeypatch)


@pytest.mark.parametrize("rows", ["0", "1"])
def test_loops_split_by_rows_or_step_by_step_agree(rows, monkeypatch):
    """SYMRNN_LOOP_ROWS=1 (the default): each thread runs every iteration over its own rows
    (3 rows: blocks of 2 and 1 on two threads, ROW_SPLIT_MIN lowered to 1); 0: each step
    split over the pool."""
    monkeypatch.setenv("SYMRNN_LOOP_ROWS", rows)
    monkeypatch.setattr(loop_runner, "ROW_SPLIT_MIN", 1)
    bound = _stack("lstm", dropout=0.3, zoneout=0.2).simple_bind(backend="cpu", data=(T, 3, 4))
    _check_agree(bound, monkeypatch)
    runner = {"0": "symrnn_loop_run", "1": "symrnn_loop_rows"}[rows]
    bound.forward(is_train=True)  # every step built
    assert all(_c_loops(bound.engine.train, (runner,)))


@pytest.mark.parametrize("rows,least,split", [(4, 6, 0), (4, 2, 1), (12, 6, 1)])
def test_the_split_by_rows_runs_step_by_step_below_its_rows_a_thread(rows, least, split,
                                                                     monkeypatch):
    """symrnn_loop_rows splits where each of the pool's threads gets ROW_SPLIT_MIN rows or
    more (returns 1), else runs the plan step by step (returns 0); the numbers are the same."""
    outs = {}
    for name, value in (("patched", least), ("never", 10 ** 6)):
        monkeypatch.setattr(loop_runner, "ROW_SPLIT_MIN", value)
        bound = _stack("lstm").simple_bind(backend="cpu", data=(T, rows, 4), grad_req="null")
        bound.copy_params_from(_args(bound))
        outs[name] = [o.copy() for o in bound.forward(is_train=False)]
        engine = getattr(bound.engine, "infer", bound.engine)
        calls = [c for c in engine._calls
                 if getattr(c, "func", None) is loop_runner.library().symrnn_loop_rows]
        assert calls
        engine._threads[0] = 2
        assert [c() for c in calls] == [split if name == "patched" else 0] * len(calls)
    for x, y in zip(outs["patched"], outs["never"]):
        np.testing.assert_array_equal(x, y)


def test_the_blas_gemm_runs_loops_in_python(monkeypatch):
    monkeypatch.setenv("SYMRNN_GEMM", "blas")
    bound = _stack("lstm").simple_bind(backend="cpu", data=(T, 2, 4))
    bound.forward(is_train=True)  # every step built
    assert _c_loops(bound.engine.train) and not any(_c_loops(bound.engine.train))


def test_backward_hooks_inside_a_loop_fire_at_its_end(monkeypatch):
    bound = _stack("lstm", zoneout=0.2).simple_bind(backend="cpu", data=(T, 2, 4))
    engine, args = bound.engine.train, _args(bound)
    steps = engine.program.steps_in("backward")
    inside = next(i for i, s in enumerate(steps) if "h2h" in s.name and s.kind == "gemm")
    seen = []
    engine.set_backward_hooks({inside: lambda views: seen.append(
        np.array(views["rnn_l0_h2h_weight"]))})
    _run(bound, args, True, 3)
    assert len(seen) == 1
    assert not np.array_equal(seen[0], 0 * seen[0])  # written by the loop before the hook


def test_mask_table_rows_from_a_table_or_affine_ids():
    from runtime.program import LoopStride, Step

    body = Step("kernel", "forward", "k", [], [], {"masks": (7, 9)})
    table = LoopStride((), (), mask_table=(7, 9, 1, 2, 5, 4))
    affine = LoopStride((), (), masks=(10, 1))
    np.testing.assert_array_equal(loop_runner.mask_table(body, table, 3),
                                  [[7, 9], [1, 2], [5, 4]])
    np.testing.assert_array_equal(loop_runner.mask_table(body, affine, 3),
                                  [[7, 9], [17, 10], [27, 11]])
    assert loop_runner.mask_table(body, LoopStride((), ()), 3).shape == (1, 2)
    assert loop_runner.mask_table(Step("kernel", "forward", "k", [], []), table, 3).shape == (1, 1)


def test_a_stack_part_meeting_its_window_later_is_found():
    from runtime.program import View

    x, w = View("b", 0, 2, 3, 3, (2, 3)), View("b", 12, 2, 3, 3, (2, 3))
    assert loop_runner._meets(x, w, 6, 0, trips=3)  # in place at iteration 2
    assert not loop_runner._meets(x, w, 6, 0, trips=2)
    assert not loop_runner._meets(x, w, 5, 0, trips=9)  # 12 is no multiple of 5
    assert not loop_runner._meets(x, w, 3, 3, trips=9)  # they move together, never meet
    assert not loop_runner._meets(x, View("c", 12, 2, 3, 3, (2, 3)), 6, 0, trips=3)
