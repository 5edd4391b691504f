"""Streaming inference: the final states of one chunk become the initial states of the next.

A live stream runs `forward(is_train=False)` on chunk after chunk of a sequence; between two
chunks each final-state output is written into the initial-state argument it continues,
in place (the executor's argument array, which the engine has bound by data pointer, so
nothing is rebuilt), and the validation is done once per set of pairs:

    >>> pairs = {"lstm_l0_init_h": "lstm_l0_t0_h_output",       # doctest: +SKIP
    ...          "lstm_l0_init_c": "lstm_l0_t0_c_output"}
    >>> for chunk in chunks:                                     # doctest: +SKIP
    ...     ex.arg_dict["data"][...] = chunk
    ...     out = ex.forward(is_train=False)[0]
    ...     ex.carry_states(pairs)

Chunked this way, the outputs are those of the whole sequence run at once (bit for bit where
the same kernels run: tests/runtime/test_stream.py).
"""
from __future__ import annotations

import numpy as np

from runtime.errors import BindError, ShapeError, fmt_shape


def state_pairs(where: str, executor, pairs) -> list[tuple[str, int]]:
    """`[(argument, output index)]` for `pairs` ({argument: output} or a list of pairs),
    or a BindError/ShapeError naming the first pair that does not fit."""
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    if not isinstance(pairs, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise BindError(f"{where}: 'pairs' must be a dict {{init-state argument: final-state "
                        f"output}} or a list of such pairs, given {pairs!r}"[:300])
    outs = {n: i for i, (n, _, _) in enumerate(executor.engine.out_specs)}
    specs, found = executor.engine.arg_specs, []
    for arg, out in pairs:
        if arg not in specs:
            raise BindError(f"{where}: {arg!r} is not an argument; the arguments are "
                            f"{list(specs)}")
        if out not in outs:
            raise BindError(f"{where}: {out!r} is not an output; the outputs are "
                            f"{list(outs)}")
        _check_fits(where, arg, specs[arg], out, executor.engine.out_specs[outs[out]])
        found.append((arg, outs[out]))
    args = [a for a, _ in found]
    if len(set(args)) != len(args):
        raise BindError(f"{where}: an argument is fed twice in {args}")
    return found


def _check_fits(where: str, arg: str, arg_spec, out: str, out_spec) -> None:
    (shape, dtype), (_, out_shape, out_dtype) = arg_spec, out_spec
    if tuple(shape) != tuple(out_shape):
        raise ShapeError(f"{where}: output {out!r} has shape {fmt_shape(tuple(out_shape))} "
                         f"but argument {arg!r} has {fmt_shape(tuple(shape))}")
    if np.dtype(dtype) != np.dtype(out_dtype):
        raise BindError(f"{where}: output {out!r} is {np.dtype(out_dtype)} but argument "
                        f"{arg!r} is {np.dtype(dtype)}")


class StateCarrier:
    """Per executor: the checked pairs, cached by their key, and the copy itself."""

    def __init__(self):
        self._checked: dict = {}

    def carry(self, executor, pairs) -> None:
        key = _key(pairs)
        plan = self._checked.get(key) if key is not None else None
        if plan is None:
            plan = state_pairs("carry_states", executor, pairs)
            if key is not None:
                self._checked[key] = plan
        outputs, args = executor.outputs, executor.arg_dict
        if len(outputs) != len(executor.engine.out_specs):
            raise BindError("carry_states: call forward first; there are no final states yet")
        for arg, index in plan:
            dst, src = args[arg], outputs[index]
            if type(src) is np.ndarray and src.shape == dst.shape and src.dtype == dst.dtype:
                dst[...] = src  # the common case: as np.copyto, ~0.3 us faster
            else:  # an argument reshaped or retyped in place is refused, naming it
                executor._held.check("carry_states", args)
                np.copyto(dst, src.reshape(dst.shape))


def _key(pairs):
    try:  # a dict's items are pairs already: the common case, one tuple call
        items = pairs.items() if isinstance(pairs, dict) else ((a, o) for a, o in pairs)
        key = tuple(items)
        hash(key)
        return key
    except (TypeError, ValueError):
        return None  # not hashable or not pairs: state_pairs says what is wrong
