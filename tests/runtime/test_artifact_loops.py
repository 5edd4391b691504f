"""Artifacts of rolled programs (codegen.roll's loop steps, issue 19): an exported rolled
program loads and runs bit for bit, and forged loop steps are refused, in the style of
test_artifact.py's forged programs, with an ArtifactError naming the member, the step and the
field (runtime.program_loops)."""
import json
import shutil

import numpy as np
import pytest

import runtime
import symrnn as sym
from runtime.program_check import check_program
from tests.runtime.artifact_cases import forge, refused

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
T, N, I = 13, 2, 3


def network():
    rnn = sym.RNNFactory(num_hidden=[5], data_dim=I, typ="gru", name="rnn", zoneout=0.3,
                         dropout=0.2)
    outs = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")
    return sym.sum(outs[-1] * outs[-1], name="loss")


@pytest.fixture(scope="module")
def bound():
    ex = network().simple_bind(data=(T, N, I))
    assert any(s.kind == "loop" for s in ex.program.steps)
    rng = np.random.default_rng(0)
    values = {n: rng.uniform(-0.5, 0.5, v.shape).astype(v.dtype)
              for n, v in ex.arg_dict.items()}
    ex.copy_params_from(values)
    return ex, values


@pytest.fixture
def artifact(tmp_path, bound):
    path = tmp_path / "rolled.zip"
    bound[0].export(path)
    return path


def _run(ex, values):
    ex.copy_params_from(values)
    outs = [o.copy() for o in ex.forward(is_train=True, seed=3)]
    ex.backward([np.ones_like(o) for o in outs])
    return outs, {n: g.copy() for n, g in ex.grad_dict.items()}


def test_an_exported_rolled_program_loads_and_runs_bit_for_bit(artifact, bound):
    ex, values = bound
    loaded = runtime.load(artifact)
    assert loaded.program.steps == ex.program.steps
    (outs, grads), (again, grads2) = _run(ex, values), _run(loaded, values)
    for x, y in zip(outs, again):
        np.testing.assert_array_equal(x, y)
    assert grads and grads.keys() == grads2.keys()
    for n in grads:
        np.testing.assert_array_equal(grads[n], grads2[n], err_msg=n)


def test_every_rolled_program_passes_the_check(bound):
    check_program(bound[0].program, require_ir=True)


def loop_at(doc, masked=False):
    """(index, step) of the first loop step (whose body has a masked kernel, if `masked`)."""
    for i, s in enumerate(doc["steps"]):
        if s["kind"] == "loop" and (not masked or any(
                b["attrs"].get("masks") for b in s["body"])):
            return i, s
    raise AssertionError("no such loop")


def _walk_out(doc):
    """The first body output moves one element further per iteration than it did: inside its
    buffer at iteration 0, outside at the last (the arena is only as large as it reaches)."""
    _, s = loop_at(doc)
    size = doc["buffers"][s["body"][0]["outputs"][0]["buffer"]]["size"]
    s["strides"][0]["outputs"][0] = size // max(s["trips"] - 1, 1) + 1


def _nest(doc):
    _, s = loop_at(doc)
    s["body"][0] = json.loads(json.dumps(s))  # a loop inside the loop


def _mask_table(doc):
    _, s = loop_at(doc, masked=True)
    j = next(j for j, b in enumerate(s["body"]) if b["attrs"].get("masks"))
    masks = s["body"][j]["attrs"]["masks"]
    s["strides"][j].update(masks=[], mask_table=list(masks) * (s["trips"] - 1))


def _mask_below_zero(doc):
    """A mask stride that takes the last iteration's id below 0 (a uint32): the first
    iteration's are fine."""
    _, s = loop_at(doc, masked=True)
    j = next(j for j, b in enumerate(s["body"]) if b["attrs"].get("masks"))
    first = s["body"][j]["attrs"]["masks"]
    s["strides"][j].update(masks=[-(m // (s["trips"] - 1) + 1) for m in first],
                           mask_table=[])


def _strides_count(doc):
    _, s = loop_at(doc)
    s["strides"].pop()


def _body_phase(doc):
    _, s = loop_at(doc)
    s["body"][0]["phase"] = "backward" if s["phase"] == "forward" else "forward"


def _loop_fields_on_gemm(doc):
    s = next(s for s in doc["steps"] if s["kind"] != "loop")
    s["trips"] = 3


FORGED_LOOPS = {  # edit, words the message holds (besides the member and the step)
    "trips 1e9": (lambda d: loop_at(d)[1].update(trips=1e9), "'trips'"),
    "trips 10**9": (lambda d: loop_at(d)[1].update(trips=10**9), "'trips'"),
    "trips 0": (lambda d: loop_at(d)[1].update(trips=0), "'trips'"),
    "a stride out of its buffer at the last iteration": (_walk_out, "at iteration"),
    "a nested loop": (_nest, "loops do not nest"),
    "a mask_table of the wrong length": (_mask_table, ".mask_table' has"),
    "a mask stride below id 0 at the last iteration": (_mask_below_zero, "at iteration"),
    "one stride fewer than body steps": (_strides_count, "'strides'"),
    "a body step in the other phase": (_body_phase, "'phase'"),
    "a float stride": (lambda d: loop_at(d)[1]["strides"][0]["inputs"].__setitem__(0, 1.5),
                       "strides[0].inputs"),
    "loop fields on a non-loop step": (_loop_fields_on_gemm, "'trips'"),
    "a loop with its own inputs": (lambda d: loop_at(d)[1]["inputs"].append(
        loop_at(d)[1]["body"][0]["inputs"][0]), "'inputs'"),
}


@pytest.mark.parametrize("case", sorted(FORGED_LOOPS))
def test_a_forged_loop_step_is_refused_naming_member_step_and_field(artifact, case):
    edit, words = FORGED_LOOPS[case]
    index = []

    def change(doc):
        edit(doc)
        index.append(loop_at(doc)[0] if case != "loop fields on a non-loop step" else None)

    forge(artifact, change)
    message = refused(artifact, "'program.json'", words)
    assert "step " in message, message
    if index[0] is not None:
        assert f"step {index[0]} " in message, message


def test_the_export_holds_loop_steps(artifact):
    from tests.runtime.artifact_cases import raw_members

    doc = json.loads(raw_members(artifact)["program.json"])
    assert loop_at(doc, masked=True)


def test_an_engine_refuses_a_loop_that_walks_out_at_the_last_iteration(bound):
    """runtime.layout checks each body at its last iteration, which the engines never build
    (they move the first iterations' calls on)."""
    from dataclasses import replace

    from runtime.cpu import CpuEngine

    program = bound[0].program
    i, loop = next((i, s) for i, s in enumerate(program.steps) if s.kind == "loop")
    size = program.buffers[loop.body[0].outputs[0].buffer].size
    stride = replace(loop.strides[0], outputs=(size // (loop.trips - 1) + 1,
                                               *loop.strides[0].outputs[1:]))
    steps = list(program.steps)
    steps[i] = replace(loop, strides=[stride, *loop.strides[1:]])
    with pytest.raises(ValueError, match="reaches past buffer"):
        CpuEngine(replace(program, steps=steps))


def test_a_bidirectional_program_runs_its_reverse_loops_downwards(tmp_path):
    """The reverse direction's loops run t = T-1 .. 0: their views and mask ids move by
    negative strides, which the loader checks at the first and the last iteration like any
    other; exported, loaded and run bit for bit."""
    rnn = sym.RNNFactory(num_hidden=[4], data_dim=I, typ="lstm", name="bi", zoneout=0.2,
                         bidirectional=True)
    outs = rnn.step(sym.Variable("data"), seq_len=20, ret_typ="out")
    ex = sym.sum(outs[-1] * outs[-1], name="loss").simple_bind(data=(20, N, I))
    reverse = [d for s in ex.program.steps if s.kind == "loop" and s.phase == "forward"
               for b, d in zip(s.body, s.strides) if "_r0_" in b.name and b.attrs.get("masks")]
    assert reverse and all(m < 0 for d in reverse for m in d.masks)
    assert any(o < 0 for d in reverse for o in d.outputs)
    check_program(ex.program, require_ir=True)
    ex.export(tmp_path / "bi.zip")
    loaded = runtime.load(tmp_path / "bi.zip")
    values = {n: np.full(v.shape, 0.1, v.dtype) for n, v in ex.arg_dict.items()}
    (outs, grads), (again, grads2) = _run(ex, values), _run(loaded, values)
    for x, y in zip(outs, again):
        np.testing.assert_array_equal(x, y)
    for n in grads:
        np.testing.assert_array_equal(grads[n], grads2[n], err_msg=n)
