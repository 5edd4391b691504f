"""Long sequences: symbols that rebuild themselves at another length, and binding them.

`RNNFactory.step` over a `(T, N, I)` symbol of LAZY_FROM steps or more returns symbols whose
nodes are `LazyNode`s of one `Recipe`: how to build the stack at any length. Nothing of the T
steps exists until something reads a node (then the whole sequence is built once, in place).

Binding such a symbol for a compiled backend (`simple_bind` and `bind`, optimize=True) does
not build it: the symbol is rebuilt at three short lengths (the user's own nodes on top of the
stack copied, under the same names), each compiled and rolled as usual, and
codegen.extrapolate writes the Program at T from them. Compile time and the compiler's memory
do not grow with T; the arena does. Where that does not apply (the reference backend,
optimize=False, arguments whose shapes do not follow T, Programs that are not affine in T, as
yet those of a bidirectional stack with `sequence_length`), the symbol is built and compiled
at T as before. Every kind of cell, dropout and zoneout (their per-step masks' stream ids
move by one per step: symrnn.ops.step_mask_id), bidirectional layers (the reverse direction's
loops run with negative strides) and variable lengths extrapolate.
"""
from __future__ import annotations

from dataclasses import replace

from codegen import CompileOptions, compile, require_known
from codegen.extrapolate import extrapolate
from runtime.errors import SymRNNError
from symrnn.lower import lower_and_infer
from symrnn.symbol import LazyNode, Symbol, SymNode

LAZY_FROM = 64  # steps: shorter sequences are built at once
SAMPLE_FROM = 12  # the shortest length sampled: past the first steps' own layouts
# the sampled lengths' spacing, tried in turn: 2, as layouts may alternate between two
# buffers from one step to the next; then plan_memory's alignment (16 elements), along which
# the rounded sizes of T-long values are affine in T whatever the step's size
PERIODS = (2, 16)


class Recipe:
    """`build(length) -> [(node, index)]`: the outputs of a sequence built at `length`."""

    def __init__(self, build, length: int):
        self.build, self.length = build, length
        self.lazy: list[LazyNode] = []

    def outputs(self, example: list) -> list[Symbol]:
        """One lazy single-output symbol per output, shaped as `example` (the outputs built
        at some short length): one lazy node per distinct node there."""
        first: dict[int, LazyNode] = {}
        for k, (n, _) in enumerate(example):
            if id(n) not in first:
                first[id(n)] = LazyNode(self, k)
        self.lazy = list(first.values())
        return [Symbol([(first[id(n)], i)]) for n, i in example]

    def materialize(self) -> None:
        """Builds the sequence at its length; each lazy node becomes its output, and the
        built nodes that read an output read the lazy node instead."""
        outs = self.build(self.length)
        built = [outs[lazy.position][0] for lazy in self.lazy]
        stand_in = {id(b): lazy for b, lazy in zip(built, self.lazy)}
        for lazy, b in zip(self.lazy, built):
            lazy.become(b)
        for n in Symbol([(lazy, 0) for lazy in self.lazy]).topo_nodes():
            if any(id(src) in stand_in for src, _ in n.inputs):
                n.inputs = [(stand_in.get(id(src), src), i) for src, i in n.inputs]


def recipes_of(symbol: Symbol) -> set | None:
    """The recipes whose lazy nodes `symbol` reads (None if none), found without building
    them: the walk stops at lazy nodes."""
    found, seen = set(), set()
    stack = [n for n, _ in symbol._outputs]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, LazyNode):
            found.add(n.recipe)
        else:
            stack.extend(src for src, _ in n.inputs)
    return found or None


def at_length(symbol: Symbol, length: int) -> Symbol:
    """`symbol` with each recipe built at `length`; the nodes above them copied."""
    copies: dict[int, SymNode] = {}
    built: dict[int, list] = {}

    def copy(n):
        if id(n) in copies:
            return copies[id(n)]
        if isinstance(n, LazyNode):
            r = n.recipe
            if id(r) not in built:
                built[id(r)] = r.build(length)
            out = built[id(r)][n.position][0]
        elif n.op == "var":
            out = n
        else:
            out = SymNode(n.op, n.name, n.attrs, [(copy(s), i) for s, i in n.inputs],
                          n.num_outputs)
        copies[id(n)] = out
        return out

    order = _nodes_above(symbol)
    for n in order:
        copy(n)
    return Symbol([(copy(n), i) for n, i in symbol._outputs])


def _nodes_above(symbol: Symbol) -> list:
    """The nodes down to (and including) the lazy ones, inputs first."""
    return symbol.topo_nodes(stop=lambda n: isinstance(n, LazyNode))


def sample_lengths(length: int, period: int = PERIODS[0]) -> list[int]:
    """Three short lengths, `period` apart, from which `length` is reached in such steps."""
    first = SAMPLE_FROM + (length - SAMPLE_FROM) % period
    return [first + k * period for k in range(3)]


def long_length(symbol: Symbol) -> int | None:
    """T, where `symbol` reads lazy sequences (all of one length) long enough to sample."""
    recipes = recipes_of(symbol)
    if not recipes or len({r.length for r in recipes}) != 1:
        return None
    (length,) = {r.length for r in recipes}
    return length if length > sample_lengths(length, PERIODS[-1])[-1] else None


class Sampled:
    """The short graphs of a long symbol, and the Programs extrapolated from them."""

    def __init__(self, symbol: Symbol, length: int, shapes: dict, dtype, where: str):
        self.long, self.length, self.shapes = symbol, length, shapes
        self.dtype, self.where = dtype, where
        self.graphs: dict = {}
        self.symbol = self._small(sample_lengths(length)[0])[0]  # names its arguments and
        # outputs as the long one does

    def _small(self, t: int) -> tuple:
        """(the symbol at length `t`, its graph)."""
        if t not in self.graphs:
            small = at_length(self.long, t)
            scaled = {k: _scaled(v, self.length, t) for k, v in self.shapes.items()}
            graph, _ = lower_and_infer(small, scaled, self.dtype, self.where)
            require_known(graph, self.where)
            self.graphs[t] = small, graph
        return self.graphs[t]

    def program(self, options: CompileOptions, seen=None):
        """The Program at T, or None where the short ones do not extend. `seen(program)`,
        if given, gets each short program as it is compiled (symrnn.compiled starts
        compiling the kernels from the first)."""
        options = replace(options, strided_layout=True)
        for period in PERIODS:
            try:
                programs = [(t, _seen(self._compile(t, options), seen))
                            for t in sample_lengths(self.length, period)]
            except SymRNNError:
                return None
            found = extrapolate(programs, self.length)
            if found is not None:
                return found
        return None

    def _compile(self, t: int, options: CompileOptions):
        """The Program at length `t`, its outputs under the names the symbol at `t` gives
        them (a head may name its step, `rnn_l0_t11_h`: extrapolated along with the rest)."""
        small, graph = self._small(t)
        return compile(graph, replace(options, output_names=tuple(small.list_outputs())))


def _seen(program, seen):
    if seen is not None:
        seen(program)
    return program


def _scaled(shape, length: int, t: int):
    """A time-major shape at length `t` (shapes not led by T stay)."""
    shape = tuple(shape)
    return (t, *shape[1:]) if shape and shape[0] == length else shape
