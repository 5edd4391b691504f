"""Library ops: numpy implementations of the ops that are not elementwise.

`LIBOPS[name](attrs, *inputs) -> array` is the one definition of each op's numbers: the op
table's `impl` entries (codegen.ops) call it, and the CPU engine runs the Program's `op` steps
(losses, embeddings, reductions, copies) with it, outside the time loop. The attributes are
those of the graph node, for example

    >>> LIBOPS["sum"]({"axis": 0}, np.ones((2, 3)))
    array([2., 2., 2.])

Results may be views of an input (reshape, slice, take); callers copy them where they store
them. Indices (labels, embedding rows) that are not integers in range raise `BindError`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from runtime.errors import BindError

LIBOPS: dict[str, Callable[..., np.ndarray]] = {}


def libop(name: str):
    def register(fn):
        LIBOPS[name] = fn
        return fn
    return register


# ---- helpers the op table's shape and gradient rules share --------------------------------

def axis_of(attrs: dict, rank: int) -> int:
    """`attrs["axis"]`, a negative axis counted from the end."""
    ax = attrs["axis"]
    return ax + rank if ax < 0 else ax


def reduced_axes(attrs: dict, rank: int) -> tuple:
    """The axes a sum or mean reduces: `attrs["axis"]` (int, tuple or None: all), sorted."""
    ax = attrs.get("axis")
    if ax is None:
        return tuple(range(rank))
    ax = (ax,) if isinstance(ax, int) else ax
    return tuple(sorted(d + rank if d < 0 else d for d in ax))


def split_span(attrs: dict, shape: tuple) -> tuple:
    """(axis, begin, end) of part `index` of a split into `num_outputs` equal parts."""
    ax = axis_of(attrs, len(shape))
    part = shape[ax] // attrs["num_outputs"]
    return ax, attrs["index"] * part, (attrs["index"] + 1) * part


def reshape_spec(src: tuple, spec: tuple) -> tuple:
    """An MXNet reshape target with each 0 replaced by the source dimension (-1 stays)."""
    return tuple(src[i] if d == 0 else d for i, d in enumerate(spec))


def rows(x: np.ndarray) -> np.ndarray:
    """`x` of shape (..., K) as the matrix (prod(...), K)."""
    return x.reshape(-1, x.shape[-1])


def indices(x: np.ndarray, size: int, what: str) -> np.ndarray:
    """`x` as int64 indices in [0, size), or a BindError naming the first bad one."""
    idx = np.asarray(x).astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= size or not np.array_equal(idx, x)):
        flat, given = idx.reshape(-1), np.asarray(x).reshape(-1)
        bad = given[np.argmax((flat < 0) | (flat >= size) | (flat != given))]
        raise BindError(f"{what}: index {bad} is not an integer in [0, {size})")
    return idx


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _along(x: np.ndarray, ax: int, index) -> tuple:
    where = [slice(None)] * x.ndim
    where[ax] = index
    return tuple(where)


# ---- data movement ------------------------------------------------------------------------

@libop("zeros")
def _zeros(a):
    return np.zeros(a["shape"], a.get("dtype", "float32"))


@libop("reshape")
def _reshape(a, x):
    return x.reshape(reshape_spec(x.shape, tuple(a["shape"])))


@libop("slice")
def _slice(a, x):
    return x[_along(x, axis_of(a, x.ndim), slice(a["begin"], a["end"]))]


@libop("split")
def _split(a, x):
    ax, begin, end = split_span(a, x.shape)
    return x[_along(x, ax, begin if a.get("squeeze_axis") else slice(begin, end))]


@libop("pad")
def _pad(a, x):
    ax = axis_of(a, x.ndim)
    y = np.zeros(x.shape[:ax] + (a["size"],) + x.shape[ax + 1:], x.dtype)
    y[_along(x, ax, slice(a["begin"], a["end"]))] = x
    return y


@libop("concat")
def _concat(a, *xs):
    return np.concatenate(xs, axis=a["axis"])


@libop("length_rows")
def _length_rows(a, lengths, like):
    """The int lengths `(N,)` as a block of `like`'s shape and dtype, row n all lengths[n];
    a BindError names the first sample whose length is outside [0, steps]."""
    given = np.asarray(lengths)
    bad = np.flatnonzero((given < 0) | (given > a["steps"]))
    if bad.size:
        n = int(bad[0])
        raise BindError(f"forward: sequence_length[{n}] is {int(given[n])}, expected a length "
                        f"in [0, {a['steps']}] (the number of steps)")
    return np.broadcast_to(given.astype(like.dtype)[:, None], like.shape).copy()


@libop("take")
def _take(a, x):
    return x[a["index"]]


@libop("put")
def _put(a, x):
    y = np.zeros((a["size"],) + x.shape, x.dtype)
    y[a["index"]] = x
    return y


@libop("stack")
def _stack(a, *xs):
    return np.stack(xs)


@libop("broadcast_to")
def _broadcast_to(a, x):
    return np.broadcast_to(x, tuple(a["shape"])).copy()


@libop("broadcast_rows")
def _broadcast_rows(a, v, like):
    """`v` (F,) repeated over the rows of `like` (..., F): a layer norm's gain or bias."""
    return np.broadcast_to(v, like.shape).copy()


@libop("row_sum")
def _row_sum(a, x):
    """Each row's sum, repeated along the row (what a kernel's Reduce computes)."""
    return np.broadcast_to(x.sum(axis=-1, keepdims=True), x.shape).copy()


# ---- reductions -----------------------------------------------------------------------------

@libop("sum")
def _sum(a, x):
    return np.sum(x, axis=reduced_axes(a, x.ndim), keepdims=bool(a.get("keepdims")))


@libop("mean")
def _mean(a, x):
    return np.mean(x, axis=reduced_axes(a, x.ndim), keepdims=bool(a.get("keepdims")))


# ---- products -------------------------------------------------------------------------------

@libop("transpose")
def _transpose(a, x):
    return np.ascontiguousarray(x.T)


@libop("dot")
def _dot(a, x, y):
    """Leading axes flatten into rows; with transpose_a they are summed over."""
    ta, tb = a.get("transpose_a", False), a.get("transpose_b", False)
    if ta:
        return rows(x).T @ (y.T if tb else rows(y))
    out = rows(x) @ (y.T if tb else y)
    return out.reshape(x.shape[:-1] + (out.shape[-1],))


@libop("FullyConnected")
def _fully_connected(a, x, w, bias=None):
    y = rows(x) @ w.T
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (w.shape[0],))


# ---- softmax, losses, embeddings ----------------------------------------------------------

@libop("softmax")
def _softmax(a, x):
    return softmax(x, a.get("axis", -1))


@libop("one_hot")
def _one_hot(a, label):
    idx = indices(label, a["depth"], "one_hot")
    return np.eye(a["depth"], dtype=a.get("dtype", "float32"))[idx]


@libop("softmax_cross_entropy")
def _softmax_cross_entropy(a, logits, label):
    """The summed negative log-likelihood of `label` under softmax(logits) (a scalar)."""
    idx = indices(label, logits.shape[-1], "softmax_cross_entropy label")
    x = rows(logits)
    shifted = x - x.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -logp[np.arange(x.shape[0]), idx.reshape(-1)].sum()


@libop("Embedding")
def _embedding(a, data, w):
    return w[indices(data, a["input_dim"], "Embedding data")]


@libop("embedding_grad")
def _embedding_grad(a, data, g):
    out = np.zeros((a["input_dim"], g.shape[-1]), g.dtype)
    np.add.at(out, indices(data, a["input_dim"], "Embedding data").reshape(-1), rows(g))
    return out
