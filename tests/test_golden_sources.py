"""Golden copies of the emitted kernel sources, compared exactly.

Two fixed training programs (fused, float32, every argument gets a gradient): a 1-layer GRU
with recurrent dropout and zoneout, and a 2-layer LSTM with dropout between the layers. Their
kernels' C and CUDA renderings, in the order of first launch, are stored under
`tests/golden/` as `{program}.c` and `{program}.cu`. Any change to what the compiler emits
shows up here as a diff; when the change is intended, rewrite the copies with

    SYMRNN_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_sources.py

and review the diff of tests/golden/ like any other change.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

import symrnn as sym

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("SYMRNN_UPDATE_GOLDEN", "") == "1"
T, N, I = 2, 2, 3


def gru_1layer() -> sym.Symbol:
    rnn = sym.RNNFactory(num_hidden=[4], data_dim=I, typ="gru", recurrent_dropout=0.2,
                         zoneout=0.1, name="gru")
    all_h, last_h = rnn.step(sym.Variable("data"), seq_len=T)
    return sym.Group([all_h[-1]] + last_h)


def lstm_2layer() -> sym.Symbol:
    rnn = sym.RNNFactory(num_hidden=[4, 3], data_dim=I, typ="lstm", dropout=[0.25, 0.0],
                         name="lstm")
    all_h, _, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=T)
    return sym.Group([all_h[-1]] + last_h + last_c)


PROGRAMS = {"gru_1layer": gru_1layer, "lstm_2layer": lstm_2layer}
RENDERINGS = {"c": "c_source", "cu": "cuda_source"}


def program_of(build):
    ex = build().simple_bind(backend="cpu", optimize=True, dtype="float32", grad_req="write",
                             data=(T, N, I))
    return ex.program


def rendering(program, attr: str) -> str:
    """Every kernel's source, in the order of the kernel's first launch, each under a header
    naming it and its arity."""
    order = []
    for step in program.steps:
        name = step.attrs.get("kernel") if step.kind == "kernel" else None
        if name is not None and name not in order:
            order.append(name)
    assert sorted(order) == sorted(program.kernels), "a kernel of the program is never launched"
    parts = []
    for name in order:
        k = program.kernels[name]
        parts.append(f"/* ===== kernel {name}: {k.dtype}, {k.n_in} in, {k.n_out} out, "
                     f"{k.n_masks} masks ===== */\n{getattr(k, attr)}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def programs():
    return {name: program_of(build) for name, build in PROGRAMS.items()}


@pytest.mark.parametrize("ext", sorted(RENDERINGS))
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_emitted_source_matches_golden(programs, name, ext):
    text = rendering(programs[name], RENDERINGS[ext])
    path = GOLDEN / f"{name}.{ext}"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with SYMRNN_UPDATE_GOLDEN=1")
    golden = path.read_text()
    if text != golden:
        diff = "".join(list(difflib.unified_diff(
            golden.splitlines(True), text.splitlines(True), f"golden/{path.name}",
            "emitted", n=2))[:80])
        pytest.fail(f"the emitted {ext} source of {name} differs from {path} (if intended, "
                    f"rewrite with SYMRNN_UPDATE_GOLDEN=1 and review):\n{diff}")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_emission_is_deterministic(programs, name):
    """A second compile of the same symbol emits the same sources, in the same order."""
    again = program_of(PROGRAMS[name])
    for attr in RENDERINGS.values():
        assert rendering(again, attr) == rendering(programs[name], attr)
