"""The compiler: one readable list of passes, from a shaped graph to a Program.

    program = compile_graph(graph, wrt=["w"], output_names=["loss_output"])

Lowering (Symbol -> graph) happens in the front end. `SYMRNN_DEBUG=1` verifies the graph
after every pass, `2` also prints each graph, `3` also prints the generated sources.
"""
from __future__ import annotations

import gc
import os
import sys
import time
from collections import Counter
from contextlib import contextmanager

from codegen.autodiff import autodiff
from codegen.emit import emit
from codegen.graph import Graph, format_graph
from codegen.passes.batch_gemms import batch_gemms
from codegen.passes.canonicalize import canonicalize
from codegen.passes.cse import eliminate_common_subexpressions
from codegen.passes.dce import eliminate_dead_code
from codegen.passes.fold_stacks import fold_stacks
from codegen.passes.fuse import fuse_elementwise
from codegen.passes.plan_memory import plan_memory
from codegen.passes.push_views import push_views
from codegen.passes.schedule import schedule
from codegen.verify import verify_graph, verify_memory
from runtime.program import Program


def passes(wrt, fuse: bool):
    """The pipeline. `fuse=False` stops optimizing after dead-code elimination."""
    optimize = [
        ("push_views", push_views),
        ("batch_gemms", batch_gemms),
        ("fold_stacks", fold_stacks),
        ("cse", eliminate_common_subexpressions),
        ("dce", eliminate_dead_code),
    ]
    return [
        ("canonicalize", canonicalize),
        ("autodiff", lambda g: autodiff(g, wrt)),
        ("dce", eliminate_dead_code),
        *(optimize if fuse else []),
        ("fuse", lambda g: fuse_elementwise(g, fuse)),
        ("schedule", schedule),
        ("plan_memory", plan_memory),
    ]


def compile_graph(graph: Graph, wrt, output_names, fuse: bool = True,
                  target: str = "cpu") -> Program:
    with gc_paused():
        return _compile(graph, wrt, output_names, fuse, target)


@contextmanager
def gc_paused():
    """Turns the cyclic garbage collector off for a compile. Passes allocate hundreds of
    thousands of small records and dicts that stay alive, so the collector's passes over the
    growing heap would cost a tenth of the compile or more and find nothing: graphs hold no
    reference cycles, and reference counting frees what the passes drop."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compile(graph, wrt, output_names, fuse, target) -> Program:
    debug = int(os.environ.get("SYMRNN_DEBUG", "0") or 0)
    timings = {}
    g = graph
    for name, run in passes(list(wrt), fuse):
        start = time.perf_counter()
        g = run(g)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        if debug >= 1:
            verify_graph(g, name)
        if debug >= 2:
            print(f"---- after {name} ----\n{format_graph(g)}", file=sys.stderr)
    if debug >= 1:
        verify_memory(g)
    start = time.perf_counter()
    program = emit(g, list(output_names), _dtype(g))
    timings["emit"] = time.perf_counter() - start
    if debug >= 3:
        for k in program.kernels.values():
            print(k.cuda_source if target == "cuda" else k.c_source, file=sys.stderr)
    program.stats["compile_seconds"] = {k: round(v, 4) for k, v in timings.items()}
    program.stats["fused"] = bool(fuse)
    return program


def _dtype(g) -> str:
    """The most common float dtype of the nodes."""
    counts = Counter(n.dtype for n in g.records.values())
    floats = {d: counts[d] for d in counts if d in ("float32", "float64")}
    return max(set(floats), key=floats.get) if floats else "float32"
