"""runtime.cpu.loop_cols: one-row loops split by columns (symrnn_loop_cols). Each task computes
the GEMV rows of its block of hidden units for every gate and runs the gate kernel over those
units. The numbers are those of the step-by-step runner (SYMRNN_LOOP_ROWS=0), bit for bit
where every block is whole vectors, and the reference's; loops that do not qualify (more
rows, masks drawn in training) keep their runner."""
from __future__ import annotations

import contextlib
import shutil

import numpy as np
import pytest

import symrnn as sym
from runtime.cpu import engine as cpu_engine
from runtime.cpu import loop_runner
from runtime.cpu.loop_cols import _no_race, _runs
from runtime.program import LoopStride, View

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
T = 12


def _bind(typ, sizes, n=1, dtype="float32", grad_req="null", backend="cpu", **kw):
    rnn = sym.RNNFactory(num_hidden=sizes, data_dim=5, typ=typ, name="rnn", **kw)
    parts = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    last = parts[2] + parts[3] if typ == "lstm" else parts[1]
    return sym.Group([parts[0][-1], *last]).simple_bind(backend=backend, dtype=dtype,
                                                         grad_req=grad_req, data=(T, n, 5))


def _params(ex) -> dict:
    rng = np.random.default_rng(0)
    return {k: (rng.standard_normal(v.shape) / np.sqrt(v.shape[-1])).astype(v.dtype)
            for k, v in ex.arg_dict.items()}


def _forward(typ, sizes, monkeypatch, split="1", is_train=False, **kw):
    """(outputs, the C runner of each loop) of a freshly built executor."""
    monkeypatch.setenv("SYMRNN_LOOP_ROWS", split)
    ex = _bind(typ, sizes, **kw)
    ex.copy_params_from(_params(ex))
    outs = [o.copy() for o in ex.forward(is_train=is_train, seed=3)]
    engine = getattr(ex.engine, "train" if is_train else "infer", ex.engine)
    lib = loop_runner.library()
    names = ("symrnn_loop_run", "symrnn_loop_rows", "symrnn_loop_cols")
    runners = [next((n for n in names if getattr(c, "func", None) is getattr(lib, n)), None)
               for c, s in zip(engine._calls, engine._steps) if s.kind == "loop"]
    return outs, runners


def _reference(typ, sizes, **kw):
    ex = _bind(typ, sizes, backend="reference", **kw)
    ex.copy_params_from(_params(ex))
    return [o.copy() for o in ex.forward(is_train=False)]


@pytest.mark.parametrize("typ,dtype,sizes", [
    ("lstm", "float32", [32, 128]), ("gru", "float32", [32, 128]),
    ("lstm", "float64", [32, 128]), ("lstm", "float32", [352])])
def test_one_row_loops_split_by_columns_match_step_by_step_bit_for_bit(typ, dtype, sizes,
                                                                        monkeypatch):
    """Sizes where the step-by-step GEMV's blocks, too, are whole groups of 8 rows (its sums
    over groups of 4 round differently). 352 units: on two threads, tasks of 88, which every
    other step reads backwards as rows 64..88 then 0..64 of each gate."""
    new, runners = _forward(typ, sizes, monkeypatch, dtype=dtype)
    old, before = _forward(typ, sizes, monkeypatch, split="0", dtype=dtype)
    assert runners and set(runners) == {"symrnn_loop_cols"}
    assert set(before) == {"symrnn_loop_run"}
    for x, y, r in zip(new, old, _reference(typ, sizes, dtype=dtype)):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, r, rtol=1e-4, atol=1e-5)


def test_ragged_column_blocks_and_one_thread_agree(monkeypatch):
    """37 units: on two threads blocks of 16, 16 and 5 (rows of W past whole groups of 8); one
    thread runs two blocks, of 24 and 13, itself (every other step in reverse)."""
    ref = _reference("lstm", [37])
    new, runners = _forward("lstm", [37], monkeypatch)
    assert set(runners) == {"symrnn_loop_cols"}

    @contextlib.contextmanager
    def one_thread():
        yield 1

    monkeypatch.setattr(cpu_engine, "one_pool", one_thread)
    alone, _ = _forward("lstm", [37], monkeypatch)
    for x, y, r in zip(new, alone, ref):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, r, rtol=1e-4, atol=1e-5)


def test_a_one_row_training_forward_splits_and_its_gradients_agree(monkeypatch):
    """The training program's forward loops (gates kept for the backward) split by columns;
    the backward's keep their runner; outputs and gradients as step by step, bit for bit."""
    found = {}
    for split in ("1", "0"):
        monkeypatch.setenv("SYMRNN_LOOP_ROWS", split)
        ex = _bind("lstm", [32, 128], grad_req="write")
        ex.copy_params_from(_params(ex))
        outs = [o.copy() for o in ex.forward(is_train=True)]
        ex.backward([np.full(o.shape, 0.25, o.dtype) for o in outs])
        lib, engine = loop_runner.library(), ex.engine.train
        cols = [s.phase for c, s in zip(engine._calls, engine._steps)
                if getattr(c, "func", None) is lib.symrnn_loop_cols]
        found[split] = outs, {k: np.array(v) for k, v in ex.grad_dict.items()}, cols
    assert found["1"][2] == ["forward", "forward"] and found["0"][2] == []
    for x, y in zip(found["1"][0], found["0"][0]):
        np.testing.assert_array_equal(x, y)
    for name, g in found["0"][1].items():
        np.testing.assert_array_equal(found["1"][1][name], g, err_msg=name)


def test_loops_that_do_not_qualify_keep_their_runner(monkeypatch):
    _, two_rows = _forward("lstm", [16], monkeypatch, n=2)
    assert set(two_rows) == {"symrnn_loop_rows"}
    kernel_first, runners = _forward("rnn_tanh", [16], monkeypatch)  # body: kernel, GEMV
    assert set(runners) == {"symrnn_loop_run"}
    for x, r in zip(kernel_first, _reference("rnn_tanh", [16])):
        np.testing.assert_allclose(x, r, rtol=1e-4, atol=1e-5)
    masked, runners = _forward("lstm", [16], monkeypatch, grad_req="write", is_train=True,
                               dropout=0.3)
    assert "symrnn_loop_cols" not in runners and set(runners) <= {"symrnn_loop_run", None}
    again, _ = _forward("lstm", [16], monkeypatch, split="0", grad_req="write",
                        is_train=True, dropout=0.3)
    for x, y in zip(masked, again):
        np.testing.assert_array_equal(x, y)


# ---- the checks on synthetic views: one row, kernels of N=4 columns, C of 8 -------------
N = 4


class _Gemm:  # h (1 x 3) · w^T (8 x 3) into gates[100:108]
    a, b = View("h", 0, 1, 3, 3, (1, 3)), View("w", 0, 8, 3, 3, (8, 3))
    c = View("gates", 100, 1, 8, 8, (1, 8))


def _v(buffer, offset):
    return View(buffer, offset, 1, N, N, (1, N))


STILL = LoopStride((0, 0), (0,))


def test_the_kernel_views_on_c_must_tile_it_at_fixed_offsets():
    gemm = _Gemm()
    tiles = [(_v("gates", 100), 0, False), (_v("gates", 104), 0, False)]
    assert _runs(gemm, STILL, tiles, N, 3) == [0, 4]
    assert _runs(gemm, STILL, tiles[:1], N, 3) is None  # columns 4..8 computed by no task
    shifted = [(_v("gates", 101), 0, False), (_v("gates", 105), 0, False)]
    assert _runs(gemm, STILL, shifted, N, 3) is None  # would need columns past C's end
    moving = [tiles[0], (_v("gates", 104), 1, False)]  # its offset in C grows per iteration
    assert _runs(gemm, STILL, moving, N, 3) is None


def test_a_segment_whose_tasks_would_race_is_refused():
    gemm, state = _Gemm(), [(_v("gates", 100), 0, False), (_v("gates", 104), 0, False)]
    assert _no_race(gemm, STILL, state + [(_v("c", 0), 0, False), (_v("c", 0), 0, True)],
                    N, 3)  # a cell state updated in place, element for element
    assert not _no_race(gemm, STILL, state + [(_v("c", 0), 0, False), (_v("c", 1), 0, True)],
                        N, 3)  # written one column over: another task's column
    assert not _no_race(gemm, STILL, state + [(_v("h", 0), 0, True)], N, 3)  # A, read whole
    assert not _no_race(gemm, STILL, state + [(_v("w", 4), 0, True)], N, 3)  # the weight
    assert _no_race(gemm, STILL, state + [(_v("h", 3), 0, True)], N, 3)  # past A's row
    assert not _no_race(gemm, STILL, state + [(_v("c", 0), 0, False), (_v("c", 8), -3, True)],
                        N, 3)  # meets the read view two columns over in iteration 2
