"""Op functions on symbols, named after MXNet's where one exists.

Each function validates its arguments and adds one node (or, for FullyConnected and
Embedding, creates the weight variables it was not given, named `{name}_weight` and
`{name}_bias` as MXNet does).
"""
from __future__ import annotations

import zlib

import numpy as np

from runtime.errors import ConfigError
from symrnn.scalars import as_int, as_real
from symrnn.symbol import NameManager, Symbol, Variable, _op, checked_dtype


def param_variable(name: str, shape=None) -> Symbol:
    """A parameter argument: a Variable marked `kind="param"`, what `init_params` fills."""
    return Variable(name, shape=shape, kind="param")


def as_param(given: Symbol) -> Symbol:
    """`given`, a weight handed to a layer; a bare Variable of no kind becomes a declared
    parameter (marked `kind="param"` in place), so that `init_params` fills it."""
    for n, _ in given._outputs:
        if n.op == "var":
            n.attrs.setdefault("kind", "param")
    return given


STEP_IDS = 1 << 24  # the per-step streams of one role: ids base .. base + STEP_IDS - 1


def mask_id(name: str) -> int:
    """A mask's RNG stream id: a hash of its name, so fused and unrolled graphs agree."""
    return zlib.crc32(name.encode())


def step_mask_id(role: str, t: int) -> int:
    """The stream id of step `t`'s mask of a per-step role (a cell's dropout or zoneout of
    one state, named without the step): a base hashed from `role`, below 2**32 - STEP_IDS,
    plus `t`. Affine in the step, so that the kernel of every step launches with an id one
    on from the step before (codegen.roll writes that as a stride, and codegen.extrapolate
    extends it to any length); two roles share a stream only where their bases lie within
    T of each other (hashing every step's name, as before, made collisions within one long
    sequence likely: 32-bit ids for R * T masks).

    >>> step_mask_id("lstm_l0_zoneout_h", 5) - step_mask_id("lstm_l0_zoneout_h", 0)
    5
    """
    return (zlib.crc32(role.encode()) % ((1 << 32) - STEP_IDS) + t) & 0xFFFFFFFF


def check_rate(where: str, arg: str, p) -> float:
    """`p` as a float in [0, 1) (Python or numpy scalar), or a ConfigError naming `arg`."""
    rate = as_real(p)
    if rate is None or not 0 <= rate < 1:
        raise ConfigError(f"{where}: '{arg}' must be a rate in [0, 1), given {p!r}")
    return rate


def check_size(where: str, arg: str, n) -> int:
    """`n` as a positive Python int (numpy integers too), or a ConfigError naming `arg`."""
    size = as_int(n)
    if size is None or size <= 0:
        raise ConfigError(f"{where}: '{arg}' must be a positive int, given {n!r}")
    return size


def check_int(where: str, arg: str, n) -> int:
    """`n` as a Python int of any sign (an axis, an index), or a ConfigError naming `arg`."""
    value = as_int(n)
    if value is None:
        raise ConfigError(f"{where}: '{arg}' must be an int, given {n!r}")
    return value


def check_axes(where: str, arg: str, axis):
    """None, an int or a tuple of ints, with numpy integers made Python ints."""
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        return tuple(check_int(where, f"{arg}[{i}]", a) for i, a in enumerate(axis))
    return check_int(where, arg, axis)


def check_shape(where: str, arg: str, shape) -> tuple:
    """A tuple (or list) of ints, as a tuple of Python ints."""
    if not isinstance(shape, (tuple, list)):
        raise ConfigError(f"{where}: '{arg}' must be a tuple of ints, given {shape!r}")
    return tuple(check_int(where, f"{arg}[{i}]", d) for i, d in enumerate(shape))


def _check_flag(where: str, arg: str, flag) -> bool:
    if not isinstance(flag, (bool, np.bool_)) and as_int(flag) not in (0, 1):
        raise ConfigError(f"{where}: '{arg}' must be True or False, given {flag!r}")
    return bool(flag)


def FullyConnected(data: Symbol, weight: Symbol | None = None, bias: Symbol | None = None,
                   num_hidden: int = 0, no_bias: bool = False, name: str | None = None):
    """`data @ weight.T + bias` over the last axis; weight `(num_hidden, in)`."""
    num_hidden = check_size("FullyConnected", "num_hidden", num_hidden)
    name = NameManager.get(name, "fullyconnected")
    weight = as_param(weight) if weight is not None else param_variable(f"{name}_weight")
    inputs = [data, weight]
    if not no_bias:
        inputs.append(as_param(bias) if bias is not None else param_variable(f"{name}_bias"))
    return _op("FullyConnected", inputs, name, num_hidden=num_hidden)


def elemwise_add(lhs: Symbol, rhs: Symbol, name: str | None = None) -> Symbol:
    """`lhs + rhs` with a chosen name (operators name nodes from a counter)."""
    return _op("add", [lhs, rhs], name)


def elemwise_mul(lhs: Symbol, rhs: Symbol, name: str | None = None) -> Symbol:
    return _op("mul", [lhs, rhs], name)


def elemwise_sub(lhs: Symbol, rhs: Symbol, name: str | None = None) -> Symbol:
    return _op("sub", [lhs, rhs], name)


def dot(lhs: Symbol, rhs: Symbol, transpose_a: bool = False, transpose_b: bool = False,
        name: str | None = None) -> Symbol:
    """Matrix product; leading axes of `lhs` are flattened into rows."""
    return _op("dot", [lhs, rhs], name,
               transpose_a=_check_flag("dot", "transpose_a", transpose_a),
               transpose_b=_check_flag("dot", "transpose_b", transpose_b))


def _unary(op):
    def f(data: Symbol, name: str | None = None) -> Symbol:
        return _op(op, [data], name)
    f.__name__ = op
    f.__doc__ = f"Elementwise {op}."
    return f


sigmoid = _unary("sigmoid")
tanh = _unary("tanh")
relu = _unary("relu")
exp = _unary("exp")
log = _unary("log")
negative = _unary("neg")


def Activation(data: Symbol, act_type: str, name: str | None = None) -> Symbol:
    if not isinstance(act_type, str) or act_type not in ("sigmoid", "tanh", "relu"):
        raise ConfigError(f"Activation: 'act_type' must be 'sigmoid', 'tanh' or 'relu', "
                          f"given {act_type!r}")
    return _op(act_type, [data], name)


def SliceChannel(data: Symbol, num_outputs: int, axis: int = 1, squeeze_axis: bool = False,
                 name: str | None = None) -> Symbol:
    """Splits `data` into `num_outputs` equal parts along `axis`; index the result."""
    num_outputs = check_size("SliceChannel", "num_outputs", num_outputs)
    return _op("split", [data], name, num_outputs=num_outputs,
               axis=check_int("SliceChannel", "axis", axis),
               squeeze_axis=_check_flag("SliceChannel", "squeeze_axis", squeeze_axis))


split = SliceChannel


def slice_axis(data: Symbol, axis: int, begin: int, end: int, name: str | None = None):
    ints = {k: check_int("slice_axis", k, v) for k, v in
            (("axis", axis), ("begin", begin), ("end", end))}
    return _op("slice", [data], name, **ints)


def concat(*data: Symbol, dim: int = 1, name: str | None = None) -> Symbol:
    if not data:
        raise ConfigError("concat: needs at least one input")
    return _op("concat", list(data), name, axis=check_int("concat", "dim", dim))


Concat = concat


def reshape(data: Symbol, shape, name: str | None = None) -> Symbol:
    """MXNet-style: 0 copies a source dimension, -1 takes what is left."""
    return _op("reshape", [data], name, shape=check_shape("reshape", "shape", shape))


def take_step(data: Symbol, index: int, name: str | None = None,
              length: int | None = None) -> Symbol:
    """Time step `index` of a `(T, ...)` sequence, shape `(...)`; with `length`, the
    sequence must have exactly `length` steps (T of any other size is a ShapeError)."""
    index = check_int("take_step", "index", index)
    if length is None:
        return _op("take", [data], name, index=index)
    return _op("take", [data], name, index=index, length=check_int("take_step", "length", length))


def stack_steps(steps, name: str | None = None) -> Symbol:
    """Stacks per-step symbols into one `(T, ...)` sequence."""
    return _op("stack", list(steps), name)


def sum(data: Symbol, axis=None, keepdims: bool = False, name: str | None = None):
    return _op("sum", [data], name, axis=check_axes("sum", "axis", axis),
               keepdims=_check_flag("sum", "keepdims", keepdims))


def mean(data: Symbol, axis=None, keepdims: bool = False, name: str | None = None):
    return _op("mean", [data], name, axis=check_axes("mean", "axis", axis),
               keepdims=_check_flag("mean", "keepdims", keepdims))


def broadcast_to(data: Symbol, shape, name: str | None = None) -> Symbol:
    return _op("broadcast_to", [data], name, shape=check_shape("broadcast_to", "shape", shape))


def Dropout(data: Symbol, p: float = 0.5, name: str | None = None,
            mask: str | None = None) -> Symbol:
    """Inverted dropout in training, identity at inference. Ops that share `mask` (a name)
    share one mask, as in variational dropout; by default the mask is the op's own."""
    p = check_rate("Dropout", "p", p)
    name = NameManager.get(name, "dropout")
    return _op("dropout", [data], name, p=p,
               mask_id=mask_id(_mask_name("Dropout", mask, name)))


def zoneout(prev: Symbol, new: Symbol, p: float, name: str | None = None,
            mask: str | None = None) -> Symbol:
    """`m * prev + (1 - m) * new`, `m` ~ Bernoulli(p) in training; `p` itself at inference."""
    p = check_rate("zoneout", "p", p)
    name = NameManager.get(name, "zoneout")
    return _op("zoneout", [prev, new], name, p=p,
               mask_id=mask_id(_mask_name("zoneout", mask, name)))


def step_dropout(data: Symbol, p: float, name: str, role: str, t: int) -> Symbol:
    """A cell's dropout at step `t`, its mask the stream `step_mask_id(role, t)`."""
    return _op("dropout", [data], name, p=check_rate("Dropout", "p", p),
               mask_id=step_mask_id(role, t))


def step_zoneout(prev: Symbol, new: Symbol, p: float, name: str, role: str, t: int):
    """A cell's zoneout at step `t`, its mask the stream `step_mask_id(role, t)`."""
    return _op("zoneout", [prev, new], name, p=check_rate("zoneout", "p", p),
               mask_id=step_mask_id(role, t))


def _mask_name(where: str, mask, name: str) -> str:
    if mask is not None and (not isinstance(mask, str) or not mask):
        raise ConfigError(f"{where}: 'mask' must be a name (a non-empty string), given {mask!r}")
    return mask or name


def softmax(data: Symbol, axis: int = -1, name: str | None = None) -> Symbol:
    return _op("softmax", [data], name, axis=check_int("softmax", "axis", axis))


def softmax_cross_entropy(data: Symbol, label: Symbol, name: str | None = None) -> Symbol:
    """Sum over rows of `-log softmax(data)[label]`; a scalar."""
    return _op("softmax_cross_entropy", [data, label], name)


def one_hot(indices: Symbol, depth: int, dtype: str = "float32", name: str | None = None):
    depth = check_size("one_hot", "depth", depth)
    dtype = checked_dtype("one_hot", dtype)
    return _op("one_hot", [indices], name, depth=depth, dtype=dtype)


def Embedding(data: Symbol, weight: Symbol | None = None, input_dim: int = 0,
              output_dim: int = 0, name: str | None = None) -> Symbol:
    """Rows of `weight` `(input_dim, output_dim)` picked by the integer `data`."""
    input_dim = check_size("Embedding", "input_dim", input_dim)
    output_dim = check_size("Embedding", "output_dim", output_dim)
    name = NameManager.get(name, "embedding")
    weight = as_param(weight) if weight is not None else param_variable(f"{name}_weight")
    return _op("Embedding", [data, weight], name, input_dim=input_dim, output_dim=output_dim)


__all__ = [
    "Activation",
    "Concat",
    "Dropout",
    "Embedding",
    "FullyConnected",
    "SliceChannel",
    "broadcast_to",
    "check_rate",
    "check_size",
    "concat",
    "dot",
    "elemwise_add",
    "elemwise_mul",
    "elemwise_sub",
    "exp",
    "log",
    "mask_id",
    "mean",
    "negative",
    "one_hot",
    "relu",
    "reshape",
    "sigmoid",
    "slice_axis",
    "softmax",
    "softmax_cross_entropy",
    "split",
    "stack_steps",
    "sum",
    "take_step",
    "tanh",
    "zoneout",
]
