"""The op table: every op declared once, in one `register(...)` block per op.

Each entry holds
- `shape(attrs, ins, out) -> (ins, out)`: the shape rule over partial shapes (tuples whose
  dimensions may be None, or None for an unknown rank). It refines what it can in both
  directions and raises `Mismatch` on a contradiction;
- `impl(ctx, attrs, *arrays) -> array`: the numpy implementation, the definition of correct;
  `ctx` carries `seed` and `is_train`;
- `vjp(b, nid, node, g) -> [grad id or None per input]`: builds the gradient nodes with the
  graph builder `b` (None: no gradient flows to that input);
- `c_expr`: for elementwise ops, a C expression over the inputs `{0}`, `{1}`, ... and the
  attributes `{name}`; None for the others, which the compiler lowers to GEMMs or copies;
- `row_reduction`: the op reduces each row (its last axis) to a value repeated along the row
  (`row_sum`); not elementwise, but it fuses into a kernel as a `Reduce` statement.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

OPS: dict[str, OpDef] = {}


@dataclass(frozen=True)
class OpDef:
    name: str
    shape: Callable
    impl: Callable
    vjp: Callable
    c_expr: str | None = None
    elementwise: bool = False
    differentiable: bool = True
    dtype_input: int | None = None  # whose dtype the output takes; None: the first float
    row_reduction: bool = False


def register(name, *, shape, impl, vjp, c_expr=None, elementwise=False, differentiable=True,
             dtype_input=None, row_reduction=False):
    if name in OPS:
        raise ValueError(f"op {name!r} registered twice")
    OPS[name] = OpDef(name, shape, impl, vjp, c_expr, elementwise, differentiable, dtype_input,
                      row_reduction)
    return OPS[name]


def get_op(name: str) -> OpDef:
    return OPS[name]


# ---- partial shapes -------------------------------------------------------------------------

class Mismatch(Exception):
    """Two shapes that must agree do not; the inference driver names the node."""

    def __init__(self, expected, given, what="shape"):
        super().__init__(what)
        self.expected, self.given, self.what = expected, given, what


def known(s) -> bool:
    return s is not None and all(d is not None for d in s)


def unify(a, b):
    """The most precise shape agreeing with both `a` and `b`; raises Mismatch if none."""
    if a is None:
        return b
    if b is None:
        return a
    if a == b:  # the common case, run tens of thousands of times by shape inference
        return tuple(a)
    if len(a) != len(b):
        raise Mismatch(a, b)
    dims = []
    for x, y in zip(a, b):
        if x is not None and y is not None and x != y:
            raise Mismatch(a, b)
        dims.append(x if x is not None else y)
    return tuple(dims)


def forward_rule(f):
    """A shape rule that computes the output once every input shape is known."""
    def rule(attrs, ins, out):
        if all(known(s) for s in ins):
            out = unify(out, tuple(f(attrs, *ins)))
        return ins, out
    return rule


def same_shape_rule(attrs, ins, out):
    """Elementwise: every input and the output share one shape."""
    s = out
    for x in ins:
        s = unify(s, x)
    return [s] * len(ins), s


def no_grad(b, nid, node, g):
    return [None] * len(node.inputs)


import codegen.ops.elementwise  # each module fills OPS
import codegen.ops.lengths
import codegen.ops.nn
import codegen.ops.rows
import codegen.ops.tensor  # noqa: F401
