"""Training with truncated back-propagation through time over a token stream.

A stream of `T_total` tokens is cut into `N` parallel columns (`batchify`), then into windows
of the executor's `seq_len`; the label of each token is the next one. With
`state='remember'` the final states of a window become the initial states of the next (the
gradient stops at the window's edge: truncated BPTT); with `'forget'` every window starts
from zeros.

    >>> ex, links = CharLM(vocab_size=len(vocab)).bind(seq_len=64, batch=32)  # doctest: +SKIP
    >>> init_params(ex)                                                       # doctest: +SKIP
    >>> history = train(ex, batchify(tokens, 32), states=links, epochs=2)     # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from runtime.cpu.blas import blas_threads
from runtime.errors import ConfigError
from symrnn.ops import check_size
from symrnn.optim import Adam, clip_global_norm
from symrnn.plotting import plot_loss_curve

STATE_MODES = ("remember", "forget")


def batchify(tokens, batch: int) -> np.ndarray:
    """A 1-D stream -> `(T_total, batch)`: column `j` holds the `j`-th contiguous slice."""
    batch = check_size("batchify", "batch", batch)
    tokens = np.asarray(tokens)
    rows = len(tokens) // batch
    if tokens.ndim != 1 or rows < 2:
        raise ConfigError(f"batchify: need a 1-D stream of at least {2 * batch} tokens for "
                          f"batch {batch}, given shape {tokens.shape}")
    return np.ascontiguousarray(tokens[: rows * batch].reshape(batch, rows).T)


def windows(stream: np.ndarray, seq_len: int):
    """`(data, label)` pairs of shape `(seq_len, N)`, label = data shifted by one token.
    The tail shorter than `seq_len` is dropped (the executor is bound to one length)."""
    for start in range(0, stream.shape[0] - seq_len, seq_len):
        yield stream[start:start + seq_len], stream[start + 1:start + seq_len + 1]


def num_windows(stream: np.ndarray, seq_len: int) -> int:
    return len(range(0, stream.shape[0] - seq_len, seq_len))


@dataclass
class History:
    """What `train` measured: per-epoch records and the loss of every window."""

    epochs: list = field(default_factory=list)
    losses: list = field(default_factory=list)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}


def reset_states(executor, links: dict) -> None:
    for arg in links.values():
        executor.arg_dict[arg][...] = 0


def carry_states(executor, links: dict) -> None:
    """Copies the final-state outputs into the initial-state arguments."""
    outputs = executor.output_dict
    for out, arg in links.items():
        np.copyto(executor.arg_dict[arg], outputs[out])


def _head_grads(executor) -> list:
    """d(loss) = 1 for the first head (the scalar loss), 0 for the carried states."""
    return [np.ones_like(executor.outputs[0])] + [np.zeros_like(o)
                                                  for o in executor.outputs[1:]]


def _check_train(executor, stream, links, state, seq_len):
    if state not in STATE_MODES:
        raise ConfigError(f"train: 'state' must be one of {STATE_MODES}, given {state!r}")
    missing = [a for a in links.values() if a not in executor.arg_dict]
    missing += [o for o in links if o not in executor.output_names]
    if missing:
        raise ConfigError(f"train: the state link {missing[0]!r} is not an argument or output "
                          f"of the executor")
    if stream.ndim != 2 or stream.shape[0] <= seq_len:
        raise ConfigError(f"train: the stream must be (T_total, N) with T_total > seq_len "
                          f"{seq_len}, given shape {stream.shape}; use batchify(tokens, N)")


def evaluate(executor, stream: np.ndarray, links: dict | None = None,
             data: str = "data", label: str = "label", state: str = "remember") -> float:
    """Mean loss per token over `stream` at inference (`is_train=False`), states carried
    from window to window (starting from zeros) unless `state='forget'`."""
    links = links or {}
    seq_len = executor.arg_dict[data].shape[0]
    _check_train(executor, stream, links, state, seq_len)
    reset_states(executor, links)
    total, count = 0.0, 0
    for x, y in windows(stream, seq_len):
        loss = executor.forward(is_train=False, **{data: x, label: y})[0]
        total, count = total + float(loss), count + 1
        if state == "remember":
            carry_states(executor, links)
        else:
            reset_states(executor, links)
    reset_states(executor, links)
    return total / max(count, 1)


def train(executor, stream: np.ndarray, links: dict | None = None, *, epochs: int = 1,
          optimizer=None, clip: float | None = None, state: str = "remember",
          valid: tuple | None = None, data: str = "data", label: str = "label",
          max_seconds: float | None = None, progress: bool = True, log=print,
          plot: str | None = None, on_epoch=None, threads: int | None = None,
          data_parallel: bool = False, buckets=None, sym_gen=None) -> History:
    """Trains the executor's parameters (those with gradients) on `stream` `(T_total, N)`.

    The executor's first head is the scalar loss (mean per token); its other heads include
    the final states named in `links` (`{output: initial-state argument}`).
    `optimizer` defaults to `Adam(1e-3)`; `clip` is a global-norm bound. `valid` is
    `(executor, stream)` evaluated after every epoch (the executor is bound with the same
    parameters' shapes; parameters are copied into it). `max_seconds` stops early, at a
    window's end. `progress` shows a tqdm bar when tqdm is installed (else a line every
    20 s); `plot` writes a loss curve to that path (needs matplotlib). `on_epoch(record,
    optimizer)` runs after each epoch (to change `optimizer.lr`, say) and stops training by
    returning True. `threads` sets numpy's BLAS threads while training, which the CPU engine's
    GEMMs share (runtime.cpu.packed_gemm); None (the default) leaves them as they are, one per
    core. `data_parallel=True` trains on every MPI rank's share of each batch, the gradients
    averaged over the ranks (symrnn.parallel.training: `stream` is the global batch, the
    executor is bound to its rank's share; only rank 0 logs and plots). `buckets` (a list of
    lengths) trains on windows whose lengths cycle through them, one executor per length
    reshaped from this one (symrnn.buckets), `sym_gen(seq_len) -> Symbol` unrolling the
    network (default: the executor's own `sym_gen`, as `CharLM.bind` sets it). Returns the
    History.
    """
    if buckets is not None:
        if data_parallel:
            raise ConfigError("train: 'buckets' and 'data_parallel' cannot be combined yet; "
                              "give one")
        from symrnn.buckets import train_buckets

        with blas_threads(threads):
            return train_buckets(executor, stream, links, buckets, sym_gen, epochs=epochs,
                                 optimizer=optimizer, clip=clip, state=state, data=data,
                                 label=label, max_seconds=max_seconds, log=log,
                                 on_epoch=on_epoch, valid=valid)
    args = (executor, stream, links, epochs, optimizer, clip, state, valid, data, label,
            max_seconds, progress, log, plot, on_epoch)
    with blas_threads(threads):
        if data_parallel:
            from symrnn.parallel.training import train_data_parallel

            return train_data_parallel(*args)
        return _train(*args)


def _train(executor, stream, links, epochs, optimizer, clip, state, valid, data, label,
           max_seconds, progress, log, plot, on_epoch) -> History:
    links, optimizer = links or {}, optimizer or Adam(1e-3)
    seq_len = executor.arg_dict[data].shape[0]
    _check_train(executor, stream, links, state, seq_len)
    history, start = History(), time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0, losses = time.perf_counter(), []
        reset_states(executor, links)
        bar = _progress(num_windows(stream, seq_len), f"epoch {epoch}", progress)
        for x, y in windows(stream, seq_len):
            losses.append(_train_step(executor, optimizer, clip, x, y, data, label))
            if state == "remember":
                carry_states(executor, links)
            else:
                reset_states(executor, links)
            _tick(bar, losses[-1])
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
        _close(bar)
        history.losses += losses
        record = _record(epoch, losses, time.perf_counter() - t0, stream.shape[1] * seq_len)
        if valid is not None:
            record.update(_validate(executor, valid, links, data, label))
        history.epochs.append(record)
        if log:
            log(_format(record))
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
        if on_epoch is not None and on_epoch(record, optimizer):
            break
    reset_states(executor, links)
    if plot:
        plot_losses(history, plot)
    return history


def _train_step(executor, optimizer, clip, x, y, data, label) -> float:
    loss = float(executor.forward(is_train=True, **{data: x, label: y})[0])
    executor.backward(_head_grads(executor))
    if clip:
        clip_global_norm(executor.grad_dict, clip)
    optimizer.step(executor)
    return loss


def _validate(executor, valid, links, data, label) -> dict:
    vex, vstream = valid
    if vex is not executor:
        vex.copy_params_from({n: executor.arg_dict[n] for n in executor.grad_dict}, True)
    loss = evaluate(vex, vstream, links, data, label)
    return {"valid_loss": loss, "valid_ppl": _ppl(loss)}


def _ppl(loss: float) -> float:
    return math.exp(min(loss, 700.0))


def _record(epoch: int, losses: list, seconds: float, tokens_per_window: int) -> dict:
    loss = float(np.mean(losses)) if losses else math.nan
    return {"epoch": epoch, "loss": loss, "ppl": _ppl(loss), "windows": len(losses),
            "seconds": seconds, "tokens_per_s": len(losses) * tokens_per_window / seconds}


def _format(r: dict) -> str:
    text = (f"epoch {r['epoch']}: loss {r['loss']:.4f}  ppl {r['ppl']:.3f}  "
            f"({r['windows']} windows, {r['seconds']:.1f} s, {r['tokens_per_s']:.0f} tok/s)")
    if "valid_ppl" in r:
        text += f"  valid loss {r['valid_loss']:.4f}  valid ppl {r['valid_ppl']:.3f}"
    return text


class _Ticker:
    """A stand-in for tqdm: a line at most every `every` seconds."""

    def __init__(self, total: int, desc: str, every: float = 20.0):
        self.total, self.desc, self.every, self.n = total, desc, every, 0
        self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, loss: str, refresh: bool = False) -> None:
        if time.perf_counter() - self.last >= self.every:
            self.last = time.perf_counter()
            print(f"  {self.desc}: {self.n}/{self.total} windows, loss {loss}", flush=True)

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is an optional extra
        return _Ticker(total, desc)
    return tqdm(total=total, desc=desc, leave=False)


def _tick(bar, loss: float) -> None:
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)


def _close(bar) -> None:
    if bar is not None:
        bar.close()


def plot_losses(history: History, path: str) -> None:
    """Writes the per-window training loss (and per-epoch valid loss) to an image."""
    ends = np.cumsum([r["windows"] for r in history.epochs])
    valid = [(e, r["valid_loss"]) for e, r in zip(ends, history.epochs) if "valid_loss" in r]
    plot_loss_curve(path, (range(len(history.losses)), history.losses), valid, "window",
                    "plot_losses:", ("train (per window)", "valid (per epoch)"))


__all__ = ["History", "batchify", "evaluate", "plot_losses", "train", "windows"]
