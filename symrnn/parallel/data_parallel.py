"""`DataParallel`: one executor per rank, gradients averaged over the ranks after backward.

    >>> dp = DataParallel(executor)            # doctest: +SKIP
    >>> dp.broadcast_params(optimizer=opt)     # rank 0's parameters and optimizer state
    >>> executor.forward(is_train=True, data=my_half, label=my_labels)   # doctest: +SKIP
    >>> dp.backward()                          # grad_dict: the mean over the ranks

Every rank binds the same network to the same per-rank shapes (its share of the global
batch); construction compares a hash of the program and the argument shapes over the ranks
and refuses, on every rank, ranks that differ. Run alone it is the identity (`size == 1`).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace

import numpy as np

from runtime.errors import BindError, ConfigError
from symrnn.parallel import comm as comms
from symrnn.parallel.buckets import DEFAULT_BUCKET_BYTES, Reducer, final_steps
from symrnn.parallel.cuda import device_reducer

SEED_MIX = 0x9E3779B97F4A7C15


class RankMismatch(ConfigError):
    """Ranks bound different symbols, shapes, dtypes or grad_req."""


class DataParallel:
    """Averages `executor`'s gradients over the ranks of `comm` (default: MPI's COMM_WORLD,
    or one process alone without mpiexec/mpi4py).

    `bucket_bytes` sizes the allreduce buckets; `timeout` (seconds) bounds every wait on the
    other ranks (RankFailed after it). `rank_seeds=True` gives rank r the mask seed
    `seed + r * SEED_MIX` so that dropout and zoneout masks differ across ranks (rank 0 keeps
    the executor's seed). With several ranks, an uncaught exception aborts every rank.
    """

    def __init__(self, executor, comm=None, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 timeout: float = comms.DEFAULT_TIMEOUT, rank_seeds: bool = True):
        if not isinstance(bucket_bytes, int) or bucket_bytes <= 0:
            raise ConfigError(f"DataParallel: 'bucket_bytes' must be a positive int, given "
                              f"{bucket_bytes!r}")
        self.executor, self.comm = executor, comms.wrap(comm, timeout)
        self.rank, self.size = self.comm.rank, self.comm.size
        comms.abort_on_uncaught(self.comm)
        self._check_same_program()
        if rank_seeds:  # from the bind's seed, however many times the executor is wrapped
            executor.bind_seed = getattr(executor, "bind_seed", executor.seed)
            executor.seed = (executor.bind_seed + self.rank * SEED_MIX) % 2**64
        self.target = getattr(executor.engine, "train", executor.engine)
        program = getattr(self.target, "program", None)
        hooked = program is not None and hasattr(self.target, "set_backward_hooks")
        specs = executor.engine.arg_specs
        grads = [(n, specs[n][0], str(np.dtype(specs[n][1]))) for n in executor.engine.wrt]
        self.reducer = Reducer(self.comm, grads, final_steps(program) if hooked else None,
                               bucket_bytes)
        if hooked and self.size > 1:
            self.target.set_backward_hooks(self.reducer.hooks())
        self.device = device_reducer(self.comm, self.target)  # the cuda engine's, or None
        self.comm_seconds = 0.0  # time spent waiting on the last backward's reductions

    @property
    def buckets(self) -> list:
        return self.reducer.buckets

    def broadcast_params(self, root: int = 0, optimizer=None, names=None) -> None:
        """Copies rank `root`'s parameters (the arguments with gradients, or `names`) and, if
        given, the optimizer's state and step count to every rank."""
        if not 0 <= root < self.size:
            raise ConfigError(f"broadcast_params: 'root' must be a rank in [0, {self.size}), "
                              f"given {root!r}")
        names = list(self.executor.grad_dict) if names is None else list(names)
        unknown = [n for n in names if n not in self.executor.arg_dict]
        if unknown:
            raise BindError(f"broadcast_params: {unknown[0]!r} is not an argument; the "
                            f"arguments are {list(self.executor.arg_dict)}")
        for n in names:
            self.comm.bcast_array(self.executor.arg_dict[n], root)
        if optimizer is not None:
            optimizer.state, optimizer.steps = self.comm.bcast_object(
                (optimizer.state, optimizer.steps), root)

    def backward(self, out_grads=None) -> None:
        """The executor's backward, then the mean of every gradient over the ranks, in
        `executor.grad_dict` ('write' replaces, 'add' adds the mean), identical on every rank.
        A failed call leaves the gradients as they were."""
        if self.size == 1:
            self.executor.backward(out_grads)
            return
        engine = self.executor.engine
        self.executor.engine = _Reducing(engine, self)
        try:
            self.executor.backward(out_grads)
        finally:
            self.executor.engine = engine
            self.reducer.active = False

    def mean_floats(self, values) -> np.ndarray:
        """The mean over the ranks of a few float64 values (losses, flags), the same on every
        rank."""
        return self.comm.sum_floats(values) / self.size

    def _reduce(self, head_grads: list, engine) -> dict:
        if self.device is not None and getattr(engine, "_last", None) is None:
            t0 = time.perf_counter()  # (a DualEngine's pending replay goes the host way)
            sums = self.device.backward(head_grads)
            self.comm_seconds = time.perf_counter() - t0
            return {n: np.divide(g, g.dtype.type(self.size)) for n, g in sums.items()}
        self.reducer.begin()
        grads = engine.backward(head_grads)
        out = self.reducer.finish(grads, "DataParallel.backward", time.perf_counter)
        self.comm_seconds = self.reducer.wait_seconds
        return out

    def _check_same_program(self) -> None:
        digest, specs = program_digest(self.executor)
        digests = self.comm.allgather_bytes(digest)
        if len(set(digests)) == 1:
            return
        everyone = self.comm.allgather_object(specs)
        raise RankMismatch(_mismatch_message(self.rank, digests, everyone))


class _Reducing:
    """The executor's engine during DataParallel.backward: its backward reduces."""

    def __init__(self, engine, dp: DataParallel):
        self._engine, self._dp = engine, dp

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def backward(self, head_grads: list) -> dict:
        return self._dp._reduce(head_grads, self._engine)


def program_digest(executor) -> tuple:
    """(SHA-256 of what must agree across ranks, a readable summary of it): the argument
    shapes and dtypes, heads, grad_req and the compiled program (or the symbol)."""
    engine = executor.engine
    specs = {"args": {n: [list(s), str(np.dtype(d))] for n, (s, d) in engine.arg_specs.items()},
             "outputs": [[n, list(s), str(np.dtype(d))] for n, s, d in engine.out_specs],
             "grad_req": executor.grad_req, "engine": type(engine).__name__}
    program = getattr(executor, "program", None)
    # stats hold compile times, which differ from rank to rank
    body = replace(program, stats={}).to_json() if program is not None else \
        _symbol_json(executor)
    text = json.dumps(specs, sort_keys=True) + "\n" + body
    return hashlib.sha256(text.encode()).digest(), specs


def _symbol_json(executor) -> str:
    symbol = getattr(executor, "symbol", None)
    return symbol.tojson() if symbol is not None else ""


def _mismatch_message(rank: int, digests: list, everyone: list) -> str:
    groups: dict = {}
    for r, d in enumerate(digests):
        groups.setdefault(d, []).append(r)
    text = "; ".join(f"ranks {rs} have program {d.hex()[:12]}" for d, rs in groups.items())
    detail = _first_difference(everyone)
    return (f"DataParallel: rank {rank}: the ranks bound different programs ({text}){detail}; "
            f"every rank must bind the same symbol to the same per-rank shapes, dtype and "
            f"grad_req")


def _first_difference(everyone: list) -> str:
    base = everyone[0]
    for r, specs in enumerate(everyone[1:], 1):
        for name in sorted(set(base["args"]) | set(specs["args"])):
            a, b = base["args"].get(name), specs["args"].get(name)
            if a != b:
                return (f": argument {name!r} is {_fmt(a)} on rank 0 but {_fmt(b)} "
                        f"on rank {r}")
        for key in ("outputs", "grad_req", "engine"):
            if base[key] != specs[key]:
                return f": {key} on rank 0 is {base[key]} but {specs[key]} on rank {r}"
    return ": same shapes, different compiled programs"


def _fmt(spec) -> str:
    return "absent" if spec is None else f"{tuple(spec[0])} {spec[1]}"
