"""`Executor.export_onnx(path)`: the inference forward of a bound symbol as an ONNX model.

    ex = net.simple_bind(data=(10, 4, 16))
    ex.export_onnx("net.onnx")          # then: onnxruntime.InferenceSession("net.onnx")

What the model holds (opset 17):

- inputs: every sequence the symbol cuts into steps (`data`, `(T, N, I)`, time and batch
  dynamic), every initial state (`(N, H)`, named after its variable), and any other argument
  named at bind or of an integer dtype; all other arguments are initializers under their
  symrnn names (float32).
- outputs: the symbol's, in order, under their names.
- each recurrent cell as ONNX's own LSTM/GRU/RNN operator, or as a Scan over the cell's step
  where the operator cannot express it (see onnx_cells); dropout is the identity, zoneout its
  expectation. Dense layers, embeddings and elementwise ops map to their ONNX operators; what
  has no faithful form (losses, sampling) is refused with `UnsupportedExport`.

onnx is imported on first use: without it, `BackendUnavailable` names the extra to install.
"""
from __future__ import annotations

import os

import numpy as np

from runtime.errors import BackendUnavailable
from symrnn.interop.errors import InteropError, UnsupportedExport
from symrnn.interop.onnx_cells import emit_operator, emit_scan
from symrnn.interop.structure import find_cells, state_at

OPSET = 17
IR_VERSION = 8  # the oldest that opset 17 needs, so that older runtimes load the file
EXTRA = "pip install -e '.[onnx]' (or: pip install onnx onnxruntime)"
_UNARY = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "exp": "Exp", "log": "Log",
          "neg": "Neg"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}


def import_onnx():
    """The onnx module, or one BackendUnavailable naming the extra."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as e:
        raise BackendUnavailable(f"export_onnx: the 'onnx' package is needed and is not "
                                 f"installed ({e}); install the extra: {EXTRA}") from None
    return onnx


def export_onnx(executor, path) -> str:
    """Writes the executor's inference forward to `path` as an ONNX model (checked with
    `onnx.checker.check_model`) and returns the path. The executor is left as it was."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise InteropError(f"export_onnx: 'path' {os.fspath(path)!r} is in a folder that "
                           f"does not exist ({folder!r}); create it first")
    onnx = import_onnx()
    model = build_model(executor, onnx)
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
    return os.fspath(path)


def build_model(executor, onnx):
    symbol = getattr(executor, "symbol", None)
    if symbol is None and getattr(executor, "symbol_json", None):  # from runtime.load
        from symrnn.symbol import load_json

        symbol = load_json(executor.symbol_json)
    if symbol is None:
        raise InteropError("export_onnx: the executor has no symbol (it was not bound from "
                           "one); bind a Symbol to export it")
    g = OnnxGraph(executor, symbol, onnx)
    outputs = [g.node("Identity", [g.value(ref)], out=name)
               for ref, name in zip(symbol._outputs, symbol.list_outputs())]
    ranks = [len(shape) for _, shape, _ in executor.engine.out_specs]
    graph = onnx.helper.make_graph(  # output dims unnamed: time and batch are dynamic
        g.nodes, "symrnn", g.sorted_inputs(),
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [None] * r)
         for n, r in zip(outputs, ranks)], initializer=list(g.initializers.values()))
    model = onnx.helper.make_model(graph, producer_name="symrnn",
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


class OnnxGraph:
    """Builds the ONNX graph: maps each symbol value to an ONNX value name, once."""

    def __init__(self, executor, symbol, onnx):
        self.onnx, self.ex, self.symbol = onnx, executor, symbol
        self.nodes, self.inputs, self.initializers = [], {}, {}
        self.cells = find_cells(symbol)
        for c in self.cells:
            if c.proj or c.clip is not None:
                raise UnsupportedExport(f"export_onnx: cell {c.prefix!r} has proj_size={c.proj}"
                                        f", cell_clip={c.clip}: no ONNX LSTM form for either")
        self._values, self._cell_values, self._transformed, self._count = {}, {}, set(), 0
        self._given = set(getattr(executor, "input_names", None) or ())
        self._sequences = {id(n.inputs[0][0]) for n in symbol.topo_nodes() if n.op == "take"}
        self._scan = {id(c) for c in self.cells if c.zoneout or self._wants_cell_states(c)}

    # ---- building blocks ------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        self._count += 1
        return f"{base}__{self._count}"

    def node(self, op_type: str, inputs, outputs: int = 1, out: str | None = None,
             name: str | None = None, **attrs):
        names = [out] if out else [self.fresh(f"{name or op_type}_{k}") for k in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names,
                                                     name=name or names[0], **attrs))
        return names[0] if outputs == 1 else names

    def constant(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.initializers[name] = self.onnx.numpy_helper.from_array(array, name)
        return name

    def scalar(self, value: float) -> str:
        return self.constant("scalar", np.asarray(value, np.float32))

    def unsqueeze(self, value: str, axis: int = 0) -> str:
        return self.node("Unsqueeze", [value, self.constant("axes", np.array([axis]))])

    def squeeze(self, value: str, axis: int) -> str:
        return self.node("Squeeze", [value, self.constant("axes", np.array([axis]))])

    def parameter(self, name: str, transform=None) -> str:
        """The argument `name` as an initializer; `transform` rewrites its layout (then no
        other node may read it in symrnn's layout)."""
        if name in self.initializers:
            if (transform is not None) != (name in self._transformed):
                raise UnsupportedExport(f"export_onnx: argument {name!r} is read by an ONNX "
                                        f"operator in its gate order and by other nodes in "
                                        f"symrnn's; share no weights to export")
            return name
        array = np.asarray(self.ex.arg_dict[name], np.float32)
        if transform is not None:
            array = transform(array)
            self._transformed.add(name)
        self.initializers[name] = self.onnx.numpy_helper.from_array(array, name)
        return name

    def sorted_inputs(self) -> list:
        """Sequences first, then the states, each in argument order."""
        order = {n: k for k, n in enumerate(self.symbol.list_arguments())}
        dims = {n: self.inputs[n].type.tensor_type.shape.dim for n in self.inputs}
        first = {n: 0 if d and d[0].dim_param == "T" else 1 for n, d in dims.items()}
        return [self.inputs[n] for n in sorted(self.inputs, key=lambda n: (first[n], order[n]))]

    # ---- values -----------------------------------------------------------------------------
    def value(self, ref) -> str:
        key = (id(ref[0]), ref[1])
        if key not in self._values:
            self._values[key] = self._resolve(ref)
        return self._values[key]

    def _resolve(self, ref) -> str:
        node, index = ref
        if node.op == "var":
            return self._variable(node)
        if node.op == "stack":
            return self.sequence(node.inputs)
        if node.op == "dropout":
            return self.value(node.inputs[0])
        found = state_at(self.cells, ref)
        if found is not None:
            return self._final_state(*found)
        return self._static_op(node, index)

    def _variable(self, node) -> str:
        name, kind = node.name, node.attrs.get("kind")
        array = self.ex.arg_dict[name]
        if not (kind == "state" or id(node) in self._sequences or name in self._given
                or array.dtype.kind in "iu"):
            return self.parameter(name)
        dims = list(array.shape)
        if id(node) in self._sequences:
            dims[:2] = ["T", "N"][:len(dims)]
        elif kind == "state":
            dims[0] = "N"
        elem = np.float32 if array.dtype.kind == "f" else array.dtype
        self.inputs[name] = self.onnx.helper.make_tensor_value_info(
            name, self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(elem)), dims)
        return name

    def _final_state(self, cell, t, k) -> str:
        if t != cell.last:
            raise UnsupportedExport(f"export_onnx: an output reads the state of cell "
                                    f"{cell.prefix!r} after step {t}, not after its last step "
                                    f"({cell.last}); only final states can be exported")
        return self.cell_values(cell)["hc"[k]]

    def _static_op(self, node, index) -> str:
        def ins():  # resolved only for ops that have a form, so a refusal names this node
            return [self.value(r) for r in node.inputs]

        op, a = node.op, node.attrs
        if op in _UNARY or op in _BINARY:
            return self.node(_UNARY.get(op) or _BINARY[op], ins(), name=node.name)
        if op in ("add_scalar", "mul_scalar", "rsub_scalar"):
            x, s = ins()[0], self.scalar(a["scalar"])
            pair = [s, x] if op == "rsub_scalar" else [x, s]
            return self.node({"add_scalar": "Add", "mul_scalar": "Mul"}.get(op, "Sub"), pair,
                             name=node.name)
        if op == "FullyConnected":
            x, w, *b = ins()
            y = self.node("MatMul", [x, self.node("Transpose", [w], perm=[1, 0])])
            return self.node("Add", [y, b[0]], name=node.name) if b else y
        if op == "Embedding":
            x, w = ins()
            return self.node("Gather", [w, self.node("Cast", [x], to=7)], name=node.name)
        if op in ("softmax", "concat"):
            return self.node(op.capitalize(), ins(), axis=a["axis"], name=node.name)
        if op == "take":
            return self.node("Gather", [ins()[0], self.constant("index",
                             np.array(a["index"]))], axis=0, name=node.name)
        raise UnsupportedExport(f"export_onnx: node {node.name!r} ({op}) has no faithful ONNX "
                                f"form here; export the part of the symbol without it")

    # ---- sequences and cells ------------------------------------------------------------------
    def sequence(self, refs) -> str:
        """The `(T, N, ...)` value whose step `t` is `refs[t]`."""
        nodes = [r[0] for r in refs]
        if all(n.op == "take" and n.attrs["index"] == t and n.inputs[0][0] is nodes[0].inputs[0][0]
               for t, n in enumerate(nodes)):
            return self._whole(nodes[0].inputs[0], len(refs))
        for cell in self.cells:
            for key, steps in (("Y", cell.outputs), ("C", [s[-1] for s in cell.states])):
                if len(steps) == len(refs) and all(
                        a[0] is b[0] and a[1] == b[1] for a, b in zip(steps, refs)) and (
                        key == "Y" or cell.typ == "lstm"):
                    return self.cell_values(cell)[key]
        if all(n.op == "dropout" for n in nodes):
            return self.sequence([n.inputs[0] for n in nodes])
        if all(n.op == "concat" and len(n.inputs) == len(nodes[0].inputs) for n in nodes):
            parts = [self.sequence([n.inputs[k] for n in nodes])
                     for k in range(len(nodes[0].inputs))]
            axis = nodes[0].attrs["axis"]
            return self.node("Concat", parts, axis=axis + 1 if axis >= 0 else axis)
        raise UnsupportedExport(f"export_onnx: the steps {nodes[0].name!r}..{nodes[-1].name!r} "
                                f"({nodes[0].op}) form no sequence that ONNX can express")

    def _whole(self, ref, steps: int) -> str:
        node = ref[0]
        if node.op == "var" and self.ex.arg_dict[node.name].shape[0] != steps:
            raise UnsupportedExport(f"export_onnx: the symbol reads {steps} of the "
                                    f"{self.ex.arg_dict[node.name].shape[0]} steps of "
                                    f"{node.name!r}; ONNX's dynamic time axis needs them all")
        return self.value(ref)

    def cell_values(self, cell) -> dict:
        if id(cell) not in self._cell_values:
            x = self.sequence(cell.inputs)
            emit = emit_scan if id(cell) in self._scan else emit_operator
            self._cell_values[id(cell)] = emit(self, cell, x)
        return self._cell_values[id(cell)]

    def _wants_cell_states(self, cell) -> bool:
        """Whether a node outside the cell reads its cell state before the last step."""
        if cell.typ != "lstm":
            return False
        inner = {id(s[1][0]) for t, s in enumerate(cell.states) if t != cell.last}
        own = cell.prefix + "t"
        return any(id(src) in inner and not n.name.startswith(own)
                   for n in self.symbol.topo_nodes() for src, _ in n.inputs)
