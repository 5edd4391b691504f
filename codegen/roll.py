"""roll: a Program whose runs of repeated steps become `loop` steps (runtime.program).

The fused program of an RNN runs the same few steps once per time step: the same kernels and
GEMM shapes, with view offsets and the step index in the names moving by the same amount from
one time step to the next. `roll_program` finds such runs and replaces each by one loop step:
its body is the first iteration's steps, its strides how far each view, mask id and name
counter moves per iteration (mask ids that follow no such rule, as those of masks named by
the user, go in a table of every iteration's).
Nothing is reordered, so the rolled program runs exactly the kernels and GEMMs of the unrolled
one, in the same order, on the same memory:

    unrolled(roll_program(p)).steps == [coalesced(s) for s in p.steps]  # runtime.program

(up to one rewrite: a stack whose parts lie one after another in memory becomes a concat of
fewer, longer parts: the same copies, in a step whose size does not grow with T).

A run is rolled where it has at least MIN_TRIPS iterations of a body of at most MAX_BODY steps;
among the bodies that start at a step, the one that covers the most steps wins (the shortest
among equals). Steps that differ (the first and last time steps, a layer's input projection
over all steps, the losses) stay as they are, around the loops.
"""
from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace

from runtime.program import LoopStride, Program, Step, View

MIN_TRIPS = 3
MAX_BODY = 32
_NUMBER = re.compile(r"\d+")


def roll_program(program: Program) -> Program:
    """`program` with its repeated runs of steps as loops (see the module docstring)."""
    if any(s.kind == "loop" for s in program.steps):
        return program
    steps = [coalesced(s) for s in program.steps]
    keys = _keys(steps)
    rolled, i = [], 0
    while i < len(steps):
        body, trips = _best_run(steps, keys, i)
        if trips >= MIN_TRIPS:
            rolled.append(_loop(steps[i:i + body * trips], body, trips))
            i += body * trips
        else:
            rolled.append(steps[i])
            i += 1
    if rolled == program.steps:
        return program
    return replace(program, steps=rolled)


def coalesced(s: Step) -> Step:
    """A stack (or concat along rows) whose parts lie one after another in memory, as a
    concat of fewer, longer parts: the same copies, and a step whose size does not grow
    with T (the backward's stack of h_{t-1} for the recurrent weight's gradient)."""
    op = s.attrs.get("op")
    y = s.outputs[0] if len(s.outputs) == 1 else None
    if s.kind != "op" or op not in ("stack", "concat") or y is None or y.ld != y.cols:
        return s
    attrs = s.attrs.get("attrs", {k: v for k, v in s.attrs.items() if k != "op"})
    if op == "concat" and (attrs.get("axis") not in (0, -len(y.shape)) or len(y.shape) < 2):
        return s
    parts = [s.inputs[0]]
    for v in s.inputs[1:]:
        last = parts[-1]
        if _rows(last) and _rows(v) and v.buffer == last.buffer and v.cols == last.cols \
                and v.offset == last.offset + last.rows * last.ld:
            rows = last.rows + v.rows
            parts[-1] = View(v.buffer, last.offset, rows, v.cols, v.cols, (rows, v.cols))
        else:
            parts.append(v)
    if len(parts) == len(s.inputs) or not all(map(_flat, parts)):
        return s
    return Step("op", s.phase, s.name, parts, s.outputs, {"op": "concat", "axis": 0})


def _flat(v: View) -> bool:
    """Whether `v` is its value's leading axes flattened into rows (of any stride: a part
    that is a column window of another container, as a bidirectional layer's h_t)."""
    return v.rows * v.cols == math.prod(v.shape) and (v.shape[-1] if v.shape else 1) == v.cols


def _rows(v: View) -> bool:
    """Whether `v` is whole contiguous rows of a 2-D layout."""
    return v.ld == v.cols and v.rows * v.cols == math.prod(v.shape) and \
        (v.shape[-1] if v.shape else 1) == v.cols


def _keys(steps: list) -> list[int]:
    """One int per step: equal where two steps differ at most in offsets, mask ids and the
    numbers in their names."""
    interned: dict = {}
    return [interned.setdefault(_signature(s), len(interned)) for s in steps]


def _signature(s: Step) -> tuple:
    attrs = tuple(sorted((k, repr(v)) for k, v in s.attrs.items() if k != "masks"))
    views = tuple((v.buffer, v.rows, v.cols, v.ld, v.shape) for v in [*s.inputs, *s.outputs])
    masks = len(s.attrs.get("masks", ()))
    return s.kind, s.phase, len(s.inputs), attrs, masks, views, _NUMBER.sub("#", s.name)


def _best_run(steps, keys, i) -> tuple[int, int]:
    """(body length, iterations) of the longest-covering run starting at step `i`."""
    best = (1, 1)
    for body in range(1, min(MAX_BODY, (len(steps) - i) // MIN_TRIPS) + 1):
        if keys[i:i + body] != keys[i + body:i + 2 * body]:
            continue
        trips = _trips(steps, keys, i, body)
        if trips >= MIN_TRIPS and body * trips > best[0] * best[1]:
            best = (body, trips)
    return best


def _trips(steps, keys, i, body) -> int:
    """How many iterations of `steps[i:i+body]` follow one another with constant strides."""
    first, second = steps[i:i + body], steps[i + body:i + 2 * body]
    want = [_moves(a, b) for a, b in zip(first, second)]
    if None in want:
        return 1
    trips, prev = 2, second
    while i + (trips + 1) * body <= len(steps):
        at = i + trips * body
        if keys[at:at + body] != keys[i:i + body]:
            break
        nxt = steps[at:at + body]
        if any(_moves(a, b) != w for a, b, w in zip(prev, nxt, want)):
            break
        trips, prev = trips + 1, nxt
    return trips


def _moves(a: Step, b: Step):
    """How `b` differs from `a` (offsets, name numbers), or None if not so."""
    va, vb = [*a.inputs, *a.outputs], [*b.inputs, *b.outputs]
    offsets = tuple(y.offset - x.offset for x, y in zip(va, vb))
    na, nb = _NUMBER.findall(a.name), _NUMBER.findall(b.name)
    if len(na) != len(nb):
        return None
    return offsets, tuple(int(y) - int(x) for x, y in zip(na, nb))


def _loop(run: list, body: int, trips: int) -> Step:
    """The loop over `run`: `trips` iterations of `body` steps."""
    first, strides = run[:body], []
    for j, (a, b) in enumerate(zip(first, run[body:2 * body])):
        offsets, counters = _moves(a, b)
        masks, table = _mask_strides(run[j::body])
        strides.append(LoopStride(offsets[:len(a.inputs)], offsets[len(a.inputs):],
                                  masks=masks, names=counters if any(counters) else (),
                                  mask_table=table))
    return Step("loop", first[0].phase, f"loop({first[0].name} x{trips})", [], [],
                body=first, trips=trips, strides=strides)


def _mask_strides(steps: list) -> tuple[tuple, tuple]:
    """(per-iteration increment of each mask id, ()) where the ids of `steps` (one body
    step's, every iteration) move by equal steps, as the cells' per-step masks do
    (symrnn.ops.step_mask_id), or stay (a sequence's shared mask); else ((), every
    iteration's ids, flattened)."""
    rows = [tuple(s.attrs.get("masks", ())) for s in steps]
    if not rows[0]:
        return (), ()
    step = tuple(b - a for a, b in zip(rows[0], rows[1]))
    if all(tuple(b - a for a, b in zip(x, y)) == step for x, y in itertools.pairwise(rows)):
        return step, ()  # zeros where they stay (the cuda engine needs a stride or a table)
    return (), tuple(m for row in rows for m in row)
