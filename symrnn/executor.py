"""Binding: Symbol + shapes + backend -> Executor.

`reference` interprets the graph with numpy; `cpu` (the default) and `cuda` run a compiled
Program.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from codegen import autodiff, require_known
from codegen.pipeline import compile_graph
from codegen.reference import ReferenceEngine
from runtime.errors import BackendUnavailable, BindError
from runtime.executor import Executor, check_array, normalize_grad_req
from symrnn.lower import lower_and_infer
from symrnn.model import state_args
from symrnn.symbol import Symbol

BACKENDS = ("cpu", "reference", "cuda")
DTYPES = ("float32", "float64")


def simple_bind(symbol: Symbol, backend="cpu", grad_req="write", fuse=True, dtype=None,
                seed=0, shapes=None, where="simple_bind", cache=None) -> Executor:
    if backend not in BACKENDS:
        raise BindError(f"{where}: 'backend' must be one of {BACKENDS}, given {backend!r}")
    if dtype is not None and dtype not in DTYPES:
        raise BindError(f"{where}: 'dtype' must be one of {DTYPES}, given {dtype!r}")
    shapes = {k: tuple(v) for k, v in dict(shapes or {}).items()}
    reqs = normalize_grad_req(grad_req, symbol.list_arguments())
    cache = {} if cache is None else cache
    key = (_structure(symbol, cache), tuple(sorted(shapes.items())), backend, bool(fuse),
           dtype, tuple(sorted(reqs.items())))
    if key not in cache:
        cache[key] = Compiled(symbol, shapes, backend, fuse, dtype, reqs, where)
    compiled = cache[key]
    ex = Executor(compiled.engine(), compiled.reqs, seed)
    ex.symbol, ex.input_names = symbol, list(shapes) if where == "simple_bind" else None
    ex.bind_shapes, ex.reshaper = shapes, partial(_reshape, cache, backend, fuse, dtype)
    return ex


def _structure(symbol: Symbol, cache: dict) -> int:
    """A token for the symbol's structure, equal for symbols of equal JSON. A symbol object
    seen before costs nothing and the first needs no JSON; a new object is serialized, as
    are (once) those seen before it (`tojson` takes ~0.1 s for a 2-layer stack at T=100)."""
    by_id = cache.setdefault("symbols", {})  # id -> [symbol (keeps the id its own), token, json]
    if id(symbol) not in by_id:
        for entry in by_id.values():
            entry[2] = entry[2] if entry[2] is not None else entry[0].tojson()
        text = symbol.tojson() if by_id else None
        same = [e[1] for e in by_id.values() if e[2] == text]
        by_id[id(symbol)] = [symbol, same[0] if same else len(by_id), text]
    return by_id[id(symbol)][1]


class Compiled:
    """What binding one (symbol, shapes, backend, fuse, dtype, grad_req) compiles, kept so
    that a reshape to shapes seen before builds its engine without compiling again."""

    def __init__(self, symbol, shapes, backend, fuse, dtype, reqs, where):
        graph, _ = lower_and_infer(symbol, shapes, dtype, where)
        require_known(graph, where)
        self.wrt = [a for a in symbol.list_arguments() if reqs[a] != "null"
                    and graph.nodes[a]["node"].dtype in DTYPES]
        self.reqs = {a: (r if a in self.wrt else "null") for a, r in reqs.items()}
        self.graph, self.backend, self.fuse = graph, backend, fuse
        self.output_names = symbol.list_outputs()
        self._programs: dict = {}
        if backend == "cuda":
            from runtime.cuda_device import default_device

            default_device()  # fails fast, naming the missing piece, before compiling
        self.program(training=True)

    def program(self, training: bool):
        """The compiled training (wrt the gradients' arguments) or inference program."""
        if training not in self._programs:
            target = "cuda" if self.backend == "cuda" else "cpu"
            if self.backend == "reference":
                self._programs[training] = autodiff(self.graph, self.wrt)
            else:
                self._programs[training] = compile_graph(
                    self.graph, self.wrt if training else [], self.output_names,
                    fuse=self.fuse, target=target)
        return self._programs[training]

    def engine(self):
        """A fresh engine (its own arena) over the cached programs: one for training and,
        built on first use, a forward-only one for inference."""
        if self.backend == "reference":
            return ReferenceEngine(self.program(True), self.output_names)
        if self.backend == "cpu":
            from runtime.cpu import CpuEngine as Engine
        else:
            from runtime.cuda import CudaEngine as Engine
        from runtime.dual import DualEngine

        train = Engine(self.program(True))
        if not self.wrt:
            return train
        return DualEngine(train, lambda: Engine(self.program(False)))


def _reshape(cache, backend, fuse, dtype, ex: Executor, shapes: dict) -> Executor:
    """`ex.reshape(**shapes)` (runtime.executor): `symbol=` (optional) is the graph to bind
    instead of `ex.symbol` (the same network unrolled to another length, say); the other
    shapes update those `ex` was bound with, states re-inferred. Arguments whose shape and
    dtype do not change share `ex`'s arrays, and their gradients `ex`'s gradient arrays."""
    shapes = dict(shapes)
    symbol = shapes.pop("symbol", None) or ex.symbol
    if not isinstance(symbol, Symbol):
        raise BindError(f"reshape: 'symbol' must be a Symbol, given {type(symbol).__name__}")
    names = symbol.list_arguments()
    states = set(state_args(symbol))
    base = {k: v for k, v in ex.bind_shapes.items()
            if k in names and k not in states and k not in shapes}
    reqs = {n: ex.grad_req.get(n, "null") for n in names}
    new = simple_bind(symbol, backend, reqs, fuse, dtype, ex.seed, {**base, **shapes},
                      where="reshape", cache=cache)
    new.input_names = ex.input_names
    _share_arrays(new, ex, set(shapes))
    return new


def _share_arrays(new: Executor, old: Executor, reshaped: set) -> None:
    for n, v in old.arg_dict.items():
        mine = new.arg_dict.get(n)
        if n in reshaped or mine is None or mine.shape != v.shape or mine.dtype != v.dtype:
            continue
        new.arg_dict[n] = v
        if n in new.grad_dict and n in old.grad_dict:
            new.grad_dict[n] = old.grad_dict[n]


def bind(symbol: Symbol, backend="cpu", args=None, args_grad=None, grad_req="write",
         fuse=True, seed=0) -> Executor:
    """Binds to given arrays; shapes and dtypes come from them."""
    names = symbol.list_arguments()
    if isinstance(args, (list, tuple)):
        if len(args) != len(names):
            raise BindError(f"bind: 'args' has {len(args)} arrays but the symbol has "
                            f"{len(names)} arguments {names}")
        args = dict(zip(names, args))
    if not isinstance(args, dict):
        raise BindError(f"bind: 'args' must be a dict or a list of arrays, given "
                        f"{type(args).__name__}")
    missing = [n for n in names if n not in args]
    if missing:
        raise BindError(f"bind: no array for argument {missing[0]!r}")
    for n, v in args.items():
        if not isinstance(v, np.ndarray):
            check_array("bind", n, v, (), "float32")
    dtypes = {str(v.dtype) for n, v in args.items() if v.dtype.kind == "f"}
    dtype = dtypes.pop() if len(dtypes) == 1 else None
    ex = simple_bind(symbol, backend, grad_req, fuse, dtype, seed,
                     {n: tuple(v.shape) for n, v in args.items()}, where="bind")
    ex.copy_params_from(args)
    if args_grad is not None:
        _adopt_grads(ex, args_grad)
    return ex


def _adopt_grads(ex: Executor, args_grad) -> None:
    """Uses the caller's gradient arrays, as MXNet does, after checking them."""
    for n, g in dict(args_grad).items():
        if n not in ex.arg_dict:
            raise BindError(f"bind: args_grad names {n!r}, which is not an argument; the "
                            f"arguments are {list(ex.arg_dict)}")
        if n not in ex.grad_dict:
            continue
        ref = ex.grad_dict[n]
        check_array("bind", f"args_grad[{n}]", g, ref.shape, ref.dtype)
        if not g.flags.c_contiguous:
            raise BindError(f"bind: args_grad[{n!r}] must be C-contiguous to be written in "
                            f"place; pass np.ascontiguousarray(...)")
        ex.grad_dict[n] = g


__all__ = ["BackendUnavailable", "bind", "simple_bind"]
