"""Binding: Symbol + shapes + backend -> Executor.

`reference` interprets the graph with numpy; `cpu` (the default) and `cuda` run a compiled
Program.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

import codegen
from codegen import node, require_known
from codegen.reference import ReferenceEngine
from runtime.errors import BackendUnavailable, BindError, SymRNNError
from runtime.executor import Executor, check_array, normalize_grad_req
from symrnn.lengths import Sampled, long_length, sample_lengths
from symrnn.lower import lower_and_infer
from symrnn.symbol import Symbol

BACKENDS = ("cpu", "reference", "cuda")
DTYPES = ("float32", "float64")


def simple_bind(symbol: Symbol, backend="cpu", grad_req="write", optimize=True, dtype=None,
                seed=0, shapes=None, where="simple_bind", *, fuse=None) -> Executor:
    optimize = resolve_optimize(optimize, fuse, where)
    if backend not in BACKENDS:
        raise BindError(f"{where}: 'backend' must be one of {BACKENDS}, given {backend!r}")
    if dtype is not None and dtype not in DTYPES:
        raise BindError(f"{where}: 'dtype' must be one of {DTYPES}, given {dtype!r}")
    if optimize and backend != "reference" and long_length(symbol) is not None:
        ex = _bind_long(symbol, backend, grad_req, dtype, seed, dict(shapes or {}), where)
        if ex is not None:
            return ex
    graph, _ = lower_and_infer(symbol, dict(shapes or {}), dtype, where)
    require_known(graph, where)
    reqs = normalize_grad_req(grad_req, symbol.list_arguments())
    wrt = [a for a in symbol.list_arguments() if reqs[a] != "null"
           and node(graph, a).dtype in DTYPES]
    reqs = {a: (r if a in wrt else "null") for a, r in reqs.items()}
    engine = make_engine(backend, graph, wrt, symbol.list_outputs(), optimize)
    ex = Executor(engine, reqs, seed)
    ex.symbol, ex.input_names = symbol, list(shapes or ()) if where == "simple_bind" else None
    return ex


def _bind_long(symbol, backend, grad_req, dtype, seed, shapes, where) -> Executor | None:
    """A long sequence's executor from Programs extrapolated from short lengths
    (symrnn.lengths), or None where they do not extend: then `symbol` is compiled at T."""
    try:
        sampled = Sampled(symbol, long_length(symbol), shapes, dtype, where)
    except SymRNNError:
        return None
    small, graph = sampled._small(sample_lengths(sampled.length)[0])
    reqs = normalize_grad_req(grad_req, small.list_arguments())
    wrt = [a for a in small.list_arguments() if reqs[a] != "null"
           and node(graph, a).dtype in DTYPES]
    reqs = {a: (r if a in wrt else "null") for a, r in reqs.items()}

    def program(options):
        found = sampled.program(options)
        if found is None and not options.wrt:  # the inference program, asked for later
            full, _ = lower_and_infer(symbol, shapes, dtype, where)
            return codegen.compile(full, options)
        return found

    train = program(_options(backend, wrt, small.list_outputs(), True))
    if train is None:
        return None
    engine = make_engine(backend, None, wrt, small.list_outputs(), True,
                         lambda options: train if options.wrt == tuple(wrt) else program(options))
    ex = Executor(engine, reqs, seed)
    ex.symbol, ex.input_names = symbol, list(shapes) if where == "simple_bind" else None
    return ex


def _options(backend, wrt, output_names, optimize) -> codegen.CompileOptions:
    return codegen.CompileOptions(tuple(wrt), tuple(output_names), optimize,
                                  "cuda" if backend == "cuda" else "cpu")


def resolve_optimize(optimize, fuse, where: str) -> bool:
    """`optimize`, or `fuse`, its old name (kept as an alias: `fuse=False` always turned off
    every optimization, not only fusion)."""
    if fuse is not None:
        if optimize is not True and bool(optimize) != bool(fuse):
            raise BindError(f"{where}: 'fuse' is the old name of 'optimize'; given both, "
                            f"optimize={optimize!r} and fuse={fuse!r}: give one")
        optimize = fuse
    return bool(optimize)


def make_engine(backend, graph, wrt, output_names, optimize=True, compile_program=None):
    """The engine for `backend`: the reference interpreter, or compiled programs — one for
    training and, built on first use, a forward-only one for inference.
    `compile_program(options)` makes them (default: codegen.compile of `graph`)."""
    if backend == "reference":
        return ReferenceEngine(codegen.differentiate(graph, wrt), output_names)
    if backend == "cpu":
        from runtime.cpu import CpuEngine as Engine
    else:
        from runtime.cuda import CudaEngine as Engine
        from runtime.cuda_device import default_device

        default_device()  # fails fast, naming the missing piece, before compiling
    from runtime.dual import DualEngine

    if compile_program is None:
        def compile_program(options):
            return codegen.compile(graph, options)
    options = _options(backend, wrt, output_names, optimize)
    train = Engine(compile_program(options))
    if not wrt:
        return train
    return DualEngine(train, lambda: Engine(compile_program(replace(options, wrt=()))))


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
        ex.grad_dict[n] = g


__all__ = ["BackendUnavailable", "bind", "simple_bind"]
