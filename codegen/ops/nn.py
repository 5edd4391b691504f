"""Products, embeddings and losses: the ops that are not elementwise.

`dot` flattens leading axes into rows: `a` of shape (..., K) is the matrix
(prod(...), K). With `transpose_a`, `a` and `b` must share their leading axes, which is how a
weight gradient sums over every time step and batch row in one product.
"""
from __future__ import annotations

from codegen.ops import Mismatch, forward_rule, no_grad, register, unify
from runtime.library import LIBOPS


def _name(nid, tag):
    return f"d({nid}).{tag}"


def _lib(name):
    """The op's numpy implementation, which lives in runtime.library."""
    fn = LIBOPS[name]
    return lambda ctx, attrs, *xs: fn(attrs, *xs)


# ---- dot --------------------------------------------------------------------------------------

def _dot_shape(a, x, y):
    ta, tb = a.get("transpose_a", False), a.get("transpose_b", False)
    if ta and (x[:-1] != y[:-1] if not tb else (len(x), len(y)) != (2, 2)):
        raise Mismatch(x, y, "dot with transpose_a: leading axes")
    if not ta:
        if len(y) != 2:
            raise Mismatch((None, None), y, "dot: right operand rank")
        k, n = (y[1], y[0]) if tb else (y[0], y[1])
        if x[-1] != k:
            raise Mismatch(x[:-1] + (k,), x, "dot: inner dimensions")
        return x[:-1] + (n,)
    if tb:
        if x[0] != y[1]:
            raise Mismatch((y[1], x[1]), x, "dot: inner dimensions")
        return (x[1], y[0])
    return (x[-1], y[-1])


def _dot_vjp(b, nid, node, g):
    x, y = node.inputs
    ta, tb = node.attr("transpose_a", False), node.attr("transpose_b", False)
    if not ta and not tb:
        parts = [(g, y, {"transpose_b": True}), (x, g, {"transpose_a": True})]
    elif not ta:
        parts = [(g, y, {}), (g, x, {"transpose_a": True})]
    elif not tb:
        parts = [(y, g, {"transpose_b": True}), (x, g, {})]
    else:
        both = {"transpose_a": True, "transpose_b": True}
        parts = [(y, g, both), (g, x, both)]
    return [b.add("dot", [p, q], _name(nid, i), **t) for i, (p, q, t) in enumerate(parts)]


register("dot", shape=forward_rule(_dot_shape), impl=_lib("dot"), vjp=_dot_vjp)


def _transpose_shape(a, x):
    if len(x) != 2:
        raise Mismatch((None, None), x, "transpose of a matrix")
    return (x[1], x[0])


register("transpose", shape=forward_rule(_transpose_shape), impl=_lib("transpose"),
         vjp=lambda b, nid, node, g: [b.add("transpose", [g], _name(nid, 0))])


# ---- FullyConnected: y = x W^T + b over the last axis --------------------------------------

def _fc_rule(a, ins, out):
    x, w = ins[0], ins[1]
    h = a["num_hidden"]
    w = unify(w, (h, None if x is None else x[-1]))
    if out is not None:
        x = unify(x, out[:-1] + (w[1],))
    if x is not None:
        out = unify(out, x[:-1] + (h,))
        w = unify(w, (h, x[-1]))
    if len(ins) == 3:
        return [x, w, unify(ins[2], (h,))], out
    return [x, w], out


def _fc_vjp(b, nid, node, g):
    x, w = node.inputs[:2]
    grads = [b.add("dot", [g, w], _name(nid, 0)),
             b.add("dot", [g, x], _name(nid, 1), transpose_a=True)]
    if len(node.inputs) == 3:
        rank = len(node.shape)
        grads.append(b.add("sum", [g], _name(nid, 2), axis=tuple(range(rank - 1))))
    return grads


register("FullyConnected", shape=_fc_rule, impl=_lib("FullyConnected"), vjp=_fc_vjp)


# ---- softmax and the cross-entropy loss ---------------------------------------------------------

def _softmax_vjp(b, nid, node, g):
    ax = node.attr("axis", -1)
    gy = b.add("mul", [g, nid], _name(nid, "gy"))
    s = b.add("sum", [gy], _name(nid, "sum"), axis=ax, keepdims=True)
    s = b.add("broadcast_to", [s], _name(nid, "spread"), shape=node.shape)
    return [b.add("mul", [nid, b.add("sub", [g, s], _name(nid, "g-s"))], _name(nid, 0))]


register(
    "softmax", shape=forward_rule(lambda a, x: x), vjp=_softmax_vjp,
    impl=_lib("softmax"),
)


register(
    "one_hot", shape=forward_rule(lambda a, x: x + (a["depth"],)), impl=_lib("one_hot"),
    vjp=no_grad, differentiable=False,
)


def _sce_rule(a, ins, out):
    logits, label = ins
    if logits is not None:
        label = unify(label, logits[:-1])
    return [logits, label], unify(out, ())


def _sce_vjp(b, nid, node, g):
    logits, label = node.inputs
    shape = b.shape_of(logits)
    p = b.add("softmax", [logits], _name(nid, "p"), axis=-1)
    onehot = b.add("one_hot", [label], _name(nid, "onehot"), depth=shape[-1],
                   dtype=b.dtype_of(logits))
    diff = b.add("sub", [p, onehot], _name(nid, "p-y"))
    g = b.add("reshape", [g], _name(nid, "g1"), shape=(1,) * len(shape))
    g = b.add("broadcast_to", [g], _name(nid, "gs"), shape=shape)
    return [b.add("mul", [diff, g], _name(nid, 0)), None]


register("softmax_cross_entropy", shape=_sce_rule, impl=_lib("softmax_cross_entropy"),
         vjp=_sce_vjp)


# ---- Embedding ----------------------------------------------------------------------------------

def _embedding_rule(a, ins, out):
    data, w = ins
    w = unify(w, (a["input_dim"], a["output_dim"]))
    if data is not None:
        out = unify(out, tuple(data) + (a["output_dim"],))
    if out is not None:
        data = unify(data, out[:-1])
    return [data, w], out


def _embedding_vjp(b, nid, node, g):
    data = node.inputs[0]
    return [None, b.add("embedding_grad", [data, g], _name(nid, 1),
                        input_dim=node.attr("input_dim"))]


register("Embedding", shape=_embedding_rule, impl=_lib("Embedding"), vjp=_embedding_vjp,
         dtype_input=1)


def _embedding_grad_vjp(b, nid, node, g):
    data = node.inputs[0]
    dim = b.shape_of(nid)[-1]
    return [None, b.add("Embedding", [data, g], _name(nid, 1),
                        input_dim=node.attr("input_dim"), output_dim=dim)]


register(
    "embedding_grad", impl=_lib("embedding_grad"), vjp=_embedding_grad_vjp,
    shape=forward_rule(lambda a, data, g: (a["input_dim"], g[-1])), dtype_input=1,
)
