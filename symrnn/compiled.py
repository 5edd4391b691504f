"""What binding compiles, cached, and `Executor.reshape` on top of it.

`simple_bind` keeps one `Compiled` per (symbol structure, shapes, backend, optimize, dtype,
grad_req) in a cache shared by an executor and every executor reshaped from it, so that a
reshape to shapes seen before builds its engine without compiling again.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import codegen
from codegen.reference import ReferenceEngine
from runtime.engines import make_engine, prepare
from runtime.errors import BindError, SymRNNError, fmt_shape
from runtime.executor import Executor, normalize_grad_req
from symrnn.lengths import Sampled, long_length, sample_lengths
from symrnn.symbol import Symbol


def structure_token(symbol: Symbol, cache: dict) -> int:
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
    """The graph and programs of one bind, and fresh engines over them."""

    def __init__(self, symbol, shapes, backend, optimize, dtype, reqs, where):
        self.backend = backend
        self._programs: dict = {}
        self._bind = (symbol, shapes, dtype, reqs, where)
        if backend == "cuda":
            from runtime.cuda.device import default_device

            default_device()  # fails fast, naming the missing piece, before compiling
        self._building = prepare(backend, [dtype or "float32"])  # while the passes run
        self._kernels_started = False
        try:
            if not (optimize and backend != "reference" and self._long(optimize)):
                self._lower(symbol, optimize)
                self.program(training=True)
        except BaseException:
            self._built()
            raise

    def _built(self) -> None:
        """Waits for what `prepare` started (no thread outlives the bind, to a fork)."""
        for thread in self._building:
            thread.join()
        self._building = []

    def _first_program(self, program) -> None:
        """The first short program of a long sequence: its kernels start compiling."""
        if not self._kernels_started:
            self._kernels_started = True
            self._building += prepare(self.backend, (), program)

    def _lower(self, symbol, optimize) -> None:
        """The graph at the bound length (compiled on demand), and what gets gradients."""
        from symrnn.bind import lower_for_gradients

        _, shapes, dtype, reqs, where = self._bind
        self.output_names = symbol.list_outputs()
        self.graph, self.wrt, self.reqs = lower_for_gradients(symbol, reqs, dtype, shapes,
                                                              where)
        self.options = self._options(optimize)

    def _options(self, optimize) -> codegen.CompileOptions:
        target = "cpu" if self.backend == "cpu" else "cuda"
        return codegen.CompileOptions(tuple(self.wrt), tuple(self.output_names), optimize,
                                      target)

    def _long(self, optimize) -> bool:
        """A long sequence (symrnn.lengths): its training program extrapolated from three short
        lengths, not compiled at T; False where it does not extend (then it is compiled at T).
        The inference program is extrapolated too, or else compiled at T on first use."""
        symbol, shapes, dtype, reqs, where = self._bind
        if long_length(symbol) is None:
            return False
        try:
            sampled = Sampled(symbol, long_length(symbol), shapes, dtype, where)
        except SymRNNError:
            return False
        from symrnn.bind import DTYPES

        small, graph = sampled._small(sample_lengths(sampled.length)[0])
        self.output_names = small.list_outputs()
        reqs = normalize_grad_req(reqs, small.list_arguments())
        self.wrt = [a for a in small.list_arguments() if reqs[a] != "null"
                    and codegen.node(graph, a).dtype in DTYPES]
        self.reqs = {a: (r if a in self.wrt else "null") for a, r in reqs.items()}
        self.options, self.graph, self._sampled = self._options(optimize), None, sampled
        train = sampled.program(self.options, self._first_program)
        if train is None:
            return False
        self._programs[True] = train
        return True

    def _compile(self, options):
        if self.graph is None:  # a long sequence: extrapolated, or compiled at T
            found = self._sampled.program(options)
            if found is not None:
                return found
            self._lower(self._bind[0], options.optimize)
            options = replace(self.options, wrt=options.wrt)
        return codegen.compile(self.graph, options)

    def program(self, training: bool):
        """The compiled training (wrt the gradients' arguments) or inference program; for
        the reference backend, the differentiated graph."""
        if training not in self._programs:
            if self.backend == "reference":
                self._programs[training] = codegen.differentiate(self.graph, self.wrt)
            else:
                options = self.options if training else replace(self.options, wrt=())
                self._programs[training] = self._compile(options)
        return self._programs[training]

    def engine(self):
        """A fresh engine (its own arena) over the cached programs: one for training and,
        built on first use, a forward-only one for inference."""
        if self.backend == "reference":
            return ReferenceEngine(self.program(True), self.output_names)
        infer = partial(self.program, False) if self.wrt else None  # compiled on first use
        try:
            return make_engine(self.backend, self.program(True), infer)
        finally:
            self._built()


def reshape(cache, backend, optimize, dtype, ex: Executor, shapes: dict) -> Executor:
    """`ex.reshape(**shapes)` (runtime.executor): `symbol=` (optional) is the graph to bind
    instead of `ex.symbol` (the same network unrolled to another length, say); the other
    shapes update those `ex` was bound with, states re-inferred. Arguments whose shape and
    dtype do not change share `ex`'s arrays, and their gradients `ex`'s gradient arrays; any
    other argument not named in `shapes` is refused unless `partial_shaping=True`."""
    from symrnn.bind import simple_bind
    from symrnn.model import state_args

    shapes = dict(shapes)
    symbol = shapes.pop("symbol", None) or ex.symbol
    partial_shaping = shapes.pop("partial_shaping", False)
    if not isinstance(symbol, Symbol):
        raise BindError(f"reshape: 'symbol' must be a Symbol, given {type(symbol).__name__}")
    names = symbol.list_arguments()
    states = set(state_args(symbol))
    base = {k: v for k, v in ex.bind_shapes.items()
            if k in names and k not in states and k not in shapes}
    reqs = {n: ex.grad_req.get(n, "null") for n in names}
    if len(set(reqs.values())) == 1:  # as a bind would give it: the same cache key for a
        reqs = next(iter(reqs.values()))  # long sequence, whose requests stay as given
    new = simple_bind(symbol, backend, reqs, optimize, dtype, ex.seed, {**base, **shapes},
                      where="reshape", cache=cache)
    new.input_names = ex.input_names
    if not partial_shaping:
        _require_shared(new, ex, set(shapes) | states)
    _share_arrays(new, ex, set(shapes))
    return new


def _require_shared(new: Executor, old: Executor, named: set) -> None:
    """As MXNet's `reshape`: an argument not named in the shapes (nor a state) that the new
    executor could not share (its shape or dtype changed, or the old one has no such
    argument) would start from zeros; that is refused unless `partial_shaping=True`."""
    for n, mine in new.arg_dict.items():
        theirs = old.arg_dict.get(n)
        if n in named or (theirs is not None and theirs.shape == mine.shape
                          and theirs.dtype == mine.dtype):
            continue
        was = "no such argument" if theirs is None else f"{fmt_shape(theirs.shape)} " \
            f"{theirs.dtype}"
        raise BindError(f"reshape: argument {n!r} would be {fmt_shape(mine.shape)} "
                        f"{mine.dtype}, but the executor being reshaped has {was}, so it "
                        f"could not be shared and would start from zeros; name it in the "
                        f"shapes, or pass partial_shaping=True to allow this")


def _share_arrays(new: Executor, old: Executor, reshaped: set) -> None:
    for n, v in old.arg_dict.items():
        mine = new.arg_dict.get(n)
        if n in reshaped or mine is None or mine.shape != v.shape or mine.dtype != v.dtype:
            continue
        new.arg_dict.adopt(n, v)
        if n in new.grad_dict and n in old.grad_dict:
            new.grad_dict.adopt(n, old.grad_dict[n])
