"""Dataflow check of a Program: no step reads an element that nothing wrote before it.

Part of runtime.program_check (which runs it after the field checks, on views already known
to lie inside their buffers); kept apart to keep each file short.
"""
from __future__ import annotations

import numpy as np

from runtime.program import Program, Step, View, iteration

PHASES = ("forward", "backward")


class ProgramInvalid(ValueError):
    """A Program field outside its schema; the message names the step and the field."""


def check(ok, message) -> None:  # program_check's
    """Raises ProgramInvalid(message()) unless `ok`; the message is built only then."""
    if not ok:
        raise ProgramInvalid(message())


DATAFLOW_LIMIT = 1 << 30  # elements of arena and head-gradient buffers tracked at most
DATAFLOW_STEPS = 1 << 21  # steps as run (loops expanded) followed at most


def dataflow(p: Program) -> None:
    """Every element a step reads was written before: by the caller (arguments), by an
    earlier step, or, in the backward phase, as a head gradient; every output and gradient is
    written. Run on a program whose views passed the checks above; skipped for programs whose
    temporaries exceed DATAFLOW_LIMIT elements or whose loops run more than DATAFLOW_STEPS
    steps. A loop's body steps are followed as they run, iteration by iteration."""
    tracked = {n: b for n, b in p.buffers.items() if b.kind != "arg"}
    runs = sum(s.trips * len(s.body) if s.kind == "loop" else 1 for s in p.steps)
    if sum(b.size for b in tracked.values()) > DATAFLOW_LIMIT or runs > DATAFLOW_STEPS:
        return
    written = {n: np.zeros(b.size, bool) for n, b in tracked.items()}
    for phase in PHASES:
        if phase == "backward":
            for _, buffer in p.head_grads:
                written[buffer][:] = True
        for i, s in enumerate(p.steps):
            if s.phase == phase:
                for what, run in _as_run(s, i):
                    _flow(run, what, written)
        ends = p.outputs if phase == "forward" else list(p.grads.items())
        for name, v in ends:
            if not _cells(written, v).all():
                what = "output" if phase == "forward" else "the gradient of"
                raise ProgramInvalid(f"{what} {name!r} is not written by any step of the "
                                     f"{phase} phase")


def _as_run(s: Step, i: int):
    """(how to name it, step) for each step `s` runs: itself, or a loop's body steps."""
    if s.kind != "loop":
        yield f"step {i} ({s.name!r})", s
        return
    for k in range(s.trips):
        for j, (b, d) in enumerate(zip(s.body, s.strides)):
            yield f"step {i} ({s.name!r}) body step {j} at iteration {k}", iteration(b, d, k)


def _flow(s: Step, what: str, written: dict) -> None:
    span = (s.attrs.get("rows", s.outputs[0].rows), s.attrs.get("cols", s.outputs[0].cols)) \
        if s.kind == "kernel" else None
    reads = s.inputs
    for j, v in enumerate(reads):
        if not _cells(written, v, span).all():
            raise ProgramInvalid(f"{what} input {j} reads elements of buffer "
                                 f"{v.buffer!r} that no earlier step writes")
    for v in s.outputs:
        cells = _cells(written, v, span)
        if cells.size:
            cells[...] = True


def _cells(written: dict, v: View, span=None) -> np.ndarray:
    """A writable window of `written` over the elements view `v` (over `span`) touches; all
    True for an argument."""
    if v.buffer not in written:
        return np.ones(1, bool)
    rows, cols = span or (v.rows, v.cols)
    flat = written[v.buffer]
    return np.ndarray((rows, cols), bool, flat, v.offset, (v.ld, 1))
