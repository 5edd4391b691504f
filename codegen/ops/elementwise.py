"""Elementwise ops: each is one C expression, so the fuser can put any run of them in a kernel.

Derivatives are written with elementwise ops too, so backward kernels fuse the same way.
Dropout and zoneout draw their masks from the counter-based RNG keyed by
`(seed, mask_id, element index)`: the derivative recomputes the mask instead of storing it.
"""
from __future__ import annotations

import numpy as np

from codegen.ops import no_grad, register, same_shape_rule
from runtime import rng
from runtime.kernel_ops import C_EXPRS


def _name(nid, tag):
    return f"d({nid}).{tag}"


def unary(name, fn, c_expr, vjp):
    register(name, shape=same_shape_rule, impl=lambda ctx, attrs, x: fn(x), vjp=vjp,
             c_expr=c_expr, elementwise=True)


def _neg_vjp(b, nid, node, g):
    return [b.add("neg", [g], _name(nid, 0))]


def _sigmoid_vjp(b, nid, node, g):
    one_minus = b.add("rsub_scalar", [nid], _name(nid, "1-y"), scalar=1.0)
    slope = b.add("mul", [nid, one_minus], _name(nid, "y(1-y)"))
    return [b.add("mul", [g, slope], _name(nid, 0))]


def _tanh_vjp(b, nid, node, g):
    sq = b.add("mul", [nid, nid], _name(nid, "y2"))
    slope = b.add("rsub_scalar", [sq], _name(nid, "1-y2"), scalar=1.0)
    return [b.add("mul", [g, slope], _name(nid, 0))]


def _relu_vjp(b, nid, node, g):
    step = b.add("heaviside", [nid], _name(nid, "step"))
    return [b.add("mul", [g, step], _name(nid, 0))]


def _exp_vjp(b, nid, node, g):
    return [b.add("mul", [g, nid], _name(nid, 0))]


def _log_vjp(b, nid, node, g):
    return [b.add("div", [g, node.inputs[0]], _name(nid, 0))]


def _rsqrt_vjp(b, nid, node, g):
    # d(x^-1/2) = -x^-3/2 / 2 = -y^3 / 2
    sq = b.add("mul", [nid, nid], _name(nid, "y2"))
    cube = b.add("mul", [sq, nid], _name(nid, "y3"))
    return [b.add("mul", [g, b.add("mul_scalar", [cube], _name(nid, "-y3/2"), scalar=-0.5)],
                  _name(nid, 0))]


def _sigmoid(x):
    # The two-sided form never overflows exp.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


unary("neg", np.negative, C_EXPRS["neg"], _neg_vjp)
unary("sigmoid", _sigmoid, C_EXPRS["sigmoid"], _sigmoid_vjp)
unary("tanh", np.tanh, C_EXPRS["tanh"], _tanh_vjp)
unary("relu", lambda x: np.maximum(x, 0), C_EXPRS["relu"], _relu_vjp)
unary("exp", np.exp, C_EXPRS["exp"], _exp_vjp)
unary("log", np.log, C_EXPRS["log"], _log_vjp)
unary("rsqrt", lambda x: 1 / np.sqrt(x), C_EXPRS["rsqrt"], _rsqrt_vjp)
unary("heaviside", lambda x: (x > 0).astype(x.dtype), C_EXPRS["heaviside"],
      no_grad)


def binary(name, fn, c_expr, vjp):
    register(name, shape=same_shape_rule, impl=lambda ctx, attrs, x, y: fn(x, y), vjp=vjp,
             c_expr=c_expr, elementwise=True)


def _add_vjp(b, nid, node, g):
    return [g, g]


def _sub_vjp(b, nid, node, g):
    return [g, b.add("neg", [g], _name(nid, 1))]


def _mul_vjp(b, nid, node, g):
    x, y = node.inputs
    return [b.add("mul", [g, y], _name(nid, 0)), b.add("mul", [g, x], _name(nid, 1))]


def _div_vjp(b, nid, node, g):
    y = node.inputs[1]
    dx = b.add("div", [g, y], _name(nid, 0))
    q = b.add("div", [nid, y], _name(nid, "y/b"))
    gq = b.add("mul", [g, q], _name(nid, "g*y/b"))
    return [dx, b.add("neg", [gq], _name(nid, 1))]


binary("add", np.add, C_EXPRS["add"], _add_vjp)
binary("sub", np.subtract, C_EXPRS["sub"], _sub_vjp)
binary("mul", np.multiply, C_EXPRS["mul"], _mul_vjp)
binary("div", np.divide, C_EXPRS["div"], _div_vjp)


def scalar_op(name, fn, c_expr, vjp):
    register(name, shape=same_shape_rule,
             impl=lambda ctx, attrs, x: fn(x, x.dtype.type(attrs["scalar"])), vjp=vjp,
             c_expr=c_expr, elementwise=True)


def _pass_vjp(b, nid, node, g):
    return [g]


def _mul_scalar_vjp(b, nid, node, g):
    return [b.add("mul_scalar", [g], _name(nid, 0), scalar=node.attr("scalar"))]


def _rsub_scalar_vjp(b, nid, node, g):
    return [b.add("neg", [g], _name(nid, 0))]


def _rdiv_scalar_vjp(b, nid, node, g):
    # d(s/x) = -s/x^2 = -y/x
    q = b.add("div", [nid, node.inputs[0]], _name(nid, "y/x"))
    return [b.add("neg", [b.add("mul", [g, q], _name(nid, "g*y/x"))], _name(nid, 0))]


unary("copy", np.copy, C_EXPRS["copy"], _pass_vjp)
scalar_op("add_scalar", np.add, C_EXPRS["add_scalar"], _pass_vjp)
scalar_op("mul_scalar", np.multiply, C_EXPRS["mul_scalar"], _mul_scalar_vjp)
scalar_op("rsub_scalar", lambda x, s: s - x, C_EXPRS["rsub_scalar"], _rsub_scalar_vjp)
scalar_op("rdiv_scalar", lambda x, s: s / x, C_EXPRS["rdiv_scalar"], _rdiv_scalar_vjp)


# ---- cell clipping ----------------------------------------------------------------------------
# `clip` bounds x to [-scalar, scalar] (scalar > 0); its gradient passes where x was inside the
# interval (bounds included, as torch.clamp) and is zero where it clipped.

def _clip_impl(ctx, attrs, x):
    bound = x.dtype.type(attrs["scalar"])
    return np.clip(x, -bound, bound)


def _clip_vjp(b, nid, node, g):
    return [b.add("clip_grad", [g, node.inputs[0]], _name(nid, 0), scalar=node.attr("scalar"))]


def _clip_grad_impl(ctx, attrs, g, x):
    bound = x.dtype.type(attrs["scalar"])
    return np.where((x >= -bound) & (x <= bound), g, g.dtype.type(0))


register("clip", shape=same_shape_rule, impl=_clip_impl, vjp=_clip_vjp,
         c_expr=C_EXPRS["clip"], elementwise=True)
def _clip_grad_vjp(b, nid, node, g):
    # Linear in the incoming gradient, piecewise constant in x.
    return [b.add("clip_grad", [g, node.inputs[1]], _name(nid, 0), scalar=node.attr("scalar")),
            None]


register("clip_grad", shape=same_shape_rule, impl=_clip_grad_impl, vjp=_clip_grad_vjp,
         c_expr=C_EXPRS["clip_grad"], elementwise=True)


# ---- masks ------------------------------------------------------------------------------------
# Attributes: p (the rate) and mask_id (uint32). In the C expressions the renderer supplies
# `{bits}` (the element's Philox draw for its mask: seed from the launch, the mask id an
# argument so that one kernel serves every step, the element's flat index within the tensor),
# `{train}` (a literal 0 or 1: each mode has its own loops), `{threshold}`
# (runtime.rng.threshold(p)), `{scale}` and `{p}` as literals of the dtype.

def _dropout_impl(ctx, attrs, x):
    p = attrs["p"]
    if not ctx.is_train or p == 0:
        return x
    return x * rng.dropout_mask(ctx.seed, attrs["mask_id"], x.shape, p, x.dtype)


def _dropout_vjp(b, nid, node, g):
    # The same mask scales the gradient: recomputed from (seed, mask_id), never stored.
    return [b.add("dropout", [g], _name(nid, 0), **node.attr_dict)]


register(
    "dropout", shape=same_shape_rule, impl=_dropout_impl, vjp=_dropout_vjp,
    c_expr=C_EXPRS["dropout"], elementwise=True,
)


def _zoneout_impl(ctx, attrs, prev, new):
    p = attrs["p"]
    if not ctx.is_train:
        keep = prev.dtype.type(p)
    elif p == 0:
        return new
    else:
        keep = rng.zoneout_mask(ctx.seed, attrs["mask_id"], prev.shape, p, prev.dtype)
    return keep * prev + (1 - keep) * new


def _zoneout_vjp(b, nid, node, g):
    zeros = b.add("zeros", [], _name(nid, "zeros"), shape=node.shape, dtype=node.dtype)
    attrs = node.attr_dict
    d_prev = b.add("zoneout", [g, zeros], _name(nid, 0), **attrs)
    d_new = b.add("zoneout", [zeros, g], _name(nid, 1), **attrs)
    return [d_prev, d_new]


register(
    "zoneout", shape=same_shape_rule, impl=_zoneout_impl, vjp=_zoneout_vjp,
    c_expr=C_EXPRS["zoneout"], elementwise=True,
)
