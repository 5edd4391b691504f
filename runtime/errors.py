"""The error types every layer raises; `symrnn` re-exports them.

They live in `runtime` because imports run `symrnn -> codegen -> runtime`, and an exported
program must be able to raise them with `runtime` alone.
"""


class SymRNNError(Exception):
    """Base of every user-facing error: the message names the argument, the expected and the
    given value."""


class ShapeError(SymRNNError, ValueError):
    """A shape that does not fit the graph."""


class BindError(SymRNNError, ValueError):
    """A bad argument to bind, forward or backward: unknown name, dtype, layout."""


class BusyError(SymRNNError, RuntimeError):
    """An executor called while another thread's call on it is still running."""


class ConfigError(SymRNNError, ValueError):
    """A bad construction argument: a rate outside [0, 1), an empty or negative size."""


class BackendUnavailable(SymRNNError, RuntimeError):
    """The asked-for backend cannot run here; the message says which piece is missing."""


class ArtifactError(SymRNNError, ValueError):
    """An exported program that cannot be loaded: the message names the member and why."""


class CompileError(SymRNNError, RuntimeError):
    """Generated source that the system compiler refused."""


def fmt_shape(shape) -> str:
    """`(5, 3, 7)` for a shape, `?` for an unknown dimension."""
    if shape is None:
        return "(unknown)"
    if not isinstance(shape, (tuple, list)):
        return str(shape)
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
