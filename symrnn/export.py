"""`symrnn.export`: a symbol (or a bound executor) to one artifact zip that `runtime` runs alone.

    >>> import symrnn as sym, runtime
    >>> rnn = sym.RNNFactory(num_hidden=[8], data_dim=5, name="lstm")      # doctest: +SKIP
    >>> out = rnn.step(sym.Variable("data"), seq_len=4, ret_typ="out")[-1]  # doctest: +SKIP
    >>> sym.export(out, "lstm.zip", params=weights, data=(4, 3, 5))          # doctest: +SKIP
    >>> ex = runtime.load("lstm.zip")                                        # doctest: +SKIP

The format (members, manifest, checksums, signing, what the loader refuses) is
runtime.artifact's. A symbol is compiled to its Program(s) and those are written as they are:
no engine is bound and no C compiler is needed (except for `verify=True`, which runs the
artifact). Programs are target-independent: the loader renders each kernel's C or CUDA from
the IR the artifact carries, so the same file runs on `runtime.load(path, backend="cuda")`.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from runtime.artifact import export_executor, save
from runtime.errors import ArtifactError, BindError
from runtime.executor import Executor, check_array


def export(symbol, path, params: dict | None = None, grad_req="write", optimize: bool = True,
           dtype: str | None = None, seed: int = 0, verify: bool = False, key=None,
           fuse: bool | None = None, **shapes) -> dict:
    """Compiles `symbol` for the input `shapes` (as `simple_bind` does), sets the argument
    values in `params` ({name: array}; others stay zero) and writes the artifact to `path`.
    Returns the manifest. `grad_req` other than 'null' also exports the training program;
    `key` (bytes) signs the artifact, so that `runtime.load(path, key=key)` accepts it.

    An `Executor` may be given in place of the symbol: it is written as it stands (its
    program(s) and current argument values); `params` then overrides argument values first.

    `verify=True` loads the written file back with `runtime.load` and checks that an inference
    forward on the current arguments gives bit-identical outputs (ArtifactError otherwise).
    """
    from symrnn import __version__

    if isinstance(symbol, Executor):
        if shapes:
            raise TypeError(f"export: an executor is already bound; shapes "
                            f"{sorted(shapes)} cannot be given with it")
        if params:
            symbol.copy_params_from(params)
        manifest = export_executor(symbol, path, producer=__version__, key=key)
        programs, args = _programs_of(symbol), symbol.arg_dict
    else:
        from symrnn.bind import resolve_optimize

        optimize = resolve_optimize(optimize, fuse, "export")
        programs, reqs = compile_programs(symbol, grad_req, optimize, dtype, shapes)
        args = _values(programs["train"], params or {})
        manifest = save(path, programs, args, symbol_json=symbol.tojson(),
                        producer=__version__, inputs=list(shapes), grad_req=reqs, seed=seed,
                        key=key)
    if verify:
        _verify(programs, args, path, key)
    return manifest


def compile_programs(symbol, grad_req, optimize: bool, dtype, shapes: dict):
    """`({"train": Program, "infer": Program or None}, grad_req)` for `symbol`, as
    simple_bind compiles them for the CPU, without binding an engine."""
    import codegen
    from symrnn.bind import DTYPES, lower_for_gradients

    if dtype is not None and dtype not in DTYPES:
        raise BindError(f"export: 'dtype' must be one of {DTYPES}, given {dtype!r}")
    graph, wrt, reqs = lower_for_gradients(symbol, grad_req, dtype, shapes, "export")
    options = codegen.CompileOptions(tuple(wrt), tuple(symbol.list_outputs()), optimize, "cpu")
    train = codegen.compile(graph, options)
    infer = codegen.compile(graph, replace(options, wrt=())) if wrt else None
    return {"train": train, "infer": infer}, reqs


def _values(program, params: dict) -> dict:
    """Every argument of `program`: zeros, with the arrays of `params` copied in."""
    args = {n: np.zeros(s, d) for n, (s, d) in program.args.items()}
    for name, value in params.items():
        if name not in args:
            raise BindError(f"export: params names {name!r}, which is not an argument; the "
                            f"arguments are {list(args)}")
        spec = program.args[name]
        np.copyto(args[name], check_array("export", name, value, *spec), casting="unsafe")
    return args


def _programs_of(ex: Executor) -> dict:
    engine = ex.engine
    if hasattr(engine, "train") and hasattr(engine, "infer"):
        return {"train": engine.train.program, "infer": engine.infer.program}
    return {"train": engine.program, "infer": None}


def _verify(programs: dict, args: dict, path, key) -> None:
    """Runs the written artifact and the programs it was written from (on the CPU engine):
    their inference outputs must be bit-identical."""
    from runtime.artifact import load
    from runtime.cpu import CpuEngine

    source = programs["infer"] or programs["train"]
    want = CpuEngine(source).forward(args, False, 0)
    loaded = load(path, key=key)
    got = loaded.forward(is_train=False)
    for name, a, b in zip(loaded.output_names, want, got):
        if not np.array_equal(a, b, equal_nan=True):
            raise ArtifactError(f"export: {str(path)!r} was written, but output {name!r} of "
                                f"the loaded program differs from the executor's (largest "
                                f"difference {float(np.nanmax(np.abs(a - b)))})")
