"""The executor's output arrays: fresh copies, or last call's arrays where nobody can see them.

`forward` returns arrays of the caller's own, copies of the engine's views. A big output is
cheaper written again than allocated: 13 MiB (T=100, N=64, H=512) took 1.3 ms into the last
array against 1.6 fresh, 40 MiB 6.2 against 9.2 (above glibc's largest mmap threshold every
fresh allocation faults its pages in); below 1 MiB numpy's assignment into an existing array
was the slower (16-128 KiB: 7-52 us against 1-5 for `.copy()`; this machine, one process),
so outputs under RECYCLE_BYTES are always fresh copies.

A big array of the last call is written again only where that is provably invisible. The
executor takes the list out of `ex.outputs` first (a read of `ex.outputs` from another thread
meanwhile waits for the call, runtime.executor), so no reference can appear between the
check and the write; it goes on only if the list has no reference but its own (`LIST_ALONE`:
a caller holding the list that `forward` returned holds every array in it); then `spare`
keeps each array that

- is a plain `np.ndarray` owning its memory (`base` is None: not a view of another array), of
  the output's shape and dtype, C-contiguous and writeable;
- has no reference but the list's (`sys.getrefcount` at ARRAY_ALONE, measured at import on
  an array known to have none): a name, a view (it holds its base), a memoryview, a torch
  tensor from `torch.from_numpy`, a ctypes or DLPack export, `ex.output_dict`, another list
  all hold one;
- has no weak reference (a weakref'd cache would see it change).

Anything else gets a fresh array: the rule can cost an allocation, never change a number that
someone holds. Only on CPython with the GIL, before 3.14 (whose borrowed stack references
change what `getrefcount` counts); elsewhere every output is fresh.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np

RECYCLE_BYTES = 1 << 20


def _held_once() -> int:
    outputs = [None]  # one local, as the executor's `old` in Executor._copy_out
    return sys.getrefcount(outputs)


def _counts(outputs: list) -> list:
    return [sys.getrefcount(a) for a in outputs]


RECYCLES = sys.implementation.name == "cpython" and sys.version_info < (3, 14) and \
    getattr(sys, "_is_gil_enabled", lambda: True)()
LIST_ALONE = _held_once()
ARRAY_ALONE = _counts([np.empty(1)])[0]  # the list's reference and the count's own


class OutputCopier:
    """The copies of one engine's outputs (`specs`: [(name, shape, dtype)])."""

    def __init__(self, specs: list):
        self.specs = [(tuple(s), np.dtype(d)) for _, s, d in specs]
        self.recycles = RECYCLES and any(int(np.prod(s)) * d.itemsize >= RECYCLE_BYTES
                                         for s, d in self.specs)

    def fresh(self, views: list) -> list:
        return [v.copy() if v.shape == s else v.copy().reshape(s)
                for v, (s, _) in zip(views, self.specs)]

    def copied(self, views: list, old) -> list:
        """The outputs, the big ones written into the arrays of `old` (the list taken back
        from `ex.outputs`, held by nobody else; None: none) that `spare` keeps. The fresh
        copies are made first, so that a failure leaves `old` as it was."""
        reuse = self.spare(old) if type(old) is list and len(old) == len(self.specs) else []
        if not reuse:
            return self.fresh(views)
        out = [(v.copy() if v.shape == s else v.copy().reshape(s)) if r is None else r
               for v, r, (s, _) in zip(views, reuse, self.specs)]
        for v, r in zip(views, reuse):
            if r is not None:
                np.copyto(r if r.shape == v.shape else r.reshape(v.shape), v)
        return out

    def spare(self, old: list) -> list:
        """Per output, its array of `old` to write again, or None; [] where none is."""
        found = [a if n == ARRAY_ALONE and _plain(a, s, d) and
                 int(np.prod(s)) * d.itemsize >= RECYCLE_BYTES else None
                 for a, n, (s, d) in zip(old, _counts(old), self.specs)]
        return found if any(a is not None for a in found) else []


def _plain(a, shape: tuple, dtype: np.dtype) -> bool:
    if type(a) is not np.ndarray or a.base is not None:
        return False
    flags = a.flags
    return (flags.owndata and flags.writeable and flags.c_contiguous and a.shape == shape
            and a.dtype == dtype and weakref.getweakrefcount(a) == 0)
