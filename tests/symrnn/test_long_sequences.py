"""Long sequences (symrnn.lengths): lazy symbols, and binding by extrapolating the rolled
Programs of three short lengths, against the same symbol built and compiled at T."""
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest

import codegen
import runtime
import symrnn as sym
from symrnn import compiled, lengths
from symrnn.lower import lower_and_infer
from symrnn.symbol import LazyNode

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
T = lengths.LAZY_FROM + 8  # lazy, and past the sampled lengths (12 + 16 * 2 < 64)
N, I = 2, 8


def network(seq_len=T, varlen=False, **kw):
    kw = {"num_hidden": [8, 8], "typ": "lstm", **kw}
    rnn = sym.RNNFactory(data_dim=I, name="rnn", **kw)
    lengths = sym.Variable("lengths", dtype="int32") if varlen else None
    parts = rnn.step(sym.Variable("data"), seq_len=seq_len, ret_typ="all",
                     sequence_length=lengths)
    return sym.Group([sym.sum(parts[0][-1] * parts[0][-1], name="loss"), parts[1][-1]])


def eager(monkeypatch, seq_len=T, **kw):
    """The same network built at once (no lazy nodes)."""
    with monkeypatch.context() as m:
        m.setattr("symrnn.rnn.factory.LAZY_FROM", 10**9)
        return network(seq_len, **kw)


def _values(ex, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {n: (0.4 * rng.standard_normal(a.shape)).astype(a.dtype)
            for n, a in ex.arg_dict.items()}


def _run(ex, values, seed=7):
    ex.copy_params_from(values)
    outs = [o.copy() for o in ex.forward(is_train=True, seed=seed)]
    ex.backward([np.full(o.shape, 0.5, o.dtype) for o in outs])
    return outs, {k: np.array(v) for k, v in ex.grad_dict.items()}


def test_a_long_step_builds_nothing_until_read():
    symbol = network()
    last_c = symbol._outputs[1][0]
    assert isinstance(last_c, LazyNode)
    assert lengths.long_length(symbol) == T
    with pytest.raises(AttributeError):
        object.__getattribute__(last_c, "inputs")  # not built


def test_reading_a_long_symbol_builds_it_as_the_eager_one(monkeypatch):
    lazy, built = network(), eager(monkeypatch)
    assert lazy.list_arguments() == built.list_arguments()
    assert lazy.list_outputs() == built.list_outputs()
    def plain(symbol):  # the user's `*` is named by a per-process counter
        return re.sub(r'"mul\d+', '"mul', symbol.tojson())

    assert plain(lazy) == plain(built)


def test_binding_does_not_build_the_sequence(monkeypatch):
    monkeypatch.setattr(lengths.Recipe, "materialize", _refuse)
    ex = network().simple_bind(data=(T, N, I))
    assert any(s.kind == "loop" and s.trips > T // 3 for s in ex.program.steps)


def _refuse(self):
    raise AssertionError("the long sequence was built")


KINDS = {  # every kind of stack extrapolates (symrnn.lengths)
    "lstm": {},
    "gru": {"typ": "gru", "num_hidden": [16]},
    "rnn_relu": {"typ": "rnn_relu", "num_hidden": [8]},
    "lstm_dropout_zoneout": {"num_hidden": [8], "dropout": 0.3, "zoneout": 0.2,
                             "recurrent_dropout": 0.1},
    "bi_lstm": {"bidirectional": True, "num_hidden": [8]},
    "bi_gru_zoneout": {"typ": "gru", "bidirectional": True, "num_hidden": [8], "zoneout": 0.1,
                       "dropout": 0.2},
}


@pytest.mark.parametrize("kind, seq_len", [("lstm", T + 1)] + [(k, T) for k in KINDS])
def test_extrapolated_program_is_the_program_compiled_at_t(monkeypatch, kind, seq_len):
    """The same Program as compiling the symbol built at T: the same steps (loops, their
    strides, the mask ids of every step: per-step masks move by one stream per step, the
    reverse direction's loops run t = T-1 .. 0 with negative strides), buffers, arguments."""
    kw = KINDS[kind]
    ex = network(seq_len, **kw).simple_bind(data=(seq_len, N, I))
    built = eager(monkeypatch, seq_len, **kw)
    graph, _ = lower_and_infer(built, {"data": (seq_len, N, I)})
    direct = codegen.compile(graph, codegen.CompileOptions(
        tuple(built.list_arguments()), tuple(built.list_outputs()), strided_layout=True))
    program = ex.engine.train.program
    assert "extrapolated_from" in program.stats
    assert _plain(program.steps) == _plain(direct.steps)
    assert program.buffers == direct.buffers and program.args == direct.args
    assert program.outputs == direct.outputs and program.grads == direct.grads


def _plain(steps):
    """`steps` without the per-process counter in the name of the user's `*`."""
    return [replace(s, name=re.sub(r"mul\d+", "mul", s.name), body=_plain(s.body))
            for s in steps]


def _both(monkeypatch, **kw):
    """(the long-sequence executor, the executor of the same symbol compiled at T)."""
    fast = network(**kw).simple_bind(data=(T, N, I))
    with monkeypatch.context() as m:
        m.setattr(compiled, "long_length", lambda s: None)
        slow = network(**kw).simple_bind(data=(T, N, I))
    return fast, slow


@pytest.mark.parametrize("kind", ["lstm", "gru", "lstm_dropout_zoneout", "bi_lstm"])
def test_long_binding_runs_bit_for_bit_as_compiling_at_t(monkeypatch, kind):
    """Extrapolated, and the same numbers as the symbol compiled at T (its own layout, not
    strided), the same masks drawn; the reference's within tolerance."""
    kw = KINDS[kind]
    fast, slow = _both(monkeypatch, **kw)
    assert "extrapolated_from" in fast.engine.train.program.stats
    values = _values(slow)
    (a_out, a_grad), (b_out, b_grad) = _run(fast, values), _run(slow, values)
    for x, y in zip(a_out, b_out):
        np.testing.assert_array_equal(x, y)
    assert a_grad.keys() == b_grad.keys()
    for k in a_grad:
        np.testing.assert_array_equal(a_grad[k], b_grad[k], err_msg=k)
    ref = network(**kw).simple_bind(backend="reference", data=(T, N, I))
    r_out, r_grad = _run(ref, values)
    for x, y in zip(r_out, a_out):
        np.testing.assert_allclose(y, x, rtol=2e-4, atol=2e-5)
    for k in r_grad:
        np.testing.assert_allclose(a_grad[k], r_grad[k], rtol=2e-3, atol=2e-4, err_msg=k)


def test_variable_lengths_extrapolate(monkeypatch):
    """A stack with `sequence_length` (each step keeps the states of the samples it is past):
    extrapolated, the Program compiled at T, and the numbers of the symbol compiled at T.
    (Not yet a bidirectional one: its Programs are not affine in T, and it compiles at T.)"""
    kw = {"typ": "gru", "num_hidden": [8]}
    shapes = {"data": (T, N, I), "lengths": (N,)}
    fast = network(varlen=True, **kw).simple_bind(**shapes)
    assert "extrapolated_from" in fast.engine.train.program.stats
    built = eager(monkeypatch, varlen=True, **kw)
    graph, _ = lower_and_infer(built, shapes)
    direct = codegen.compile(graph, codegen.CompileOptions(
        tuple(a for a in built.list_arguments() if a != "lengths"),
        tuple(built.list_outputs()), strided_layout=True))
    assert _plain(fast.engine.train.program.steps) == _plain(direct.steps)
    with monkeypatch.context() as m:
        m.setattr(compiled, "long_length", lambda s: None)
        slow = network(varlen=True, **kw).simple_bind(**shapes)
    values = {**_values(slow), "lengths": np.array([T, T // 2 + 1], np.int32)}
    (a_out, a_grad), (b_out, b_grad) = _run(fast, values), _run(slow, values)
    for x, y in zip(a_out, b_out):
        np.testing.assert_array_equal(x, y)
    for k in b_grad:
        np.testing.assert_array_equal(a_grad[k], b_grad[k], err_msg=k)


def test_inference_program_of_a_long_binding(monkeypatch):
    fast, slow = _both(monkeypatch)
    values = _values(slow)
    for ex in (fast, slow):
        ex.copy_params_from(values)
    for x, y in zip(fast.forward(is_train=False), slow.forward(is_train=False)):
        np.testing.assert_array_equal(x, y)
    assert any(s.kind == "loop" for s in fast.engine.infer.program.steps)


def test_a_rolled_program_exports_loads_and_runs(tmp_path):
    ex = network().simple_bind(data=(T, N, I))
    values = _values(ex)
    outs, _ = _run(ex, values)
    path = tmp_path / "long.zip"
    ex.export(path)
    loaded = runtime.load(path)
    loaded.copy_params_from(values)
    again = loaded.forward(is_train=True, seed=7)
    for x, y in zip(outs, again):
        np.testing.assert_array_equal(x, y)


def test_inspect_counts_the_steps_a_rolled_program_runs():
    from runtime.program import unrolled
    from symrnn.cli.inspect import format_stats

    program = network().simple_bind(data=(T, N, I)).engine.train.program
    loops = sum(s.kind == "loop" for s in program.steps)
    first = format_stats(program).splitlines()[0]
    assert first.endswith(f"{len(unrolled(program).steps)} steps as run, "
                          f"{len(program.steps)} with {loops} loops")


def test_reshaping_back_to_the_bound_shapes_compiles_nothing():
    ex = network().simple_bind(data=(T, N, I))
    other = ex.reshape(data=(T, N + 1, I))
    back = other.reshape(data=(T, N, I))
    assert back.engine.train.program is ex.engine.train.program
