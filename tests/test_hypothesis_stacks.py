"""Hypothesis-generated stacks: fused, unrolled and reference executors agree.

The strategy draws the cell type, 1-3 layers of sizes 1-6, the input size, direction, rates
of dropout (either mode), recurrent dropout and zoneout (one for all layers or one per layer),
T, N, the dtype, which heads to take and the `grad_req` (a string, the fixed mixed dict, or
one drawn per argument); the checks are those of `tests/test_backends_agree.py` (same
tolerances, two passes, 'add' doubles, 'null' gives no gradients, inference agrees). Rates come from a small set so that the kernels generated stay
few and the on-disk kernel cache serves later runs. `SYMRNN_HYPOTHESIS_EXAMPLES` raises the
number of examples (8 by default, to keep the suite fast).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from codegen.testing import load_sibling

agree = load_sibling(__file__, "test_backends_agree.py")

RATE = st.sampled_from([0.0, 0.25, 0.5])


@st.composite
def stacks(draw):
    layers = draw(st.integers(1, 3))

    def rates():
        return draw(st.one_of(RATE, st.lists(RATE, min_size=layers, max_size=layers).map(tuple)))

    return agree.Stack(
        typ=draw(st.sampled_from(agree.TYPES)),
        sizes=tuple(draw(st.lists(st.integers(1, 6), min_size=layers, max_size=layers))),
        data_dim=draw(st.integers(1, 5)),
        bidirectional=draw(st.booleans()),
        dropout=rates(),
        dropout_mode=draw(st.sampled_from(["step", "sequence"])),
        recurrent_dropout=rates(),
        zoneout=rates(),
        T=draw(st.integers(1, 4)),
        N=draw(st.integers(1, 3)),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        heads=draw(st.sampled_from(["final", "all"])),
    )


# More examples for a longer hunt: SYMRNN_HYPOTHESIS_EXAMPLES=200 python -m pytest this file.
EXAMPLES = int(os.environ.get("SYMRNN_HYPOTHESIS_EXAMPLES", "8"))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(stack=stacks(), req=st.sampled_from(["write", "add", "null", "mixed", "drawn"]),
       data=st.data())
def test_generated_stack_agrees(stack, req, data, pytestconfig):
    """'mixed' is the fixed per-argument dict of the parametrized tests; 'drawn' draws a
    request per argument, so that any subset of the arguments may want gradients."""
    symbol = stack.symbol()
    if req == "drawn":
        grad_req = data.draw(st.fixed_dictionaries(
            {n: st.sampled_from(["write", "add", "null"]) for n in symbol.list_arguments()}),
            label="grad_req")
    else:
        grad_req = agree.grad_req_of(req, symbol)
    note(f"stack={stack!r} grad_req={grad_req!r}")
    exs = agree.check_stack(stack, grad_req, pytestconfig, seeds=(agree.SEED, agree.SEED),
                            symbol=symbol)
    if req == "null":
        assert all(ex.grad_dict == {} for ex in exs.values())
