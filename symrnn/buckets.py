"""Training on windows of mixed lengths, as MXNet's BucketingModule.

An unrolled symbol has one length, so each length (a bucket) gets its own executor, made
once by `Executor.reshape` from the symbol `sym_gen(seq_len)` builds. They all share the
parameter and gradient arrays (and the state arrays, whose shape does not depend on the
length), so one optimizer trains them all and states carry from a window of one length into
the next of another. The stream `(T_total, N)` is cut into windows whose lengths cycle through
`buckets`; each program is compiled once (its kernels are shared by structure), later
windows of a length reuse it.

    >>> lm = CharLM(vocab_size=len(vocab))                                  # doctest: +SKIP
    >>> ex, links = lm.bind(seq_len=32, batch=16)                           # doctest: +SKIP
    >>> train(ex, stream, links, buckets=[16, 32, 48])                      # doctest: +SKIP

(`CharLM.bind` gives its executor a `sym_gen`; any other executor needs `sym_gen=`.)
"""
from __future__ import annotations

import time

from runtime.errors import ConfigError


def bucket_windows(stream, buckets):
    """`(seq_len, data, label)` of consecutive windows whose lengths cycle through
    `buckets`; label = data shifted by one token; a tail too short for its bucket is
    dropped."""
    start, k = 0, 0
    while start + buckets[k % len(buckets)] < stream.shape[0]:
        T = buckets[k % len(buckets)]
        yield T, stream[start:start + T], stream[start + 1:start + T + 1]
        start, k = start + T, k + 1


class BucketExecutors:
    """`executor` reshaped to each length on first use, kept per length."""

    def __init__(self, executor, sym_gen, data: str, label: str):
        sym_gen = sym_gen or getattr(executor, "sym_gen", None)
        if not callable(sym_gen):
            raise ConfigError("train: 'buckets' needs 'sym_gen' (seq_len -> Symbol) to unroll "
                              "the network to each length, given none")
        self.sym_gen, self.data, self.label = sym_gen, data, label
        self.base = executor
        self.by_length = {executor.arg_dict[data].shape[0]: executor}

    def links(self, ex, links: dict) -> dict:
        """`links` ({final-state output: initial-state argument} of the base executor) for
        `ex`: output names carry the step, so they are matched by position."""
        names = self.base.output_names
        return {ex.output_names[names.index(out)]: arg for out, arg in links.items()}

    def __getitem__(self, T: int):
        if T not in self.by_length:
            built = self.sym_gen(T)
            symbol = built[0] if isinstance(built, tuple) else built
            batch = self.base.arg_dict[self.data].shape[1:]
            shapes = {self.data: (T, *batch)}
            if self.label in self.base.arg_dict:
                shapes[self.label] = (T, *self.base.arg_dict[self.label].shape[1:])
            self.by_length[T] = self.base.reshape(symbol=symbol, **shapes)
        return self.by_length[T]


def check_buckets(buckets, stream) -> list:
    ok = isinstance(buckets, (list, tuple)) and buckets and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 < b < stream.shape[0]
        for b in buckets)
    if not ok:
        raise ConfigError(f"train: 'buckets' must be a non-empty list of lengths in "
                          f"[1, {stream.shape[0] - 1}] (the stream's T_total - 1), "
                          f"given {buckets!r}")
    return list(buckets)


def train_buckets(executor, stream, links, buckets, sym_gen, *, epochs, optimizer, clip,
                  state, data, label, max_seconds, log, on_epoch, valid):
    """`train(..., buckets=...)`: see the module docstring; returns the History."""
    from symrnn.optim import Adam
    from symrnn.train import (
        History,
        _check_train,
        _format,
        _record,
        _validate,
        reset_states,
    )

    links, optimizer = links or {}, optimizer or Adam(1e-3)
    buckets = check_buckets(buckets, stream)
    _check_train(executor, stream, links, state, min(buckets))
    exs = BucketExecutors(executor, sym_gen, data, label)
    history, start = History(), time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        reset_states(executor, links)
        losses, tokens = _epoch(exs, stream, buckets, links, optimizer, clip, state,
                                (max_seconds, start))
        history.losses += losses
        record = _record(epoch, losses, time.perf_counter() - t0,
                         tokens / max(len(losses), 1))
        if valid is not None:
            record.update(_validate(executor, valid, links, data, label))
        history.epochs.append(record)
        if log:
            log(_format(record))
        if _out_of_time(max_seconds, start) or (on_epoch and on_epoch(record, optimizer)):
            break
    reset_states(executor, links)
    return history


def _epoch(exs, stream, buckets, links, optimizer, clip, state, clock):
    from symrnn.train import _train_step, carry_states, reset_states

    losses, tokens = [], 0
    for T, x, y in bucket_windows(stream, buckets):
        ex = exs[T]
        losses.append(_train_step(ex, optimizer, clip, x, y, exs.data, exs.label))
        tokens += x.size
        (carry_states if state == "remember" else reset_states)(ex, exs.links(ex, links))
        if _out_of_time(*clock):
            break
    return losses, tokens


def _out_of_time(max_seconds, start) -> bool:
    return max_seconds is not None and time.perf_counter() - start > max_seconds
