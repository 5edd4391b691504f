"""The compiler: one readable list of passes, from a shaped graph to a Program.

    program = compile(graph, CompileOptions(wrt=("w",), output_names=("loss_output",)))
    graph, program = compile(graph, options, return_graph=True)  # the planned graph too
    grad_graph = differentiate(graph, ["w"])                     # autodiff alone

Lowering (Symbol -> graph) happens in the front end. `SYMRNN_DEBUG=1` verifies the graph
after every pass, `2` also prints each graph, `3` also prints the generated sources.
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import dataclass

from codegen.autodiff import autodiff
from codegen.emit import emit
from codegen.graph import Graph, format_graph, gc_paused
from codegen.passes.batch_gemms import batch_gemms
from codegen.passes.canonicalize import canonicalize
from codegen.passes.cse import eliminate_common_subexpressions
from codegen.passes.dce import eliminate_dead_code
from codegen.passes.fold_stacks import fold_stacks
from codegen.passes.fuse import fuse_elementwise
from codegen.passes.plan_memory import plan_memory
from codegen.passes.push_views import push_views
from codegen.passes.rematerialize import rematerialize
from codegen.passes.schedule import schedule
from codegen.passes.split_shared_parts import split_shared_parts
from codegen.roll import roll_program
from codegen.verify import verify_graph, verify_memory
from runtime.program import Program


@dataclass(frozen=True)
class CompileOptions:
    """What `compile` makes of a graph.

    - `wrt`: the arguments to differentiate with respect to (none: an inference program);
    - `output_names`: the Program's names of the graph's outputs (default: their node ids);
    - `optimize`: False stops after dead-code elimination and gives every elementary op its
      own kernel: the unrolled baseline that users compare against;
    - `target`: `cpu` or `cuda`, the rendering `SYMRNN_DEBUG=3` prints;
    - `roll`: runs of repeated steps become loop steps (codegen.roll), where `optimize`;
    - `strided_layout`: plan_memory lays each time step out at a constant stride, so that
      Programs at several lengths extend to any other (codegen.extrapolate; symrnn.lengths).
    """

    wrt: tuple[str, ...] = ()
    output_names: tuple[str, ...] | None = None
    optimize: bool = True
    target: str = "cpu"
    roll: bool = True
    strided_layout: bool = False


def passes(wrt, optimize: bool = True, strided: bool = False):
    """The pipeline. `optimize=False` stops optimizing after dead-code elimination."""
    optimizations = [
        ("push_views", push_views),
        ("batch_gemms", batch_gemms),
        ("fold_stacks", fold_stacks),
        ("cse", eliminate_common_subexpressions),
        ("dce", eliminate_dead_code),
        ("split_shared_parts", split_shared_parts),
        ("rematerialize", rematerialize),
    ]
    return [
        ("canonicalize", canonicalize),
        ("autodiff", lambda g: autodiff(g, wrt)),
        ("dce", eliminate_dead_code),
        *(optimizations if optimize else []),
        ("fuse", lambda g: fuse_elementwise(g, optimize)),
        ("schedule", schedule),
        ("plan_memory", lambda g: plan_memory(g, strided)),
    ]


def pass_names(optimize: bool = True) -> list[str]:
    """The passes' names in pipeline order, then `emit` (and `roll`, where it optimizes): the
    keys of a Program's `stats["compile_seconds"]`."""
    names = list(dict.fromkeys(name for name, _ in passes((), optimize))) + ["emit"]
    return names + ["roll"] if optimize else names


def compile(graph: Graph, options: CompileOptions = CompileOptions(), *,
            return_graph: bool = False) -> Program | tuple[Graph, Program]:
    """The Program of a shaped graph; with `return_graph`, `(planned graph, Program)`."""
    with gc_paused():
        g, program = _compile(graph, options)
    return (g, program) if return_graph else program


def differentiate(graph: Graph, wrt) -> Graph:
    """`graph` with gradient nodes for the arguments `wrt` (`g.graph["grads"]`)."""
    with gc_paused():
        return autodiff(graph, list(wrt))


def _compile(graph: Graph, options: CompileOptions) -> tuple[Graph, Program]:
    debug = int(os.environ.get("SYMRNN_DEBUG", "0") or 0)
    timings: dict[str, float] = {}
    g = graph
    for name, run in passes(list(options.wrt), options.optimize, options.strided_layout):
        start = time.perf_counter()
        g = run(g)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        if debug >= 1:
            verify_graph(g, name)
        if debug >= 2:
            print(f"---- after {name} ----\n{format_graph(g)}", file=sys.stderr)
    if debug >= 1:
        verify_memory(g)
    names = options.output_names
    start = time.perf_counter()
    program = emit(g, list(graph.graph["outputs"] if names is None else names), _dtype(g))
    timings["emit"] = time.perf_counter() - start
    if options.optimize and options.roll:
        start = time.perf_counter()
        program = roll_program(program)
        timings["roll"] = time.perf_counter() - start
    if debug >= 3:
        for k in program.kernels.values():
            print(k.cuda_source if options.target == "cuda" else k.c_source, file=sys.stderr)
    program.stats["compile_seconds"] = {k: round(v, 4) for k, v in timings.items()}
    program.stats["fused"] = bool(options.optimize)  # the artifact's key: kept
    return g, program


def _dtype(g) -> str:
    """The most common float dtype of the nodes."""
    counts = Counter(n.dtype for n in g.records.values())
    floats = {d: counts[d] for d in counts if d in ("float32", "float64")}
    return max(set(floats), key=floats.get) if floats else "float32"
