"""Layer normalization of the gated cells (Ba et al., 2016), as `torch.nn.LayerNorm`.

With `layer_norm=True` a cell normalizes its input projection `W x` and its recurrent
projection `U h` separately, each over all its `G*H` gate columns (biased variance,
`eps = 1e-5`), scales and shifts each with its own gain and bias, and only then adds the
cell's `i2h_bias` and `h2h_bias`: `gates = LN_i(W x) + b_W + LN_h(U h) + b_U`. The LSTM also
normalizes its cell state before the tanh of the output: `h = o * tanh(LN_c(c))`, while `c`
itself (what is carried, clipped and returned) is not normalized, as in Ba et al.'s eq. 20.

Parameters (`{prefix}` is `{name}_l{l}_`, or `{name}_r{l}_` for a reverse direction):
`{prefix}i2h_gamma`, `{prefix}i2h_beta`, `{prefix}h2h_gamma`, `{prefix}h2h_beta` `(G*H,)`
(the gate order of the weights), and for the LSTM `{prefix}c_gamma`, `{prefix}c_beta` `(H,)`.
`init_params` fills gains with 1 and biases with 0 (the `_gamma` and `_beta` suffixes).

The normalization is written with elementwise ops and `row_sum` over the gates' slices
(`codegen/ops/rows.py`), so the statistics of a `4H` row are sums over the four `H`-wide
gate slices, and the whole step, reductions included, fuses into the step kernel.
"""
from __future__ import annotations

import numpy as np

from runtime.errors import ConfigError
from symrnn.ops import FullyConnected, split
from symrnn.symbol import Symbol, _op

EPS = 1e-5


def check_layer_norm(where: str, value) -> bool:
    """`value` as a bool (True, False or a numpy bool), or a ConfigError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{where}: 'layer_norm' must be True or False, given {value!r}")
    return bool(value)


def _slices(v: Symbol, parts: int, name: str, axis: int = 0) -> list[Symbol]:
    if parts == 1:
        return [v]
    pieces = split(v, num_outputs=parts, axis=axis, name=name)
    return [pieces[k] for k in range(parts)]


def _sum(values: list[Symbol], name: str) -> Symbol:
    total = values[0]
    for k, v in enumerate(values[1:]):
        total = _op("add", [total, v], f"{name}{k}")
    return total


def spread(v: Symbol, like: Symbol, parts: int, name: str) -> list[Symbol]:
    """The vector `v` repeated over the rows of `like` (the whole projection), cut into its
    `parts` gate slices: slices of one broadcast (not broadcasts of slices), so that the
    gradient of `v` is one sum over the rows of every step (codegen's batch_gemms)."""
    return _slices(_op("broadcast_rows", [v, like], name), parts, name + "_slice", axis=1)


def layer_norm(parts: list[Symbol], width: int, gains: list[Symbol], shifts: list[Symbol],
               name: str) -> list[Symbol]:
    """`torch.nn.LayerNorm` over the features of `parts` side by side (each `(N, w)`, the
    row `width` in all), with the gain and bias slices `gains`, `shifts` (each `(N, w)`):
    the normalized parts."""
    total = _op("row_sum", [_sum(parts, name + "_sum")], name + "_row_sum")
    mean = _op("mul_scalar", [total], name + "_mean", scalar=1.0 / width)
    centered = [_op("sub", [p, mean], f"{name}_d{k}") for k, p in enumerate(parts)]
    squares = [_op("mul", [d, d], f"{name}_d{k}_sq") for k, d in enumerate(centered)]
    var = _op("mul_scalar", [_op("row_sum", [_sum(squares, name + "_sq_sum")],
                                 name + "_sq_row_sum")], name + "_var", scalar=1.0 / width)
    inv = _op("rsqrt", [_op("add_scalar", [var], name + "_var_eps", scalar=EPS)],
              name + "_inv_std")
    out = []
    for k, d in enumerate(centered):
        unit = _op("mul", [d, inv], f"{name}_xhat{k}")
        scaled = _op("mul", [unit, gains[k]], f"{name}_scaled{k}")
        out.append(_op("add", [scaled, shifts[k]], f"{name}_out{k}"))
    return out


def normalized_projections(cell, x: Symbol, h: Symbol, t: int):
    """The gate inputs of `cell` (a layer-normalized _GatedCell) at step `t`: lists of its
    `G` slices `(N, H)` of `LN_i(W x) + b_W` and of `LN_h(U h) + b_U`."""
    p = f"{cell.prefix}t{t}_"
    gates, hidden, w = cell.num_gates, cell.num_hidden, cell.params
    size = gates * hidden
    i2h = FullyConnected(x, w["i2h_weight"], None, size, no_bias=True, name=p + "i2h")
    h2h = FullyConnected(h, cell._recurrent_weight(), None, size, no_bias=True,
                         name=p + "h2h")
    out = []
    for side, product in (("i2h", i2h), ("h2h", h2h)):
        parts = _slices(product, gates, f"{p}{side}_slice", axis=1)
        gains, shifts, biases = (spread(w[f"{side}_{k}"], product, gates, f"{p}{side}_{k}")
                                 for k in ("gamma", "beta", "bias"))
        normed = layer_norm(parts, size, gains, shifts, p + side + "_ln")
        out.append([_op("add", [n, b], f"{p}{side}_in{k}")
                    for k, (n, b) in enumerate(zip(normed, biases))])
    return out


def normalized_cell(cell, c: Symbol, t: int) -> Symbol:
    """`LN_c(c)`: an LSTM's cell state normalized before its tanh."""
    p = f"{cell.prefix}t{t}_"
    w = cell.params
    gain, shift = (spread(w[f"c_{k}"], c, 1, f"{p}c_{k}") for k in ("gamma", "beta"))
    return layer_norm([c], cell.num_hidden, gain, shift, p + "c_ln")[0]


__all__ = ["EPS", "check_layer_norm", "layer_norm", "normalized_cell",
           "normalized_projections"]
