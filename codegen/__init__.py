"""Graph -> program: the op table, shape inference, autodiff, passes, renderers and the
reference interpreter. Never imports `symrnn`.

The surface the front end uses: `Builder` and `infer_shapes` to lower a symbol into a graph,
`compile(graph, CompileOptions(...))` for a Program, `differentiate(graph, wrt)` for the
gradient graph the reference interpreter runs.
"""
from codegen.autodiff import autodiff  # noqa: F401  (the pass; `differentiate` is the surface)
from codegen.builder import Builder  # noqa: F401
from codegen.graph import Graph, gc_paused, node  # noqa: F401
from codegen.interpreter import EvalContext, evaluate  # noqa: F401
from codegen.pipeline import CompileOptions, compile, differentiate, pass_names  # noqa: F401
from codegen.shapes import infer_shapes, require_known  # noqa: F401
