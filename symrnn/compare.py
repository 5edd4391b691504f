"""Fused against unrolled (and the reference interpreter): one symbol, same weights, same
seed, one side-by-side table.

    >>> import symrnn as sym
    >>> rnn = sym.RNNFactory([8, 8], data_dim=4, zoneout=0.1)
    >>> out = rnn.step(sym.Variable("data"), seq_len=5, ret_typ="out")[-1]
    >>> result = sym.compare(out, data=(5, 3, 4))  # doctest: +SKIP

Both programs run `forward(is_train=True, seed)` then `backward` with the same head
gradients, so dropout and zoneout masks are drawn identically: the differences are those of
floating-point order, not of randomness.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from runtime.errors import ConfigError
from symrnn.model import init_params, state_args
from symrnn.scalars import as_int
from symrnn.symbol import Symbol

STAT_ROWS = [
    ("kernels", "kernels"),
    ("launches / forward", "launches_forward"),
    ("launches / backward", "launches_backward"),
    ("GEMMs / forward", "gemms_forward"),
    ("GEMMs / backward", "gemms_backward"),
    ("arena bytes", "arena_bytes"),
    ("unplanned bytes", "unplanned_bytes"),
]


def _values(ex, symbol: Symbol, shapes: dict, seed: int, given: dict) -> dict:
    """The arguments both programs run on: `given` ones, else parameters drawn as
    `init_params` draws them (large random weights saturate the gates and make a long
    sequence chaotic, so that rounding differences grow), inputs and states ~ U(-1, 1),
    integer arguments zero."""
    skip = set(shapes) | set(state_args(symbol)) | set(given)
    params = [n for n, a in ex.arg_dict.items() if n not in skip and a.dtype.kind == "f"]
    init_params(ex, names=params, seed=seed)
    rng = np.random.default_rng(seed + 1)
    vals = {}
    for name, arr in ex.arg_dict.items():
        if name in given:
            vals[name] = np.asarray(given[name])
        elif name in params:
            vals[name] = arr.copy()
        elif arr.dtype.kind == "f":
            vals[name] = rng.uniform(-1, 1, arr.shape).astype(arr.dtype)
        else:
            vals[name] = np.zeros(arr.shape, arr.dtype)
    return vals


def _head_grads(ex, seed: int) -> list:
    """Ones for scalar heads, random for the others: every output's gradient path runs."""
    rng = np.random.default_rng(seed + 2)
    return [np.ones(s, d) if int(np.prod(s)) == 1 else rng.standard_normal(s).astype(d)
            for _, s, d in ex.engine.out_specs]


def _run(ex, values: dict, head_grads, seed: int) -> dict:
    ex.copy_params_from(values)
    outs = [o.copy() for o in ex.forward(is_train=True, seed=seed)]
    ex.backward(head_grads)
    return {**{f"out {n}": o for n, o in zip(ex.output_names, outs)},
            **{f"grad {n}": g.copy() for n, g in ex.grad_dict.items()}}


def _best_ms(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _timings(ex, head_grads, seed: int, repeat: int) -> dict:
    def fwd():
        ex.forward(is_train=True, seed=seed)

    def fwd_bwd():
        fwd()
        ex.backward(head_grads)

    return {"forward_ms": _best_ms(fwd, repeat), "forward_backward_ms": _best_ms(fwd_bwd, repeat)}


def _max_diff(a: dict, b: dict) -> dict:
    return {k: float(np.max(np.abs(a[k].astype(np.float64) - b[k]), initial=0.0)) for k in a}


def compare(symbol: Symbol, backend: str = "cpu", seed: int = 0, repeat: int = 5,
            reference: bool = True, dtype: str | None = None, grad_req="write",
            inputs: dict | None = None, file=None, quiet: bool = False, **shapes) -> dict:
    """Binds `symbol` optimized ("fused") and with `optimize=False` ("unrolled"), and on
    `backend='reference'` when `reference`, runs forward(is_train=True, seed) and backward
    on each with the same arguments (drawn from `seed`, or `inputs`), prints one table to
    `file` (default stdout; nothing when `quiet`) and returns

    `{"columns": {name: {stats..., "forward_ms", "forward_backward_ms"}},
      "diffs": {name: {"out X" | "grad Y": max |x - fused|}}, "max_diff": float,
      "max_rel_diff": float (each difference over max(1, max |fused value|)), "table": str}`.

    Times are the best of `repeat` runs, in milliseconds.
    """
    if as_int(repeat) is None or repeat < 1:
        raise ConfigError(f"compare: 'repeat' must be a positive int, given {repeat!r}")
    binds = {"fused": (backend, True), "unrolled": (backend, False)}
    if reference and backend != "reference":
        binds["reference"] = ("reference", False)
    execs = {name: symbol.simple_bind(backend=be, grad_req=grad_req, optimize=optimize,
                                      dtype=dtype, seed=seed, **shapes)
             for name, (be, optimize) in binds.items()}
    values = _values(execs["fused"], symbol, shapes, seed, inputs or {})
    head_grads = _head_grads(execs["fused"], seed)
    results = {name: _run(ex, values, head_grads, seed) for name, ex in execs.items()}
    columns = {}
    for name, ex in execs.items():
        stats = dict(ex.program.stats) if ex.program is not None else {}
        columns[name] = {**{k: stats.get(k) for _, k in STAT_ROWS},
                         **_timings(ex, head_grads, seed, repeat)}
    diffs = {name: _max_diff(results[name], results["fused"]) for name in execs}
    scale = {k: max(float(np.max(np.abs(v), initial=0.0)), 1.0)
             for k, v in results["fused"].items()}
    result = {"columns": columns, "diffs": diffs,
              "max_diff": max((v for d in diffs.values() for v in d.values()), default=0.0),
              "max_rel_diff": max((v / scale[k] for d in diffs.values() for k, v in d.items()),
                                  default=0.0)}
    result["table"] = format_table(result)
    if not quiet:
        print(result["table"], file=file or sys.stdout)
    return result


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if v < 1e4 else f"{v:.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def format_table(result: dict) -> str:
    """The comparison as aligned text: stats and times, then max |x - fused| per value."""
    names = list(result["columns"])
    rows = [[label] + [_cell(result["columns"][n][key]) for n in names]
            for label, key in STAT_ROWS]
    rows += [[label] + [_cell(result["columns"][n][key]) for n in names] for label, key in
             [("ms / forward", "forward_ms"), ("ms / forward+backward", "forward_backward_ms")]]
    diff_rows = [[f"max|diff| {k}"] + ["-" if n == "fused" else f"{result['diffs'][n][k]:.2e}"
                                       for n in names] for k in result["diffs"]["fused"]]
    head = ["", *names]
    widths = [max(len(r[i]) for r in [head] + rows + diff_rows) for i in range(len(head))]

    def line(r):
        return "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:],
                                                                               widths[1:])])

    rule = "-" * len(line(head))
    return "\n".join([line(head), rule, *map(line, rows), rule, *map(line, diff_rows)])


__all__ = ["compare", "format_table"]
