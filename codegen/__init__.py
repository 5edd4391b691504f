"""Graph -> program: the op table, shape inference, autodiff, passes, renderers and the
reference interpreter. Never imports `symrnn`."""
from codegen.autodiff import autodiff  # noqa: F401
from codegen.builder import Builder  # noqa: F401
from codegen.interpreter import EvalContext, evaluate  # noqa: F401
from codegen.shapes import infer_shapes, require_known  # noqa: F401
