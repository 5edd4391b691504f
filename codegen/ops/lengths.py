"""Variable-length batches: each sample `n` of a `(T, N, C)` batch has its own length.

`length_rows(lengths, like)` turns the int32 lengths `(N,)` into a float `(N, W)` block of
the shape and dtype of `like` (a state of the cell), each row holding its sample's length:
the per-row valid flag the step kernels read (step `t` is valid for row `n` when the row's
value exceeds `t`). It runs once per forward and checks each length is in `[0, steps]`.

`step_select(prev, new, rows)` is `new` on valid rows and `prev` past the length (the state
is left unchanged); `step_zero(x, rows)` is `x` on valid rows and 0 past the length (the
output). Both are elementwise, so they fuse into the cell's step kernel. The step `t` is the
op's `mask_id`: the kernel takes it as a launch argument like a mask id, so that one
kernel serves every step.
"""
from __future__ import annotations

import numpy as np

from codegen.ops import no_grad, register, same_shape_rule, unify
from runtime.kernel_ops import C_EXPRS
from runtime.library import LIBOPS


def _length_rows_rule(attrs, ins, out):
    lengths, like = ins
    out = unify(out, like)
    if out is not None:
        lengths = unify(lengths, out[:1])
    return [lengths, out], out


register("length_rows", shape=_length_rows_rule, vjp=no_grad, differentiable=False,
         impl=lambda ctx, attrs, lengths, like: LIBOPS["length_rows"](attrs, lengths, like))


def _valid(rows, t):
    return rows > t


def _step_select_impl(ctx, attrs, prev, new, rows):
    return np.where(_valid(rows, attrs["mask_id"]), new, prev)


def _step_zero_impl(ctx, attrs, x, rows):
    return np.where(_valid(rows, attrs["mask_id"]), x, x.dtype.type(0))


def _step_select_vjp(b, nid, node, g):
    rows, t = node.inputs[2], node.attr("mask_id")
    zeros = b.add("zeros", [], f"d({nid}).zeros", shape=node.shape, dtype=node.dtype)
    d_prev = b.add("step_select", [g, zeros, rows], f"d({nid}).0", mask_id=t)
    d_new = b.add("step_zero", [g, rows], f"d({nid}).1", mask_id=t)
    return [d_prev, d_new, None]


def _step_zero_vjp(b, nid, node, g):
    rows, t = node.inputs[1], node.attr("mask_id")
    return [b.add("step_zero", [g, rows], f"d({nid}).0", mask_id=t), None]


register("step_select", shape=same_shape_rule, impl=_step_select_impl, vjp=_step_select_vjp,
         c_expr=C_EXPRS["step_select"], elementwise=True)
register("step_zero", shape=same_shape_rule, impl=_step_zero_impl, vjp=_step_zero_vjp,
         c_expr=C_EXPRS["step_zero"], elementwise=True)
