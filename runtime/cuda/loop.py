"""Loop steps on the CUDA engine: one `LoopCommand` that issues a body's commands per iteration.

Each body step is lowered (by the engine's own `_lower`) for iterations 0, 1 and 2. Iteration
0's commands run as they are; from commands 1 and 2 every integer field (device pointers,
and the kernel arguments, numpy scalars) gets its per-iteration difference, so iteration `k`
issues command 1 moved `k - 1` steps on: the engine's size does not grow with T. The mask
ids of every iteration of a body kernel go into one device table of their own (`trips` rows),
so that the pointer a launch passes moves by one row per iteration.

A body step lowered to a host op, or whose commands do not line up, makes the loop fall back to
lowering every iteration (what the unrolled program would have cost).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from runtime.program import Step, iteration

SAMPLED = (0, 1, 2)


class NotShiftable(Exception):
    pass


@dataclass
class LoopCommand:
    """`trips` iterations of `first` (iteration 0's commands) and then of `shifted`:
    `(command 1, {field: per-iteration difference})` per command, in body order."""

    trips: int
    first: list
    shifted: list

    def kinds(self) -> list:
        """(command type, how many it issues) for each command of the body."""
        return [(type(c).__name__, self.trips) for c, _ in self.shifted]

    def issue(self, device) -> None:
        for command in self.first:
            command.issue(device)
        for k in range(self.trips - 1):
            for command, moves in self.shifted:
                _moved(command, moves, k).issue(device)


def lower_loop(engine, step: Step, device_ops: bool) -> list:
    """The commands of loop `step`: one LoopCommand, or every iteration's commands."""
    if step.trips < len(SAMPLED):
        return _unrolled(engine, step, device_ops, range(step.trips))
    sampled = [[] for _ in SAMPLED]
    for j, (body, stride) in enumerate(zip(step.body, step.strides)):
        tables = _mask_pointers(engine, body, stride, step.trips)
        for k in SAMPLED:
            sampled[k] += _lowered(engine, iteration(body, stride, k), device_ops, tables, k)
    try:
        shifted = _shift_all(sampled[1], sampled[2])
    except NotShiftable:
        return _unrolled(engine, step, device_ops, range(step.trips))
    return [LoopCommand(step.trips, sampled[0], shifted)]


def _unrolled(engine, step: Step, device_ops: bool, ks) -> list:
    return [c for k in ks for b, d in zip(step.body, step.strides)
            for c in engine._lower(iteration(b, d, k), device_ops)]


def _mask_pointers(engine, body: Step, stride, trips: int) -> list | None:
    """Device pointers of each iteration's mask ids in a table of this body step's own."""
    first = tuple(body.attrs.get("masks", ()))
    if body.kind != "kernel" or not first:
        return None
    table = np.array([stride.masks_at(k, first) for k in range(trips)], np.int64)
    table = table.astype(np.uint32).reshape(-1)
    base = engine._alloc(table.nbytes)
    engine._htod(base, table)
    return [base + 4 * len(first) * k for k in range(len(SAMPLED))]


def _lowered(engine, step: Step, device_ops: bool, tables, k: int) -> list:
    """The engine's commands for `step`, its mask ids read from the loop's table."""
    if tables is None:
        return engine._lower(step, device_ops)
    ids = tuple(step.attrs["masks"])
    saved = engine.masks.get(ids)
    engine.masks[ids] = tables[k]
    try:
        return engine._lower(step, device_ops)
    finally:
        if saved is None:
            del engine.masks[ids]
        else:
            engine.masks[ids] = saved


def _shift_all(ones: list, twos: list) -> list:
    if len(ones) != len(twos):
        raise NotShiftable("iterations lower to different numbers of commands")
    return [(a, _moves(a, b)) for a, b in zip(ones, twos)]


def _moves(a, b) -> dict:
    """{field: difference} from command `a` to command `b` (same type, same other fields)."""
    if type(a) is not type(b) or not dataclasses.is_dataclass(a) or not hasattr(a, "issue"):
        raise NotShiftable(f"{type(a).__name__} against {type(b).__name__}")
    moves = {}
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == len(y):
            steps = tuple(_difference(p, q) for p, q in zip(x, y))
            if any(steps):
                moves[f.name] = steps
        elif _difference(x, y):
            moves[f.name] = _difference(x, y)
    return moves


def _difference(x, y) -> int:
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and type(x) is type(y):
        return int(y) - int(x)
    if x != y:
        raise NotShiftable(f"{x!r} against {y!r}")
    return 0


def _moved(command, moves: dict, k: int):
    if not moves or not k:
        return command
    changes = {}
    for name, d in moves.items():
        value = getattr(command, name)
        if isinstance(d, tuple):
            changes[name] = tuple(v if not s else type(v)(int(v) + k * s)
                                  for v, s in zip(value, d))
        else:
            changes[name] = type(value)(int(value) + k * d)
    return dataclasses.replace(command, **changes)
