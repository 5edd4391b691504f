"""Gradient buckets: which backward step finishes each gradient, and the reducer that sums
buckets over the ranks as they fill.

A gradient is final after the last backward step whose output overlaps its view (the
weight-gradient GEMMs accumulate over time; a bias gradient is one reduction). Gradients are
packed, in the order they become final, into buckets of about `bucket_bytes` of one dtype;
each bucket's non-blocking allreduce starts from the engine's backward hook (runtime.cpu
`set_backward_hooks`) right after its last member is written, while the rest of the backward
runs, and all are waited before the backward returns. Then every rank divides the sums by the
rank count: the same operation on the same bits, so the means agree bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_BUCKET_BYTES = 4 << 20


def _span(v) -> tuple:
    return v.offset, v.offset + (max(v.rows - 1, 0) * v.ld if v.ld else 0) + v.cols


def final_steps(program) -> dict:
    """{gradient name: index of the backward step after which it is final}; -1 for a
    gradient no backward step writes (final when the backward starts)."""
    steps = program.steps_in("backward")
    final = {}
    for name, view in program.grads.items():
        lo, hi = _span(view)
        final[name] = -1
        for i, s in enumerate(steps):
            if any(o.buffer == view.buffer and _span(o)[0] < hi and lo < _span(o)[1]
                   for o in s.outputs):
                final[name] = i
    return final


@dataclass
class Bucket:
    dtype: str
    names: list = field(default_factory=list)
    shapes: list = field(default_factory=list)
    starts: list = field(default_factory=list)
    size: int = 0  # elements
    flat: np.ndarray | None = None
    pending: set = field(default_factory=set)
    request: object = None

    def slot(self, name: str) -> np.ndarray:
        i = self.names.index(name)
        n = int(np.prod(self.shapes[i], dtype=np.int64))
        return self.flat[self.starts[i]:self.starts[i] + n].reshape(self.shapes[i])


def plan_buckets(grads: list, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> list:
    """`grads`: [(name, shape, dtype)] in the order they become final -> [Bucket]."""
    buckets: list = []
    for name, shape, dtype in grads:
        n = int(np.prod(shape, dtype=np.int64))
        b = buckets[-1] if buckets else None
        if b is None or b.dtype != dtype or (b.size and (b.size + n) * np.dtype(dtype)
                                             .itemsize > bucket_bytes):
            b = Bucket(dtype)
            buckets.append(b)
        b.names.append(name)
        b.shapes.append(tuple(shape))
        b.starts.append(b.size)
        b.size += n
    for b in buckets:
        b.flat = np.zeros(b.size, b.dtype)
    return buckets


class Reducer:
    """Sums the gradients over `comm`'s ranks bucket by bucket, then divides by the size."""

    def __init__(self, comm, grads: list, final: dict | None = None,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        final = final or {}
        order = sorted(grads, key=lambda g: final.get(g[0], -1))
        self.comm, self.buckets = comm, plan_buckets(order, bucket_bytes)
        self.bucket_of = {n: b for b in self.buckets for n in b.names}
        self.at_step: dict = {}  # backward step index -> names final after it
        for name, _, _ in order:
            if final.get(name, -1) >= 0:
                self.at_step.setdefault(final[name], []).append(name)
        self.active, self.wait_seconds, self.started_early = False, 0.0, 0

    def hooks(self) -> dict:
        """{step index: hook(grad_views)} for the engine's set_backward_hooks."""
        return {i: _Hook(self, names) for i, names in self.at_step.items()}

    def begin(self) -> None:
        for b in self.buckets:
            b.pending, b.request = set(b.names), None
        self.active = True

    def ready(self, views: dict, names) -> None:
        """Copies final gradients into their buckets; starts each bucket that is full."""
        for name in names:
            b = self.bucket_of[name]
            if name not in b.pending:
                continue
            np.copyto(b.slot(name), views[name].reshape(b.slot(name).shape))
            b.pending.discard(name)
            if not b.pending:
                b.request = self.comm.iallreduce(b.flat)
        self.comm.poke([b.request for b in self.buckets if b.request is not None])

    def finish(self, grads: dict, what: str, clock) -> dict:
        """The rest of the gradients (those no hook saw), the waits, the mean."""
        self.started_early = sum(b.request is not None for b in self.buckets)
        self.ready(grads, [n for b in self.buckets for n in list(b.pending)])
        self.active = False
        t0 = clock()
        self.comm.wait([b.request for b in self.buckets], what)
        self.wait_seconds = clock() - t0
        out = {}
        for b in self.buckets:
            if self.comm.size > 1:
                np.divide(b.flat, b.flat.dtype.type(self.comm.size), out=b.flat)
            out.update((n, b.slot(n)) for n in b.names)
        return out


class _Hook:
    """A backward hook: the named gradients are final; does nothing outside a reduction."""

    def __init__(self, reducer: Reducer, names: list):
        self.reducer, self.names = reducer, names

    def __call__(self, views: dict) -> None:
        if self.reducer.active:
            self.reducer.ready(views, self.names)
