"""The graph-building API: how the front end lowers symbols and how vjp rules add nodes.

`codegen` never imports `symrnn`; the front end drives this builder instead.

    >>> b = Builder()
    >>> x = b.var("x", (2, 3))
    >>> y = b.add("tanh", [x], "y")
    >>> b.shape_of(y)
    (2, 3)
"""
from __future__ import annotations

from codegen.graph import Graph, Node, add_node, freeze, make_node, new_graph, node
from codegen.ops import OPS, Mismatch
from runtime.errors import ShapeError, fmt_shape

FLOAT_DTYPES = ("float32", "float64")


class Builder:
    def __init__(self, g: Graph | None = None):
        self.g = new_graph() if g is None else g

    def var(self, name: str, shape=None, dtype: str = "float32", **attrs) -> str:
        if shape is not None:
            shape = tuple(None if d in (0, None) else int(d) for d in shape)
        return add_node(self.g, name, make_node("var", (), shape, dtype, attrs))

    def add(self, op: str, inputs, name: str, **attrs) -> str:
        """Adds `name = op(*inputs)`; computes its shape when its inputs' shapes allow."""
        spec = OPS.get(op)
        if spec is None:
            raise ValueError(f"internal: unknown op {op!r}")
        inputs = tuple(inputs)
        records = [node(self.g, i) for i in inputs]
        dtype = self._dtype(spec, records, attrs)
        frozen = freeze(attrs) if attrs else ()
        try:
            _, out = spec.shape(dict(frozen), [r.shape for r in records], None)
        except Mismatch as e:
            raise ShapeError(
                f"'{name}' ({op}): {e.what}: expected {fmt_shape(e.expected)}, "
                f"given {fmt_shape(e.given)}") from None
        return add_node(self.g, name, Node(op, inputs, frozen, out, dtype))

    def shape_of(self, nid: str):
        return node(self.g, nid).shape

    def dtype_of(self, nid: str) -> str:
        return node(self.g, nid).dtype

    @staticmethod
    def _dtype(spec, records, attrs) -> str:
        if "dtype" in attrs:
            return attrs["dtype"]
        if spec.dtype_input is not None:
            return records[spec.dtype_input].dtype
        for r in records:
            if r.dtype in FLOAT_DTYPES:
                return r.dtype
        return "float32"

    def set_outputs(self, outputs) -> None:
        self.g.graph["outputs"] = tuple(outputs)
