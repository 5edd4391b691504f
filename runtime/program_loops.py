"""The schema of loop steps (runtime.program; made by codegen.roll), for runtime.program_check.

A `loop` step runs its `body` `trips` times, each body view moving by its LoopStride per
iteration. The checks:

- a non-loop step has an empty body, trips 0 and no strides;
- a loop has no inputs, outputs or attrs of its own, an integer `trips` in [1, MAX_TRIPS], a
  non-empty body of non-loop steps in the loop's phase, and one LoopStride per body step;
- LoopStride j: as many input and output strides (integers) as body step j has views; `masks`
  empty or one integer per mask id of `attrs['masks']`; `mask_table` empty or `trips` rows of
  them (row 0 equal to `attrs['masks']`, every id in [0, 2**32)), not both; `names` empty or
  one integer per decimal number in the body step's name;
- every view moves affinely in the iteration, and so do the mask ids of `masks`: the body steps
  as they run in the first and the last iteration (checked as steps of their own) bound them
  all.
"""
# ruff: noqa: B023 (each message lambda is called, if at all, inside the loop that made it)
from __future__ import annotations

from runtime.program import _NUMBER, LoopStride, Step, iteration
from runtime.program_flow import check

MAX_TRIPS = 1 << 24  # iterations of one loop
MAX_ID = (1 << 32) - 1


def check_not_loop(s: Step, what: str) -> None:
    check(
        s.body == [] and type(s.trips) is int and s.trips == 0 and s.strides == [],
        lambda: f"{what}: fields 'body', 'trips', 'strides' belong to loop steps only",
    )


def loop_iterations(s: Step, what: str) -> list:
    """Checks loop `s`'s own fields; returns (what, body step at its first and last iteration)
    pairs for the caller to check as steps."""
    check(
        s.inputs == [] and s.outputs == [] and s.attrs == {},
        lambda: f"{what}: fields 'inputs', 'outputs', 'attrs' of a loop are empty",
    )
    trips = s.trips
    check(
        type(trips) is int and 1 <= trips <= MAX_TRIPS,
        lambda: f"{what}: field 'trips' is {trips!r}, expected an integer in [1, {MAX_TRIPS}]",
    )
    check(
        isinstance(s.body, list) and s.body and isinstance(s.strides, list),
        lambda: f"{what}: field 'body' must be a non-empty list and 'strides' a list",
    )
    check(
        len(s.strides) == len(s.body),
        lambda: f"{what}: field 'strides' has {len(s.strides)} entries, the body "
                f"{len(s.body)} steps",
    )
    found = []
    for j, (b, d) in enumerate(zip(s.body, s.strides)):
        where = f"{what} body step {j}"
        _body_step(s, b, where)
        _stride(b, d, trips, f"{where}: field 'strides[{j}]")
        found += [(f"{where} at iteration {k}", iteration(b, d, k)) for k in {0, trips - 1}]
    return found


def _body_step(loop: Step, b, where: str) -> None:
    check(isinstance(b, Step), lambda: f"{where} is not a step")
    check(b.kind != "loop", lambda: f"{where}: field 'kind' is 'loop': loops do not nest")
    check(
        b.phase == loop.phase,
        lambda: f"{where}: field 'phase' is {b.phase!r}, its loop's is {loop.phase!r}",
    )
    check_not_loop(b, where)
    check(
        isinstance(b.inputs, list) and isinstance(b.outputs, list) and isinstance(b.attrs, dict)
        and isinstance(b.name, str),
        lambda: f"{where}: fields 'inputs', 'outputs' must be lists and 'attrs' an object",
    )


def _ints(values, what: str, low: int, high: int) -> None:
    check(isinstance(values, tuple), lambda: f"{what} must be a list")
    for v in values:
        check(
            type(v) is int and low <= v <= high,
            lambda: f"{what} holds {v!r}, expected integers in [{low}, {high}]",
        )


def _stride(b: Step, d, trips: int, what: str) -> None:
    check(isinstance(d, LoopStride), lambda: f"{what}' is not a loop stride")
    span = 1 << 40
    for name, views in (("inputs", b.inputs), ("outputs", b.outputs)):
        got = getattr(d, name)
        _ints(got, f"{what}.{name}'", -span, span)
        check(
            len(got) == len(views),
            lambda: f"{what}.{name}' has {len(got)} entries, the body step {len(views)} {name}",
        )
    masks = b.attrs.get("masks", ())
    check(isinstance(masks, tuple), lambda: f"{what}': the body step's 'attrs.masks' is no list")
    check(not (d.masks and d.mask_table), lambda: f"{what}' has both 'masks' and 'mask_table'")
    _ints(d.masks, f"{what}.masks'", -MAX_ID, MAX_ID)
    check(
        not d.masks or len(d.masks) == len(masks),
        lambda: f"{what}.masks' has {len(d.masks)} entries, 'attrs.masks' {len(masks)}",
    )
    _ints(d.mask_table, f"{what}.mask_table'", 0, MAX_ID)
    check(
        not d.mask_table or len(d.mask_table) == trips * len(masks),
        lambda: f"{what}.mask_table' has {len(d.mask_table)} ids, expected trips * "
                f"{len(masks)} masks = {trips * len(masks)}",
    )
    check(
        not d.mask_table or tuple(d.mask_table[:len(masks)]) == tuple(masks),
        lambda: f"{what}.mask_table' row 0 differs from 'attrs.masks'",
    )
    _ints(d.names, f"{what}.names'", -span, span)
    numbers = len(_NUMBER.findall(b.name))
    check(
        not d.names or len(d.names) == numbers,
        lambda: f"{what}.names' has {len(d.names)} entries, the name {numbers} numbers",
    )
