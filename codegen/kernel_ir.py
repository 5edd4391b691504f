"""The kernel IR: one fused elementwise kernel as a flat list of SSA statements.

A kernel runs over a 2-D index space `(rows, cols)`; element `(r, c)` has the flat index
`idx = r * cols + c`, which keys the RNG for masks. Every operand is a 2-D view given at
launch as a pointer and a row stride `ld` (0 broadcasts one row to all rows), so that one
compiled kernel serves every time step: only pointers and mask ids change between launches.

Statements:
- `Load(dst, operand)`: `dst = in[operand][r * ld + c]`
- `Compute(dst, op, srcs, attrs)`: `dst = c_expr of op` over earlier values (the op table)
- `Store(operand, src)`: `out[operand][r * ld + c] = src`

Attributes of dropout/zoneout carry `mask` (an index into the launch's mask-id array) and
`p`; the mask id itself is a launch argument. The structural key covers everything but the
kernel's name, so identical steps share one compiled kernel.
"""
from __future__ import annotations

import hashlib
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
class KernelIR:
    dtype: str  # "float32" | "float64"
    n_in: int
    n_out: int
    n_masks: int
    body: tuple  # of Load | Compute | Store

    def key(self) -> str:
        """A structural hash: equal for kernels that compile to the same code."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]

    @cached_property  # the key hashes the whole body; emit and the renderers ask often
    def name(self) -> str:
        return f"symrnn_k{self.key()}"
