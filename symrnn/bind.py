"""Binding: Symbol + shapes + backend -> Executor.

`reference` interprets the graph with numpy; `cpu` (the default) and `cuda` run a compiled
Program; `cuda-sim` runs the CUDA engine and kernels on the host (runtime.cuda.sim).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from codegen import node, require_known
from runtime.errors import BackendUnavailable, BindError
from runtime.executor import Executor, check_array, normalize_grad_req
from symrnn.compiled import Compiled, reshape, structure_token
from symrnn.lengths import long_length
from symrnn.lower import lower_and_infer
from symrnn.symbol import Symbol

BACKENDS = ("cpu", "reference", "cuda", "cuda-sim")
DTYPES = ("float32", "float64")


def simple_bind(symbol: Symbol, backend="cpu", grad_req="write", optimize=True, dtype=None,
                seed=0, shapes=None, where="simple_bind", *, fuse=None, cache=None) -> Executor:
    optimize = resolve_optimize(optimize, fuse, where)
    if backend not in BACKENDS:
        raise BindError(f"{where}: 'backend' must be one of {BACKENDS}, given {backend!r}")
    if dtype is not None and dtype not in DTYPES:
        raise BindError(f"{where}: 'dtype' must be one of {DTYPES}, given {dtype!r}")
    shapes = {k: tuple(v) for k, v in dict(shapes or {}).items()}
    reqs = _grad_req_key(grad_req, symbol)
    cache = {} if cache is None else cache
    key = (structure_token(symbol, cache), tuple(sorted(shapes.items())), backend, optimize,
           dtype, reqs)
    if key not in cache:
        cache[key] = Compiled(symbol, shapes, backend, optimize, dtype, grad_req, where)
    compiled = cache[key]
    ex = Executor(compiled.engine(), compiled.reqs, seed)
    ex.symbol, ex.input_names = symbol, list(shapes) if where == "simple_bind" else None
    ex.bind_shapes, ex.reshaper = shapes, partial(reshape, cache, backend, optimize, dtype)
    return ex


def _grad_req_key(grad_req, symbol: Symbol):
    """`grad_req` per argument, as a cache key; for a long sequence's lazy symbol
    (symrnn.lengths), whose arguments are not listed without building it, as given."""
    if long_length(symbol) is None:
        return tuple(sorted(normalize_grad_req(grad_req, symbol.list_arguments()).items()))
    if isinstance(grad_req, dict):
        return ("by name", tuple(sorted(grad_req.items())))
    return ("as given", tuple(grad_req) if isinstance(grad_req, list) else grad_req)


def lower_for_gradients(symbol: Symbol, grad_req, dtype, shapes, where: str):
    """`(graph, wrt, grad_req)`: the lowered graph with shapes inferred, the float arguments
    that get gradients, and `grad_req` per argument ('null' for the others)."""
    graph, _ = lower_and_infer(symbol, dict(shapes or {}), dtype, where)
    require_known(graph, where)
    reqs = normalize_grad_req(grad_req, symbol.list_arguments())
    wrt = [a for a in symbol.list_arguments() if reqs[a] != "null"
           and node(graph, a).dtype in DTYPES]
    return graph, wrt, {a: (r if a in wrt else "null") for a, r in reqs.items()}


def resolve_optimize(optimize, fuse, where: str) -> bool:
    """`optimize`, or `fuse`, its old name (kept as an alias: `fuse=False` always turned off
    every optimization, not only fusion)."""
    if fuse is not None:
        if optimize is not True and bool(optimize) != bool(fuse):
            raise BindError(f"{where}: 'fuse' is the old name of 'optimize'; given both, "
                            f"optimize={optimize!r} and fuse={fuse!r}: give one")
        optimize = fuse
    return bool(optimize)


def bind(symbol: Symbol, backend="cpu", args=None, args_grad=None, grad_req="write",
         optimize=True, seed=0, *, fuse=None) -> Executor:
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
    ex = simple_bind(symbol, backend, grad_req, resolve_optimize(optimize, fuse, "bind"), dtype,
                     seed, {n: tuple(v.shape) for n, v in args.items()}, where="bind")
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
        ex.grad_dict.adopt(n, g)


__all__ = ["BackendUnavailable", "bind", "simple_bind"]
