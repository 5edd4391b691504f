"""The user's graph: `Symbol`, `Variable`, `Group`, and their JSON form.

A Symbol is a list of outputs, each `(node, index)`; a node is an op name, a unique name,
attributes and inputs. It is plain description: binding lowers it to the compiler's graph
(symrnn.lower) and compiles that.

    >>> x = Variable("x")
    >>> y = 2 * x + 1
    >>> y.list_arguments()
    ['x']
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from codegen.graph import node
from runtime.errors import ConfigError, SymRNNError
from symrnn.scalars import as_int, as_real

FORMAT = "symrnn-symbol"
FORMAT_VERSION = 1
# float16 and bool have no kernels; integers are for token ids and labels
VARIABLE_DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64",
                   "uint8", "uint16", "uint32", "uint64")


class SymNode:
    __slots__ = ("attrs", "inputs", "name", "num_outputs", "op")

    def __init__(self, op: str, name: str, attrs: dict, inputs, num_outputs: int = 1):
        self.op, self.name, self.attrs = op, name, dict(attrs)
        self.inputs = [(n, i) for n, i in inputs]
        self.num_outputs = num_outputs

    def output_name(self, index: int) -> str:
        if self.op == "var":
            return self.name
        return f"{self.name}_output" + (str(index) if self.num_outputs > 1 else "")


class LazyNode(SymNode):
    """A node of a long sequence that is not built yet: output `position` of `recipe`
    (symrnn.lengths.Recipe). The first read of any of its fields builds the recipe at its
    length, and every lazy node of the recipe becomes the node it stands for, in place; until
    then it costs nothing, and binding compiles the recipe at short lengths instead."""

    __slots__ = ("position", "recipe")

    def __init__(self, recipe, position: int):
        self.recipe, self.position = recipe, position

    def __getattr__(self, attr: str):  # only for the node's fields while they are unset
        if attr not in SymNode.__slots__:
            raise AttributeError(attr)
        self.recipe.materialize()
        return object.__getattribute__(self, attr)

    def become(self, node: SymNode) -> None:
        """Takes the fields of `node` (the recipe's built output it stands for)."""
        self.op, self.name, self.attrs = node.op, node.name, node.attrs
        self.inputs, self.num_outputs = node.inputs, node.num_outputs


class NameManager:
    """Names for ops the user did not name: `tanh0`, `tanh1`, ... per op, per process."""

    counts: ClassVar[dict[str, int]] = {}

    @classmethod
    def get(cls, name: str | None, op: str) -> str:
        if name is not None:
            return name
        key = op.lower()
        cls.counts[key] = cls.counts.get(key, -1) + 1
        return f"{key}{cls.counts[key]}"


class Symbol:
    # numpy scalars and arrays defer to Symbol's operators (`np.float32(1) - x` is rsub), instead
    # of treating a Symbol as a sequence of its outputs
    __array_ufunc__ = None

    def __init__(self, outputs):
        self._outputs = [(n, i) for n, i in outputs]

    # ---- structure --------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        return self._outputs[0][0].name if len(self._outputs) == 1 else None

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self) -> Iterator[Symbol]:
        return (Symbol([o]) for o in self._outputs)

    def __getitem__(self, key) -> Symbol:
        if isinstance(key, str):
            names = self.list_outputs()
            if key not in names:
                raise SymRNNError(f"Symbol[]: no output named {key!r}; outputs are {names}")
            key = names.index(key)
        if not -len(self) <= key < len(self):
            raise SymRNNError(f"Symbol[]: index {key} out of range for {len(self)} outputs")
        return Symbol([self._outputs[key]])

    def topo_nodes(self, stop=None) -> list[SymNode]:
        """Every node reachable from the outputs, inputs before users, in first-visit order;
        `stop(node)` true: the node is listed, its inputs are not walked (lazy nodes)."""
        seen, order = set(), []

        def visit(n):
            stack = [(n, False)]
            while stack:
                cur, done = stack.pop()
                if done:
                    order.append(cur)
                    continue
                if id(cur) in seen:
                    continue
                seen.add(id(cur))
                stack.append((cur, True))
                if stop is None or not stop(cur):
                    stack.extend((src, False) for src, _ in reversed(cur.inputs))

        for n, _ in self._outputs:
            visit(n)
        return order

    def list_arguments(self) -> list[str]:
        names = []
        for n in self.topo_nodes():
            if n.op == "var" and n.name not in names:
                names.append(n.name)
        return names

    def list_outputs(self) -> list[str]:
        return [n.output_name(i) for n, i in self._outputs]

    def attr(self, key: str):
        return self._outputs[0][0].attrs.get(key)

    def infer_shape(self, **shapes):
        """`(arg_shapes, out_shapes, aux_shapes)` in list_arguments/list_outputs order."""
        from symrnn.lower import lower_and_infer

        graph, outputs = lower_and_infer(self, shapes, where="infer_shape")
        args = [node(graph, a).shape for a in self.list_arguments()]
        outs = [node(graph, o).shape for o in outputs]
        return args, outs, []

    # ---- binding ------------------------------------------------------------------------------
    def simple_bind(self, backend: str = "cpu", grad_req="write", optimize: bool = True,
                    dtype: str | None = None, seed: int = 0, fuse: bool | None = None,
                    **shapes):
        """Binds to input shapes; every other argument is allocated (zeros). `optimize=False`
        compiles the unrolled baseline (no GEMM batching, no fusion: one kernel per
        elementary op); `fuse` is its old name.

        >>> ex = (Variable("x") * 2).simple_bind(backend="reference", x=(2, 3))
        """
        from symrnn.bind import simple_bind

        return simple_bind(self, backend, grad_req, optimize, dtype, seed, shapes, fuse=fuse)

    def bind(self, backend: str = "cpu", args=None, args_grad=None, grad_req="write",
             optimize: bool = True, seed: int = 0, *, fuse: bool | None = None):
        """Binds to given argument arrays (a dict by name, or a list in list_arguments order)."""
        from symrnn.bind import bind

        return bind(self, backend, args, args_grad, grad_req, optimize, seed, fuse=fuse)

    # ---- arithmetic ----------------------------------------------------------------------------
    def __add__(self, other):
        return _arith("add", "add_scalar", self, other)

    def __radd__(self, other):
        return self.__add__(other)

    def __sub__(self, other):
        if isinstance(other, Symbol):
            return _op("sub", [self, other])
        return _op("add_scalar", [self], scalar=-_scalar("sub", other))

    def __rsub__(self, other):
        return _op("rsub_scalar", [self], scalar=_scalar("rsub", other))

    def __mul__(self, other):
        return _arith("mul", "mul_scalar", self, other)

    def __rmul__(self, other):
        return self.__mul__(other)

    def __truediv__(self, other):
        if isinstance(other, Symbol):
            return _op("div", [self, other])
        return _op("mul_scalar", [self], scalar=1.0 / _scalar("div", other))

    def __rtruediv__(self, other):
        return _op("rdiv_scalar", [self], scalar=_scalar("rdiv", other))

    def __neg__(self):
        return _op("neg", [self])

    def __repr__(self) -> str:
        return f"<Symbol {' '.join(self.list_outputs())}>"

    # ---- serialization ------------------------------------------------------------------------
    def tojson(self) -> str:
        nodes = self.topo_nodes()
        index = {id(n): k for k, n in enumerate(nodes)}
        doc = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "nodes": [{"op": n.op, "name": n.name, "attrs": _jsonable(n.attrs),
                       "inputs": [[index[id(s)], i] for s, i in n.inputs],
                       "num_outputs": n.num_outputs} for n in nodes],
            "heads": [[index[id(n)], i] for n, i in self._outputs],
        }
        return json.dumps(doc, indent=1, sort_keys=True)

    def save(self, path) -> None:
        text = self.tojson()
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as e:
            raise SymRNNError(f"save: cannot write {str(path)!r} ({e.__class__.__name__}: "
                              f"{e.strerror or e})") from None


def _arith(op, scalar_op, a, b):
    if isinstance(b, Symbol):
        return _op(op, [a, b])
    return _op(scalar_op, [a], scalar=_scalar(op, b))


def _scalar(op: str, value) -> float:
    number = as_real(value)
    if number is None:
        raise ConfigError(f"{op}: the other operand must be a Symbol or a real number, given "
                          f"{type(value).__name__} {value!r}")
    if op == "div" and number == 0:
        raise ConfigError(f"div: cannot divide a Symbol by the number 0, given {value!r}")
    return number


def _op(op: str, inputs, name: str | None = None, num_outputs: int = 1, **attrs) -> Symbol:
    """One new node applying `op` to single-output symbols; the building block of sym ops."""
    outs = []
    for s in inputs:
        if not isinstance(s, Symbol):
            raise SymRNNError(f"{op}: inputs must be Symbols, given {type(s).__name__}")
        if len(s) != 1:
            raise SymRNNError(f"{op}: input {s!r} has {len(s)} outputs; pick one with s[i]")
        outs.append(s._outputs[0])
    node = SymNode(op, NameManager.get(name, op), attrs, outs, num_outputs)
    return Symbol([(node, i) for i in range(num_outputs)])


def Variable(name: str, shape=None, dtype: str = "float32", **attrs) -> Symbol:
    """A free argument. `shape` may hold 0 for a dimension to infer (MXNet style); `dtype`
    is one of VARIABLE_DTYPES (a name or a numpy dtype): floats for values, integers for
    token ids and labels."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"Variable: 'name' must be a non-empty string, given {name!r}")
    if shape is not None:
        attrs["shape"] = _checked_shape(name, shape)
    attrs["dtype"] = checked_dtype(f"Variable {name!r}", dtype)
    return Symbol([(SymNode("var", name, attrs, []), 0)])


def checked_dtype(where: str, dtype) -> str:
    """The name of `dtype` if it is one of VARIABLE_DTYPES, else a ConfigError."""
    try:
        named = np.dtype(dtype).name if not isinstance(dtype, bool) else None
    except TypeError:
        named = None
    if named not in VARIABLE_DTYPES:
        raise ConfigError(f"{where}: 'dtype' must be one of {VARIABLE_DTYPES}, given {dtype!r}")
    return named


def _checked_shape(name: str, shape) -> tuple:
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else None
    ints = None if dims is None else [as_int(d) for d in dims]
    if ints is None or any(d is None or d < 0 for d in ints):
        raise ConfigError(f"Variable {name!r}: 'shape' must be a tuple of non-negative ints "
                          f"(0 = infer), given {shape!r}")
    return tuple(ints)


def Group(symbols) -> Symbol:
    """One symbol whose outputs are those of `symbols`, in order."""
    outs = []
    for i, s in enumerate(symbols):
        if not isinstance(s, Symbol):
            raise ConfigError(f"Group: 'symbols[{i}]' must be a Symbol, given "
                              f"{type(s).__name__}")
        outs.extend(s._outputs)
    return Symbol(outs)


def load_json(text: str) -> Symbol:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise SymRNNError(f"load_json: not JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("version", 0), int):
        raise SymRNNError("load_json: expected an object with 'format', 'version', 'nodes' "
                          "and 'heads'")
    if doc.get("format") != FORMAT:
        raise SymRNNError(f"load_json: format is {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("version", 0) > FORMAT_VERSION:
        raise SymRNNError(f"load_json: version {doc['version']} is newer than this symrnn "
                          f"reads ({FORMAT_VERSION})")
    try:
        nodes: list[SymNode] = []
        for rec in doc["nodes"]:
            inputs = [(nodes[k], i) for k, i in rec["inputs"]]
            if rec["op"] == "var":
                checked_dtype(f"load_json: variable {rec['name']!r}", rec["attrs"]["dtype"])
            nodes.append(SymNode(rec["op"], rec["name"], _frozen(rec["attrs"]), inputs,
                                 rec["num_outputs"]))
        return Symbol([(nodes[k], i) for k, i in doc["heads"]])
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as e:
        raise SymRNNError(f"load_json: malformed document ({type(e).__name__}: {e})") from None


def load(path) -> Symbol:
    """The symbol saved at `path` by `Symbol.save`."""
    try:
        with open(path) as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SymRNNError(f"load: cannot read {str(path)!r} ({e.__class__.__name__}: "
                          f"{getattr(e, 'strerror', None) or e})") from None
    return load_json(text)


def _jsonable(attrs: dict) -> dict:
    def conv(v):
        if isinstance(v, np.generic):  # a numpy scalar that reached an attribute
            return v.item()
        return [conv(x) for x in v] if isinstance(v, (tuple, list)) else v
    return {k: conv(v) for k, v in attrs.items()}


def _frozen(attrs: dict) -> dict:
    def conv(v):
        return tuple(conv(x) for x in v) if isinstance(v, list) else v
    return {k: conv(v) for k, v in attrs.items()}
