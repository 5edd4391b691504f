"""Row ops for layer normalization: a reduction along each row and a row vector spread.

`row_sum(x)` has the shape of `x` and holds at `(..., j)` the sum of `x[..., :]`: the row's
sum repeated along the row, so that it combines elementwise with `x` and fuses into the
kernel that reads it (a `Reduce` statement; runtime.render_rows). It is its own adjoint:
the gradient of every input of a row is the row sum of the incoming gradient.

`broadcast_rows(v, like)` repeats the vector `v` `(F,)` over the rows of `like` `(..., F)`:
a gain or a bias of the front end, which does not know the batch. canonicalize turns it into
a `broadcast_to` of the known shape (a view) before autodiff.
"""
from __future__ import annotations

from codegen.ops import register, same_shape_rule, unify
from runtime.library import LIBOPS


def _row_sum_impl(ctx, attrs, x):
    return LIBOPS["row_sum"](attrs, x)


def _row_sum_vjp(b, nid, node, g):
    return [b.add("row_sum", [g], f"d({nid}).0")]


register("row_sum", shape=same_shape_rule, impl=_row_sum_impl, vjp=_row_sum_vjp,
         row_reduction=True)


def _broadcast_rows_rule(attrs, ins, out):
    v, like = ins
    out = unify(out, like)
    if out is not None:
        v = unify(v, out[-1:])
    return [v, out], out


def _broadcast_rows_impl(ctx, attrs, v, like):
    return LIBOPS["broadcast_rows"](attrs, v, like)


def _broadcast_rows_vjp(b, nid, node, g):
    rank = len(node.shape)
    lead = tuple(range(rank - 1))
    return [b.add("sum", [g], f"d({nid}).0", axis=lead) if lead else g, None]


register("broadcast_rows", shape=_broadcast_rows_rule, impl=_broadcast_rows_impl,
         vjp=_broadcast_rows_vjp, dtype_input=0)
