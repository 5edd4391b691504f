"""Data-parallel training: `Trainer` runs one window at a time on every rank's share of each
batch; `train_data_parallel` is `symrnn.train(..., data_parallel=True)`.

The global batch is the stream's `N` columns (`batchify(tokens, N)`): rank `r` of `R` trains
on columns `[r*N/R, (r+1)*N/R)` (contiguous slices of the corpus, the same split on every run),
with an executor bound to `N/R`. The loss reported is the mean over the ranks: the loss of
the global batch. Mask seeds are explicit per step (`executor.seed`, which DataParallel makes
differ per rank, and the step count), so that a run resumed from a checkpoint draws what the
uninterrupted run drew. Only rank 0 prints, draws progress bars and plots.
"""
from __future__ import annotations

import time

import numpy as np

from runtime.errors import ShapeError
from symrnn.optim import Adam, clip_global_norm
from symrnn.parallel.data_parallel import DataParallel
from symrnn.train import (
    History,
    _check_train,
    _close,
    _format,
    _head_grads,
    _ppl,
    _progress,
    _record,
    _tick,
    carry_states,
    evaluate,
    num_windows,
    plot_losses,
    reset_states,
)

_GOLDEN = 0x9E3779B97F4A7C15


def shard_columns(where: str, stream: np.ndarray, rank: int, size: int, batch: int):
    """Rank `rank`'s columns of the global stream `(T_total, N)`; ShapeError (on every rank:
    the check needs no communication) unless `N == size * batch`."""
    n = stream.shape[1] if stream.ndim == 2 else None
    if n is None or n % size or n // size != batch:
        raise ShapeError(f"{where}: the global batch (the stream's columns, {n}) must be "
                         f"{size} ranks x the executor's batch {batch} = {size * batch}, given "
                         f"stream shape {stream.shape}; bind each rank to N / {size}"
                         + (f" (N={n} does not divide by {size} ranks)"
                            if n is not None and n % size else ""))
    return np.ascontiguousarray(stream[:, rank * batch:(rank + 1) * batch])


class Trainer:
    """One executor per rank, trained a window at a time on its columns of `stream`.

    State to checkpoint: the executor's arguments, `optimizer`, and `epoch`, `window`,
    `steps`, `history` (see symrnn.cli.train).
    """

    def __init__(self, executor, stream, links=None, *, optimizer=None, clip=None,
                 state="remember", data="data", label="label", comm=None, dp=None):
        self.executor, self.links = executor, dict(links or {})
        self.optimizer, self.clip = optimizer or Adam(1e-3), clip
        self.state, self.data, self.label = state, data, label
        self.dp = dp or DataParallel(executor, comm)
        self.seq_len, batch = executor.arg_dict[data].shape[:2]
        self.global_batch = batch * self.dp.size
        self.stream = shard_columns("train", stream, self.dp.rank, self.dp.size, batch)
        _check_train(executor, self.stream, self.links, state, self.seq_len)
        self.dp.broadcast_params(optimizer=self.optimizer)
        self.per_epoch = num_windows(self.stream, self.seq_len)
        self.epoch, self.window, self.steps, self.history = 1, 0, 0, History()
        self.comm_seconds = 0.0  # waiting on the other ranks: reductions, the loss's mean

    @property
    def root(self) -> bool:
        return self.dp.rank == 0

    def step(self, stop=None) -> tuple:
        """Trains on the next window. Returns (the ranks' mean loss, whether to stop): `stop`
        is asked on rank 0 only, and its answer reaches every rank with the loss."""
        ex, start = self.executor, self.window * self.seq_len
        if self.window == 0:
            reset_states(ex, self.links)
        x = self.stream[start:start + self.seq_len]
        y = self.stream[start + 1:start + self.seq_len + 1]
        seed = (ex.seed * _GOLDEN + self.steps) % 2**64
        loss = float(ex.forward(is_train=True, seed=seed, **{self.data: x, self.label: y})[0])
        self.dp.backward(_head_grads(ex))
        self.comm_seconds += self.dp.comm_seconds
        if self.clip:
            clip_global_norm(ex.grad_dict, self.clip)
        self.optimizer.step(ex)
        (carry_states if self.state == "remember" else reset_states)(ex, self.links)
        self.window, self.steps = self.window + 1, self.steps + 1
        if self.window == self.per_epoch:
            self.window, self.epoch = 0, self.epoch + 1
        flag = float(bool(stop())) if stop is not None and self.root else 0.0
        t0 = time.perf_counter()
        mean_loss, stopping = self.dp.mean_floats([loss, flag])
        self.comm_seconds += time.perf_counter() - t0  # waits for the slowest rank
        self.history.losses.append(float(mean_loss))
        return float(mean_loss), bool(stopping > 0)

    def validate(self, vex, vstream) -> dict:
        """The held-out loss of the global batch: every rank evaluates its columns."""
        ex = self.executor
        if vex is not ex:
            vex.copy_params_from({n: ex.arg_dict[n] for n in ex.grad_dict}, True)
        mine = shard_columns("valid", vstream, self.dp.rank, self.dp.size,
                             vex.arg_dict[self.data].shape[1])
        local = evaluate(vex, mine, self.links, self.data, self.label, self.state)
        loss = float(self.dp.mean_floats([local])[0])
        return {"valid_loss": loss, "valid_ppl": _ppl(loss)}

    def agree(self, flag: bool) -> bool:
        """True on every rank if any rank's `flag` is."""
        return bool(self.dp.mean_floats([float(bool(flag))])[0] > 0)


def train_data_parallel(executor, stream, links, epochs, optimizer, clip, state, valid, data,
                        label, max_seconds, progress, log, plot, on_epoch) -> History:
    """`symrnn.train`'s loop over `Trainer` (the same arguments; see symrnn.train)."""
    tr = Trainer(executor, stream, links, optimizer=optimizer, clip=clip, state=state,
                 data=data, label=label)
    start = time.perf_counter()

    def late():
        return max_seconds is not None and time.perf_counter() - start > max_seconds

    for epoch in range(1, epochs + 1):
        t0, losses, stop = time.perf_counter(), [], False
        bar = _progress(tr.per_epoch, f"epoch {epoch}", progress and tr.root)
        while not stop and (tr.window or not losses):
            loss, stop = tr.step(late)
            losses.append(loss)
            _tick(bar, loss)
        _close(bar)
        record = _record(epoch, losses, time.perf_counter() - t0, tr.global_batch * tr.seq_len)
        record["comm_seconds"] = tr.comm_seconds
        if valid is not None:
            record.update(tr.validate(*valid))
        tr.history.epochs.append(record)
        if log and tr.root:
            log(_format(record))
        if stop or tr.agree(on_epoch is not None and on_epoch(record, tr.optimizer)):
            break
    reset_states(executor, tr.links)
    if plot and tr.root:
        plot_losses(tr.history, plot)
    return tr.history
