"""Lowering, the compiler's first pass: Symbol -> codegen graph, through codegen's builder.

Nodes keep the user's names. A multi-output `split` becomes one `slice` per output (and a
`reshape` when it squeezes the axis), named `{name}_output{i}`.
"""
from __future__ import annotations

from codegen import Builder, Graph, gc_paused, infer_shapes, node
from runtime.errors import BindError, SymRNNError
from symrnn.symbol import Symbol, SymNode

FLOATS = ("float32", "float64")


def lower(symbol: Symbol, dtype: str | None = None) -> tuple[Graph, list[str]]:
    """The graph of `symbol` and the ids of its outputs. `dtype` overrides float variables."""
    b = Builder()
    ids: dict[int, list[str]] = {}
    vars_: dict[str, SymNode] = {}
    for n in symbol.topo_nodes():
        if n.op == "var":
            ids[id(n)] = [_lower_var(b, n, vars_, dtype)]
        else:
            if n.name in b.g:
                raise SymRNNError(f"bind: two different nodes are named {n.name!r}; "
                                  f"give one of them another name")
            ins = [ids[id(src)][i] for src, i in n.inputs]
            ids[id(n)] = _lower_op(b, n, ins)
    outputs = [ids[id(n)][i] for n, i in symbol._outputs]
    b.set_outputs(outputs)
    return b.g, outputs


def lower_and_infer(symbol: Symbol, shapes: dict, dtype=None, where="bind"):
    with gc_paused():  # as codegen's compile: many small records, no cycles
        return _lower_and_infer(symbol, shapes, dtype, where)


def _lower_and_infer(symbol, shapes, dtype, where):
    graph, outputs = lower(symbol, dtype)
    unknown = [k for k in shapes if k not in graph or node(graph, k).op != "var"]
    if unknown:
        raise BindError(f"{where}: {unknown[0]!r} is not an argument of the symbol; the "
                          f"arguments are {symbol.list_arguments()}")
    return infer_shapes(graph, shapes, where), outputs


def _lower_var(b: Builder, n: SymNode, seen: dict, dtype) -> str:
    if n.name in seen:
        if seen[n.name].attrs != n.attrs:
            raise SymRNNError(f"bind: two variables are named {n.name!r} with different "
                              f"attributes {seen[n.name].attrs} and {n.attrs}")
        return n.name
    if n.name in b.g:
        raise SymRNNError(f"bind: the variable {n.name!r} has the name of an op node")
    seen[n.name] = n
    attrs = {k: v for k, v in n.attrs.items() if k not in ("shape", "dtype")}
    own = n.attrs.get("dtype", "float32")
    return b.var(n.name, n.attrs.get("shape"), dtype if dtype and own in FLOATS else own,
                 **attrs)


def _lower_op(b: Builder, n: SymNode, ins: list[str]) -> list[str]:
    if n.op != "split":
        return [b.add(n.op, ins, n.name, **n.attrs)]
    return _lower_split(b, n, ins[0])


def _lower_split(b: Builder, n: SymNode, src: str) -> list[str]:
    k = n.num_outputs
    return [b.add("split", [src], n.output_name(i), index=i, num_outputs=k, **n.attrs)
            for i in range(k)]
