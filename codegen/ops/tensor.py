"""Data-movement and reduction ops: variables, reshapes, slices, time steps, sums.

The derivative of a slice is a `pad` and that of a time step a `put`; autodiff gathers the
pads and puts that land on one tensor into a single concat or stack instead of summing
zero-filled copies (codegen.autodiff).
"""
from __future__ import annotations

import math

from codegen.ops import Mismatch, forward_rule, no_grad, register, unify
from runtime.kernel_ops import C_EXPRS
from runtime.library import LIBOPS, reduced_axes, reshape_spec, split_span


def _name(nid, tag):
    return f"d({nid}).{tag}"


def _lib(name):
    """The op's numpy implementation, which lives in runtime.library."""
    fn = LIBOPS[name]
    return lambda ctx, attrs, *xs: fn(attrs, *xs)


def _no_impl(ctx, attrs, *xs):
    raise RuntimeError("internal: variables are fed by the executor, not evaluated")


def _var_rule(attrs, ins, out):
    return ins, out


register("var", shape=_var_rule, impl=_no_impl, vjp=no_grad, differentiable=False)


def _zeros_rule(attrs, ins, out):
    return ins, unify(out, tuple(attrs["shape"]))


register(
    "zeros", shape=_zeros_rule, vjp=no_grad, c_expr=C_EXPRS["zeros"], elementwise=True,
    impl=_lib("zeros"),
)


# ---- reshape ----------------------------------------------------------------------------------

def resolve_reshape(src: tuple, spec: tuple) -> tuple:
    """MXNet-style target: 0 copies the source dimension, one -1 takes what is left."""
    if any(d == 0 and i >= len(src) for i, d in enumerate(spec)):
        raise Mismatch(spec, src, "reshape: a 0 past the source's rank")
    dims = list(reshape_spec(src, spec))
    if dims.count(-1) > 1:
        raise Mismatch(spec, src, "at most one -1 in a reshape")
    total = math.prod(src)
    if -1 in dims:
        rest = math.prod(d for d in dims if d != -1)
        if rest == 0 or total % rest:
            raise Mismatch(spec, src, "reshape size")
        dims[dims.index(-1)] = total // rest
    if math.prod(dims) != total:
        raise Mismatch(tuple(dims), src, "reshape size")
    return tuple(dims)


def _reshape_vjp(b, nid, node, g):
    src = b.shape_of(node.inputs[0])
    return [b.add("reshape", [g], _name(nid, 0), shape=src)]


register(
    "reshape", shape=forward_rule(lambda a, x: resolve_reshape(x, tuple(a["shape"]))),
    impl=_lib("reshape"),
    vjp=_reshape_vjp,
)


# ---- slices along an axis ---------------------------------------------------------------------

def _axis(a, rank):
    ax = a["axis"]
    if not -rank <= ax < rank:
        raise Mismatch(f"an axis in [{-rank}, {rank})", ax, "axis")
    return ax + rank if ax < 0 else ax


def _slice_rule(a, ins, out):
    (x,) = ins
    if x is None:
        return ins, out
    ax = _axis(a, len(x))
    if x[ax] is not None and not 0 <= a["begin"] < a["end"] <= x[ax]:
        raise Mismatch((a["begin"], a["end"]), x, f"slice [{a['begin']}:{a['end']}] on axis {ax}")
    shape = x[:ax] + (a["end"] - a["begin"],) + x[ax + 1:]
    out = unify(out, shape)
    return [unify(x, out[:ax] + (x[ax],) + out[ax + 1:])], out


def _slice_vjp(b, nid, node, g):
    x = b.shape_of(node.inputs[0])
    ax = _axis(node.attr_dict, len(x))
    return [b.add("pad", [g], _name(nid, 0), axis=ax, begin=node.attr("begin"),
                  end=node.attr("end"), size=x[ax])]


register("slice", shape=_slice_rule, impl=_lib("slice"), vjp=_slice_vjp)


def _split_rule(a, ins, out):
    (x,) = ins
    if x is None:
        return ins, out
    ax, k = _axis(a, len(x)), a["num_outputs"]
    if x[ax] is not None and x[ax] % k:
        raise Mismatch(k, x, f"split of axis {ax} into {k} equal parts")
    part = None if x[ax] is None else x[ax] // k
    if a.get("squeeze_axis"):
        if part not in (None, 1):
            raise Mismatch(1, x, f"squeeze_axis with parts of size {part} along axis {ax}")
        out = unify(out, x[:ax] + x[ax + 1:])
        return [unify(x, out[:ax] + (x[ax],) + out[ax:])], out
    out = unify(out, x[:ax] + (part,) + x[ax + 1:])
    return [unify(x, out[:ax] + (x[ax],) + out[ax + 1:])], out


def _split_vjp(b, nid, node, g):
    x = b.shape_of(node.inputs[0])
    ax, begin, end = split_span(node.attr_dict, x)
    if node.attr("squeeze_axis"):
        g = b.add("reshape", [g], _name(nid, "unsqueeze"), shape=x[:ax] + (1,) + x[ax + 1:])
    return [b.add("pad", [g], _name(nid, 0), axis=ax, begin=begin, end=end, size=x[ax])]


register("split", shape=_split_rule, impl=_lib("split"), vjp=_split_vjp)


def _pad_shape(a, x):
    ax = _axis(a, len(x))
    return x[:ax] + (a["size"],) + x[ax + 1:]


def _pad_vjp(b, nid, node, g):
    a = node.attr_dict
    return [b.add("slice", [g], _name(nid, 0), axis=a["axis"], begin=a["begin"], end=a["end"])]


register("pad", shape=forward_rule(_pad_shape), impl=_lib("pad"), vjp=_pad_vjp)


def _concat_shape(a, *xs):
    ax = _axis(a, len(xs[0]))
    for x in xs[1:]:
        if len(x) != len(xs[0]) or x[:ax] + x[ax + 1:] != xs[0][:ax] + xs[0][ax + 1:]:
            raise Mismatch(xs[0], x, f"concat along axis {ax}")
    return xs[0][:ax] + (sum(x[ax] for x in xs),) + xs[0][ax + 1:]


def _concat_vjp(b, nid, node, g):
    grads, begin = [], 0
    for i, src in enumerate(node.inputs):
        shape = b.shape_of(src)
        ax = _axis(node.attr_dict, len(shape))
        end = begin + shape[ax]
        grads.append(b.add("slice", [g], _name(nid, i), axis=ax, begin=begin, end=end))
        begin = end
    return grads


register(
    "concat", shape=forward_rule(_concat_shape), vjp=_concat_vjp,
    impl=_lib("concat"),
)


# ---- time steps: take one, put one back, stack them ---------------------------------------

def _take_rule(a, ins, out):
    """`length` (optional): the sequence has exactly that many steps, so that data longer
    than an unrolled symbol's seq_len is refused rather than cut."""
    (x,) = ins
    length = a.get("length")
    if x is None:
        return ([(length,) + out] if length is not None and out is not None else ins), out
    if length is not None and x[0] not in (None, length):
        raise Mismatch((length,) + tuple(x[1:]), x,
                       f"a sequence of seq_len={length} steps (axis 0)")
    x = x if length is None else (length,) + tuple(x[1:])
    if x[0] is not None and not 0 <= a["index"] < x[0]:
        raise Mismatch(a["index"], x, f"step {a['index']} of a sequence")
    out = unify(out, x[1:])
    return [unify(x, (x[0],) + out)], out


def _take_vjp(b, nid, node, g):
    size = b.shape_of(node.inputs[0])[0]
    return [b.add("put", [g], _name(nid, 0), index=node.attr("index"), size=size)]


register("take", shape=_take_rule, impl=_lib("take"), vjp=_take_vjp)


def _put_vjp(b, nid, node, g):
    return [b.add("take", [g], _name(nid, 0), index=node.attr("index"))]


register(
    "put", shape=forward_rule(lambda a, x: (a["size"],) + x), impl=_lib("put"), vjp=_put_vjp,
)


def _stack_rule(a, ins, out):
    s = None if out is None else out[1:]
    for x in ins:
        s = unify(s, x)
    out = unify(out, None if s is None else (len(ins),) + s)
    return [s] * len(ins), out


def _stack_vjp(b, nid, node, g):
    return [b.add("take", [g], _name(nid, i), index=i) for i in range(len(node.inputs))]


register("stack", shape=_stack_rule, impl=_lib("stack"), vjp=_stack_vjp)


# ---- reductions and broadcasts ----------------------------------------------------------------

def _sum_shape(a, x):
    axes = reduced_axes(a, len(x))
    if any(not 0 <= d < len(x) for d in axes):
        raise Mismatch(a.get("axis"), x, "reduction axis")
    if a.get("keepdims"):
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _spread(b, nid, node, g, scale):
    """The gradient of a sum or mean: g reshaped to keepdims form, broadcast, scaled."""
    x = b.shape_of(node.inputs[0])
    kept = tuple(1 if i in reduced_axes(node.attr_dict, len(x)) else d for i, d in enumerate(x))
    g = b.add("reshape", [g], _name(nid, "keep"), shape=kept)
    g = b.add("broadcast_to", [g], _name(nid, "spread"), shape=x)
    if scale != 1:
        g = b.add("mul_scalar", [g], _name(nid, "scale"), scalar=scale)
    return g


def _mean_scale(node, x):
    return 1.0 / math.prod(x[d] for d in reduced_axes(node.attr_dict, len(x)))


register("sum", shape=forward_rule(_sum_shape), impl=_lib("sum"),
         vjp=lambda b, nid, node, g: [_spread(b, nid, node, g, 1)])
register(
    "mean", shape=forward_rule(_sum_shape),
    impl=_lib("mean"),
    vjp=lambda b, nid, node, g: [
        _spread(b, nid, node, g, _mean_scale(node, b.shape_of(node.inputs[0])))],
)


def _broadcast_shape(a, x):
    target = tuple(a["shape"])
    lead = len(target) - len(x)
    if lead < 0 or any(d not in (1, t) for d, t in zip(x, target[lead:])):
        raise Mismatch(target, x, "broadcast")
    return target


def _broadcast_vjp(b, nid, node, g):
    """Sums over the prepended axes, then (keeping them) over the stretched ones."""
    x = b.shape_of(node.inputs[0])
    lead = len(node.shape) - len(x)
    if lead:
        g = b.add("sum", [g], _name(nid, "lead"), axis=tuple(range(lead)))
    axes = tuple(i for i, (d, t) in enumerate(zip(x, node.shape[lead:])) if d != t)
    if axes:
        g = b.add("sum", [g], _name(nid, 0), axis=axes, keepdims=True)
    return [g]


register(
    "broadcast_to", shape=forward_rule(_broadcast_shape), vjp=_broadcast_vjp,
    impl=_lib("broadcast_to"),
)
