"""Weights and models in and out of symrnn: ONNX export, PyTorch and MXNet parameters.

    >>> import symrnn as sym
    >>> from symrnn.interop import find_cells
    >>> out = sym.RNNFactory([4], data_dim=3, typ="gru").step(
    ...     sym.Variable("data"), seq_len=2, ret_typ="out")[-1]
    >>> [c.typ for c in find_cells(out)]
    ['gru']

`import symrnn.interop` needs neither onnx nor torch: each is imported when first used.
"""
from symrnn.interop.errors import InteropError, UnsupportedExport
from symrnn.interop.mxnet import from_mxnet_params, read_mxnet_params
from symrnn.interop.onnx_export import export_onnx
from symrnn.interop.pytorch import from_torch, to_torch
from symrnn.interop.structure import Cell, find_cells

__all__ = ["Cell", "InteropError", "UnsupportedExport", "export_onnx", "find_cells",
           "from_mxnet_params", "from_torch", "read_mxnet_params", "to_torch"]
