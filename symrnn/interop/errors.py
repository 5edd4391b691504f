"""Errors of the interop layer: both are `SymRNNError`s, so `except SymRNNError` catches them."""
from runtime.errors import SymRNNError


class InteropError(SymRNNError, ValueError):
    """Weights or a model from elsewhere that do not fit the executor (sizes, configuration,
    a truncated file); the message names the argument, what was expected and what was given."""


class UnsupportedExport(InteropError):
    """Part of a symbol that has no faithful form in the target format (a loss in ONNX)."""
