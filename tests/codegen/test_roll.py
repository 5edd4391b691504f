"""codegen.roll on compiled RNN programs: loops that unroll back to the very same steps, and
the CPU engine running the rolled program bit for bit as the unrolled one."""

import numpy as np
import pytest

import codegen
import symrnn as sym
from codegen.roll import MIN_TRIPS, coalesced, roll_program
from runtime.cpu import CpuEngine
from runtime.program import Program, unrolled
from symrnn.lower import lower_and_infer

CASES = {
    "lstm2": {"num_hidden": [8, 6], "typ": "lstm"},
    "gru_zoneout": {"num_hidden": [5], "typ": "gru", "zoneout": 0.3, "dropout": 0.2},
    "rnn_recurrent_dropout": {"num_hidden": [4, 4], "typ": "rnn_tanh",
                              "recurrent_dropout": 0.25},
    "bi_lstm_zoneout": {"num_hidden": [4], "typ": "lstm", "bidirectional": True,
                        "dropout": 0.2, "zoneout": 0.1},
}


def compiled(case: str, seq_len: int, wrt=True, roll=False, strided=False) -> Program:
    rnn = sym.RNNFactory(data_dim=3, name="rnn", **CASES[case])
    outs = rnn.step(sym.Variable("data"), seq_len=seq_len, ret_typ="out")
    loss = sym.sum(outs[-1] * outs[-1])
    graph, _ = lower_and_infer(loss, {"data": (seq_len, 2, 3)})
    args = loss.list_arguments()
    options = codegen.CompileOptions(tuple(args) if wrt else (), tuple(loss.list_outputs()),
                                     roll=roll, strided_layout=strided)
    return codegen.compile(graph, options)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rolled_program_unrolls_to_the_same_steps(case):
    program = compiled(case, 13)
    rolled = roll_program(program)
    loops = [s for s in rolled.steps if s.kind == "loop"]
    assert loops and all(s.trips >= MIN_TRIPS for s in loops)
    assert len(rolled.steps) < len(program.steps)
    assert unrolled(rolled).steps == [coalesced(s) for s in program.steps]


def test_stacks_of_adjacent_parts_coalesce():
    program = compiled("lstm2", 13)
    stacks = [s for s in program.steps if s.attrs.get("op") == "stack" and len(s.inputs) == 13]
    assert stacks
    for s in stacks:
        c = coalesced(s)
        assert c.attrs == {"op": "concat", "axis": 0} and len(c.inputs) == 2
        assert sum(v.rows for v in c.inputs) == sum(v.rows for v in s.inputs)


def test_rolled_program_survives_json():
    rolled = roll_program(compiled("gru_zoneout", 11))
    again = Program.from_json(rolled.to_json())
    assert again.steps == rolled.steps
    assert unrolled(again).steps == unrolled(rolled).steps


@pytest.mark.parametrize("case", ["gru_zoneout", "bi_lstm_zoneout"])
def test_every_iteration_has_its_own_mask_ids(case):
    """The cells' per-step masks move by one stream per step (symrnn.ops.step_mask_id): a
    stride, not a table of every iteration's ids; the reverse direction's go down."""
    rolled = roll_program(compiled(case, 20, strided=True))
    found = [(s.trips, b, d) for s in rolled.steps if s.kind == "loop"
             for b, d in zip(s.body, s.strides) if b.attrs.get("masks")]
    assert found
    forward = {d for _, b, stride in found if b.phase == "forward" for d in stride.masks}
    assert (min(forward) < 0 < max(forward)) == (case == "bi_lstm_zoneout")
    for trips, body, stride in found:
        assert stride.mask_table == () and stride.masks
        ids = [m for k in range(trips) for m in stride.masks_at(k, body.attrs["masks"])]
        # one stream per mask and step (a kernel may read one mask in two places: a
        # zoneout's gradient towards both of its inputs)
        assert len(set(ids)) == trips * len(set(body.attrs["masks"]))


def test_ids_that_follow_no_rule_go_in_a_table():
    """Masks named by the user (their ids hash the names) roll as a table of each
    iteration's ids."""
    from runtime.program import Step, View

    def step(t, ident):
        v = View("arena.float32", 16 * t, 1, 16, 16, (16,))
        return Step("kernel", "forward", f"k{t}", [v], [v], {"kernel": "k", "rows": 1,
                                                              "cols": 16, "masks": (ident,)})

    ids = [sym.ops.mask_id(f"drop{t}") for t in range(4)]
    program = Program("float32", {}, [], {}, [], {}, [step(t, i) for t, i in enumerate(ids)],
                      {})
    (loop,) = roll_program(program).steps
    assert loop.strides[0].masks == () and loop.strides[0].mask_table == tuple(ids)


def _run(program, args, seed=3):
    engine = CpuEngine(program)
    outs = engine.forward(args, True, seed)
    heads = [np.full(o.shape, 0.5, o.dtype) for o in outs]
    grads = engine.backward(heads)
    return outs, {k: np.array(v) for k, v in grads.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cpu_engine_runs_rolled_program_bit_for_bit(case):
    program = compiled(case, 12)
    rolled = roll_program(program)
    rng = np.random.default_rng(0)
    args = {n: rng.standard_normal(s).astype(d) for n, (s, d) in program.args.items()}
    outs, grads = _run(program, args)
    r_outs, r_grads = _run(rolled, args)
    for a, b in zip(outs, r_outs):
        np.testing.assert_array_equal(a, b)
    assert grads.keys() == r_grads.keys()
    for k in grads:
        np.testing.assert_array_equal(grads[k], r_grads[k])


def test_compile_rolls_when_asked():
    assert any(s.kind == "loop" for s in compiled("lstm2", 12, roll=True).steps)
    assert not any(s.kind == "loop" for s in compiled("lstm2", 12, roll=False).steps)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cpu_engine_builds_each_loop_body_once(case, monkeypatch):
    """Every loop runs in one C call (runtime.cpu.loop_runner), and without it every body step
    runs shifted calls (built for iterations 0-2), not one call per iteration: the engine's
    size does not grow with the trip count."""
    from runtime.cpu import loop as cpu_loop
    from runtime.cpu import loop_runner

    rolled = roll_program(compiled(case, 12))
    engine = CpuEngine(rolled)
    args = {n: np.zeros(s, d) for n, (s, d) in engine.arg_specs.items()}
    engine.forward(args, False, 0)  # argument buffers' steps are built at the first call
    loops = [(c, s) for c, s in zip(engine._calls, engine._steps) if s.kind == "loop"]
    assert loops
    for call, step in loops:
        lib = loop_runner.library()  # step by step, or split by rows (runtime.cpu.loop_rows)
        assert call.func in (lib.symrnn_loop_run, lib.symrnn_loop_rows)
        assert call.args[1] == step.trips >= MIN_TRIPS
    monkeypatch.setattr(loop_runner, "loop_call", lambda *a: None)
    engine = CpuEngine(rolled)
    engine.forward(args, False, 0)
    for call in [c for c, s in zip(engine._calls, engine._steps) if s.kind == "loop"]:
        trips, runs = call.args
        assert trips >= MIN_TRIPS
        assert all(r.func is cpu_loop._first_then for r in runs)
