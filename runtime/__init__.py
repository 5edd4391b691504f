"""Program -> numbers: the Program data type, executors, the counter-based RNG, artifacts.

`runtime` imports neither `codegen` nor `symrnn`, so an exported program runs with it alone.
"""
from runtime.artifact import load  # noqa: F401
from runtime.errors import (  # noqa: F401
    ArtifactError,
    BackendUnavailable,
    BindError,
    CompileError,
    ConfigError,
    ShapeError,
    SymRNNError,
)
