"""symrnn: a compiler for stacked recurrent networks.

    >>> import symrnn as sym
    >>> x = sym.Variable("x")
    >>> ex = sym.tanh(x).simple_bind(backend="reference", x=(2, 3))
"""
from runtime.errors import (  # noqa: F401
    ArtifactError,
    BackendUnavailable,
    BindError,
    BusyError,
    CompileError,
    ConfigError,
    ShapeError,
    SymRNNError,
)
from runtime.executor import Executor
from symrnn.ops import *
from symrnn.rnn import *
from symrnn.symbol import Group, Symbol, Variable, load, load_json  # noqa: F401

__version__ = "0.1.0"
from symrnn import optim  # noqa: F401
from symrnn.compare import compare  # noqa: F401
from symrnn.export import export  # noqa: F401
from symrnn.interop.onnx_export import export_onnx as _export_onnx
from symrnn.model import (  # noqa: F401
    CharLM,
    bind_model,
    dense,
    embedding,
    init_params,
    softmax_ce_mean,
    state_links,
)
from symrnn.optim import SGD, Adam, clip_global_norm  # noqa: F401
from symrnn.parallel import DataParallel  # noqa: F401
from symrnn.train import batchify, evaluate, train  # noqa: F401

Executor.export_onnx = _export_onnx  # runtime knows no symbols: attached from the symrnn side
