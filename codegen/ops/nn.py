"""Products, embeddings and losses: the ops that are not elementwise.

`dot` flattens leading axes into rows: `a` of shape (..., K) is the matrix
(prod(...), K). With `transpose_a`, `a` and `b` must share their leading axes, which is how a
weight gradient sums over every time step and batch row in one product.
"""
from __future__ import annotations

import math

import numpy as np

from codegen.ops import Mismatch, forward_rule, no_grad, register, unify
from runtime.errors import BindError


def _name(nid, tag):
    return f"d({nid}).{tag}"


def _rows(x):
    return x.reshape(-1, x.shape[-1])


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


def _dot_impl(ctx, a, x, y):
    ta, tb = a.get("transpose_a", False), a.get("transpose_b", False)
    if ta:
        xm = _rows(x).T
        ym = y.T if tb else _rows(y)
        return xm @ ym
    out = _rows(x) @ (y.T if tb else y)
    return out.reshape(x.shape[:-1] + (out.shape[-1],))


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


register("dot", shape=forward_rule(_dot_shape), impl=_dot_impl, vjp=_dot_vjp)


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


def _fc_impl(ctx, a, x, w, bias=None):
    y = _rows(x) @ w.T
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (w.shape[0],))


def _fc_vjp(b, nid, node, g):
    x, w = node.inputs[:2]
    grads = [b.add("dot", [g, w], _name(nid, 0)),
             b.add("dot", [g, x], _name(nid, 1), transpose_a=True)]
    if len(node.inputs) == 3:
        rank = len(node.shape)
        grads.append(b.add("sum", [g], _name(nid, 2), axis=tuple(range(rank - 1))))
    return grads


register("FullyConnected", shape=_fc_rule, impl=_fc_impl, vjp=_fc_vjp)


# ---- softmax and the cross-entropy loss ---------------------------------------------------------

def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_vjp(b, nid, node, g):
    ax = node.attr("axis", -1)
    gy = b.add("mul", [g, nid], _name(nid, "gy"))
    s = b.add("sum", [gy], _name(nid, "sum"), axis=ax, keepdims=True)
    s = b.add("broadcast_to", [s], _name(nid, "spread"), shape=node.shape)
    return [b.add("mul", [nid, b.add("sub", [g, s], _name(nid, "g-s"))], _name(nid, 0))]


register(
    "softmax", shape=forward_rule(lambda a, x: x), vjp=_softmax_vjp,
    impl=lambda ctx, a, x: _softmax(x, a.get("axis", -1)),
)


def _one_hot_impl(ctx, a, label):
    idx = _indices(label, a["depth"], "one_hot")
    return np.eye(a["depth"], dtype=a.get("dtype", "float32"))[idx]


register(
    "one_hot", shape=forward_rule(lambda a, x: x + (a["depth"],)), impl=_one_hot_impl,
    vjp=no_grad, differentiable=False,
)


def _sce_rule(a, ins, out):
    logits, label = ins
    if logits is not None:
        label = unify(label, logits[:-1])
    return [logits, label], unify(out, ())


def _sce_impl(ctx, a, logits, label):
    idx = _indices(label, logits.shape[-1], "softmax_cross_entropy label")
    rows = _rows(logits)
    shifted = rows - rows.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -logp[np.arange(rows.shape[0]), idx.reshape(-1)].sum()


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


register("softmax_cross_entropy", shape=_sce_rule, impl=_sce_impl, vjp=_sce_vjp)


# ---- Embedding ------------------------------------------------------------------------------------

def _indices(x, size, what):
    idx = np.asarray(x).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= size or not np.array_equal(idx, x)):
        bad = x.reshape(-1)[np.argmax((idx.reshape(-1) < 0) | (idx.reshape(-1) >= size)
                                      | (idx.reshape(-1) != x.reshape(-1)))]
        raise BindError(f"{what}: index {bad} is not an integer in [0, {size})")
    return idx


def _embedding_rule(a, ins, out):
    data, w = ins
    w = unify(w, (a["input_dim"], a["output_dim"]))
    if data is not None:
        out = unify(out, tuple(data) + (a["output_dim"],))
    if out is not None:
        data = unify(data, out[:-1])
    return [data, w], out


def _embedding_impl(ctx, a, data, w):
    return w[_indices(data, a["input_dim"], "Embedding data")]


def _embedding_vjp(b, nid, node, g):
    data = node.inputs[0]
    return [None, b.add("embedding_grad", [data, g], _name(nid, 1),
                        input_dim=node.attr("input_dim"))]


register("Embedding", shape=_embedding_rule, impl=_embedding_impl, vjp=_embedding_vjp,
         dtype_input=1)


def _embedding_grad_impl(ctx, a, data, g):
    out = np.zeros((a["input_dim"], g.shape[-1]), g.dtype)
    np.add.at(out, _indices(data, a["input_dim"], "Embedding data").reshape(-1), _rows(g))
    return out


def _embedding_grad_vjp(b, nid, node, g):
    data = node.inputs[0]
    dim = b.shape_of(nid)[-1]
    return [None, b.add("Embedding", [data, g], _name(nid, 1),
                        input_dim=node.attr("input_dim"), output_dim=dim)]


register(
    "embedding_grad", impl=_embedding_grad_impl, vjp=_embedding_grad_vjp,
    shape=forward_rule(lambda a, data, g: (a["input_dim"], g[-1])), dtype_input=1,
)

__all__ = ["math"]
