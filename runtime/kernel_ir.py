"""The kernel IR: one fused elementwise kernel as a flat list of SSA statements.

A kernel runs over a 2-D index space `(rows, cols)`; element `(r, c)` has the flat index
`idx = r * cols + c`, which keys the RNG for masks. Every operand is a 2-D view given at
launch as a pointer and a row stride `ld` (0 broadcasts one row to all rows), so that one
compiled kernel serves every time step: only pointers and mask ids change between launches.

Statements:
- `Load(dst, operand)`: `dst = in[operand][r * ld + c]`
- `Compute(dst, op, srcs, attrs)`: `dst = c_expr of op` over earlier values (the op table)
- `Store(operand, src)`: `out[operand][r * ld + c] = src`
- `Reduce(dst, op, src)`: `dst` = the row reduction `op` (in `REDUCTIONS`: "sum") of the
  value `src` over the row's `cols` columns, the same at every column of the row. The
  renderers compute it in a pass over the row before the columns that use it (recomputing
  what `src` needs), and store only in the last pass, so outputs may still alias inputs
  element for element.

Attributes of dropout/zoneout carry `mask` (an index into the launch's mask-id array) and
`p`; the mask id itself is a launch argument. The structural key covers everything but the
kernel's name, so identical steps share one compiled kernel.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Load:
    dst: int
    operand: int


@dataclass(frozen=True)
class Compute:
    dst: int
    op: str
    srcs: tuple[int, ...]
    attrs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Store:
    operand: int
    src: int


@dataclass(frozen=True)
class Reduce:
    dst: int
    op: str
    src: int


REDUCTIONS = ("sum",)  # the closed list of row reductions


@dataclass(frozen=True)
class KernelIR:
    dtype: str  # "float32" | "float64"
    n_in: int
    n_out: int
    n_masks: int
    body: tuple  # of Load | Compute | Store | Reduce

    def key(self) -> str:
        """A structural hash: equal for kernels that compile to the same code."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]

    @cached_property  # the key hashes the whole body; emit and the renderers ask often
    def name(self) -> str:
        return f"symrnn_k{self.key()}"


# ---- as JSON: what an artifact carries ----------------------------------------------------
def ir_to_dict(ir: KernelIR | None) -> dict | None:
    """`ir` as plain JSON data: `{"dtype", "n_in", "n_out", "n_masks", "body"}`, each
    statement a list `["load", dst, operand]`, `["compute", dst, op, srcs, attrs]` (attrs as
    `[name, value]` pairs), `["store", operand, src]` or `["reduce", dst, op, src]`."""
    if ir is None:
        return None
    body = []
    for s in ir.body:
        if isinstance(s, Load):
            body.append(["load", s.dst, s.operand])
        elif isinstance(s, Store):
            body.append(["store", s.operand, s.src])
        elif isinstance(s, Reduce):
            body.append(["reduce", s.dst, s.op, s.src])
        else:
            body.append(["compute", s.dst, s.op, list(s.srcs), [list(a) for a in s.attrs]])
    return {"dtype": ir.dtype, "n_in": ir.n_in, "n_out": ir.n_out, "n_masks": ir.n_masks,
            "body": body}


LIMIT = 1 << 16  # statements, operands, masks and value numbers of one kernel


def ir_from_dict(d) -> KernelIR | None:
    """The KernelIR that `ir_to_dict` wrote, every field's type and range checked; raises
    ValueError naming the field. The ops and the SSA order are the renderer's to check."""
    if d is None:
        return None
    if not isinstance(d, dict) or set(d) != {"dtype", "n_in", "n_out", "n_masks", "body"}:
        raise ValueError("the kernel IR must be an object with exactly the fields dtype, "
                         "n_in, n_out, n_masks, body")
    if d["dtype"] not in ("float32", "float64"):
        raise ValueError(f"field 'dtype' is {d['dtype']!r}, expected float32 or float64")
    counts = [_count(d[k], k) for k in ("n_in", "n_out", "n_masks")]
    if not isinstance(d["body"], list) or len(d["body"]) > LIMIT:
        raise ValueError(f"field 'body' must be a list of at most {LIMIT} statements")
    body = tuple(_statement(s, i) for i, s in enumerate(d["body"]))
    return KernelIR(d["dtype"], *counts, body)


def _count(v, what: str) -> int:
    if type(v) is not int or not 0 <= v <= LIMIT:
        raise ValueError(f"field {what!r} is {v!r}, expected an integer in [0, {LIMIT}]")
    return v


def _statement(s, i: int):
    where = f"body[{i}]"
    if not isinstance(s, list) or not s or s[0] not in ("load", "compute", "store", "reduce"):
        raise ValueError(f"{where} must be a list starting with 'load', 'compute', 'store' or "
                         f"'reduce'")
    if s[0] == "reduce":
        if len(s) != 4 or s[2] not in REDUCTIONS:
            raise ValueError(f"{where}: a reduce is [\"reduce\", dst, op, src] with op in "
                             f"{REDUCTIONS}; given {s!r}")
        return Reduce(_count(s[1], f"{where}[1]"), s[2], _count(s[3], f"{where}[3]"))
    if s[0] in ("load", "store"):
        if len(s) != 3:
            raise ValueError(f"{where}: a {s[0]} has 2 fields, given {len(s) - 1}")
        a, b = (_count(x, f"{where}[{k}]") for k, x in ((1, s[1]), (2, s[2])))
        return Load(a, b) if s[0] == "load" else Store(a, b)
    if len(s) != 5 or not isinstance(s[2], str) or not isinstance(s[3], list) \
            or not isinstance(s[4], list):
        raise ValueError(f"{where}: a compute is [\"compute\", dst, op, [srcs], [attrs]]")
    srcs = tuple(_count(x, f"{where} srcs") for x in s[3])
    return Compute(_count(s[1], f"{where}[1]"), s[2], srcs,
                   tuple(_attr(a, where) for a in s[4]))


ATTRS = ("dtype", "mask", "p", "scalar", "shape")  # what emit puts in a Compute


def _attr(a, where: str) -> tuple:
    if not isinstance(a, list) or len(a) != 2 or a[0] not in ATTRS:
        raise ValueError(f"{where}: an attribute is [name, value] with a name in {ATTRS}; "
                         f"given {a!r}")
    name, value = a
    if name == "mask":
        return name, _count(value, f"{where} mask")
    if name == "dtype":
        if value not in ("float32", "float64"):
            raise ValueError(f"{where}: attribute 'dtype' is {value!r}, expected float32 or "
                             f"float64")
        return name, value
    if name == "shape":
        if not isinstance(value, list) or len(value) > 8:
            raise ValueError(f"{where}: attribute 'shape' must be a list of at most 8 sizes")
        if any(type(x) is not int or not 0 <= x < 1 << 40 for x in value):
            raise ValueError(f"{where}: attribute 'shape' is {value!r}, expected sizes")
        return name, tuple(value)
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"{where}: attribute {name!r} is {value!r}, expected a finite number")
    return name, value
