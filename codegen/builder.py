"""The graph-building API: how the front end lowers symbols and how vjp rules add nodes.

`codegen` never imports `symrnn`; the front end drives this builder instead.

    >>> b = Builder()
    >>> x = b.var("x", (2, 3))
    >>> y = b.add("tanh", [x], "y")
    >>> b.shape_of(y)
    (2, 3)
"""
from __future__ import annotations

import networkx as nx

from codegen.graph import add_node, make_node, new_graph
from codegen.ops import OPS, Mismatch
from runtime.errors import ShapeError, fmt_shape

FLOAT_DTYPES = ("float32", "float64")


class Builder:
    def __init__(self, g: nx.DiGraph | None = None):
        self.g = new_graph() if g is None else g

    def var(self, name: str, shape=None, dtype: str = "float32", **attrs) -> str:
        if shape is not None:
            shape = tuple(None if d in (0, None) else int(d) for d in shape)
        return add_node(self.g, name, make_node("var", (), shape, dtype, attrs))

    def add(self, op: str, inputs, name: str, **attrs) -> str:
        """Adds `name = op(*inputs)`; computes its shape when its inputs' shapes allow."""
        if op not in OPS:
            raise ValueError(f"internal: unknown op {op!r}")
        inputs = list(inputs)
        shapes = [self.shape_of(i) for i in inputs]
        node = make_node(op, inputs, None, self._dtype(op, inputs, attrs), attrs)
        try:
            _, out = OPS[op].shape(node.attr_dict, shapes, None)
        except Mismatch as e:
            raise ShapeError(
                f"'{name}' ({op}): {e.what}: expected {fmt_shape(e.expected)}, "
                f"given {fmt_shape(e.given)}") from None
        return add_node(self.g, name, node.with_(shape=out))

    def shape_of(self, nid: str):
        return self.g.nodes[nid]["node"].shape

    def dtype_of(self, nid: str) -> str:
        return self.g.nodes[nid]["node"].dtype

    def _dtype(self, op, inputs, attrs) -> str:
        if "dtype" in attrs:
            return attrs["dtype"]
        if OPS[op].dtype_input is not None:
            return self.dtype_of(inputs[OPS[op].dtype_input])
        for i in inputs:
            if self.dtype_of(i) in FLOAT_DTYPES:
                return self.dtype_of(i)
        return "float32"

    def set_outputs(self, outputs) -> None:
        self.g.graph["outputs"] = tuple(outputs)
