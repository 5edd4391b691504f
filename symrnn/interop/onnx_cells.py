"""One recurrent cell as ONNX: the operator form (`LSTM`, `GRU`, `RNN`) for plain cells, and a
`Scan` over the cell's step for what ONNX's operators cannot say (zoneout's expectation, the
cell-state sequence of an LSTM).

Operator form: ONNX packs the gates as LSTM `i, o, f, c` and GRU `z, r, h`; symrnn (like
cuDNN, MXNet and PyTorch) as `i, f, g, o` and `r, z, n`. The rows are permuted on the weights
at export; symrnn's GRU is ONNX's `linear_before_reset=1`. Each parameter stays one
initializer under its symrnn name and shape `(G*H, .)`; the operator's leading direction axis
and its packed bias `[W_b, R_b]` are made by `Unsqueeze` and `Concat` nodes.

Scan form: the input projection of all steps is one `MatMul` before the `Scan`; the body
adds the recurrent product, applies the gates and mixes the states by zoneout's expectation
`s = z * s_prev + (1 - z) * s_new` (for the LSTM, `h_new` uses the unmixed `c_new`, as in
symrnn). Parameters are initializers in symrnn's own layout.
"""
from __future__ import annotations

import numpy as np

from symrnn.interop.structure import Cell

# ONNX's gate order, as indices into symrnn's.
ONNX_GATE_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn_tanh": [0], "rnn_relu": [0]}
OPERATORS = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


def reorder_gates(array: np.ndarray, typ: str) -> np.ndarray:
    """Rows of a packed `(G*H, ...)` weight or `(G*H,)` bias in ONNX's gate order."""
    gates = np.split(array, len(ONNX_GATE_ORDER[typ]), axis=0)
    return np.concatenate([gates[k] for k in ONNX_GATE_ORDER[typ]], axis=0)


def emit_operator(g, cell: Cell, x: str) -> dict:
    """The cell as ONNX's LSTM/GRU/RNN operator over the sequence `x` `(T, N, I)`."""
    p, typ = cell.prefix, cell.typ
    w = {k: g.parameter(name, lambda a: reorder_gates(a, typ)) for k, name in
         cell.params.items()}
    bias = g.node("Concat", [w["i2h_bias"], w["h2h_bias"]], axis=0)
    ins = [x, g.unsqueeze(w["i2h_weight"]), g.unsqueeze(w["h2h_weight"]), g.unsqueeze(bias),
           "", *[g.unsqueeze(g.value(s)) for s in cell.initial]]
    attrs = {"hidden_size": cell.hidden, "direction": "reverse" if cell.reverse else "forward"}
    if typ == "gru":
        attrs["linear_before_reset"] = 1
    if typ.startswith("rnn_"):
        attrs["activations"] = ["Tanh" if typ == "rnn_tanh" else "Relu"]
    outs = g.node(OPERATORS[typ], ins, outputs=1 + cell.num_states, name=p + "onnx", **attrs)
    values = {"Y": g.squeeze(outs[0], 1), "h": g.squeeze(outs[1], 0)}
    if typ == "lstm":
        values["c"] = g.squeeze(outs[2], 0)
    return values


def emit_scan(g, cell: Cell, x: str) -> dict:
    """The cell as a Scan whose body is the cell's step."""
    p = cell.prefix
    w = {k: g.parameter(name) for k, name in cell.params.items()}
    xw = g.node("Add", [g.node("MatMul", [x, g.node("Transpose", [w["i2h_weight"]],
                                                          perm=[1, 0])]), w["i2h_bias"]])
    rt = g.node("Transpose", [w["h2h_weight"]], perm=[1, 0])
    body = _scan_body(g, cell, rt, w["h2h_bias"])
    k = cell.num_states
    rev = int(cell.reverse)
    outs = g.node("Scan", [g.value(s) for s in cell.initial] + [xw], outputs=2 * k,
                  name=p + "scan", body=body, num_scan_inputs=1,
                  scan_input_directions=[rev], scan_output_directions=[rev] * k)
    values = {"h": outs[0], "Y": outs[k]}
    if cell.typ == "lstm":
        values.update(c=outs[1], C=outs[3])
    return values


def _scan_body(g, cell: Cell, rt: str, rb: str):
    helper, proto = g.onnx.helper, g.onnx.TensorProto
    b = _Body(g, cell.prefix + "scan_")
    names = ["h", "c"][:cell.num_states]
    prev = [b.name(f"{n}_prev") for n in names]
    xw = b.name("xw")
    hh = b.op("Add", b.op("MatMul", prev[0], rt), rb)
    new = _STEPS[cell.typ](b, xw, hh, prev)
    if cell.zoneout:
        z = g.scalar(cell.zoneout)
        keep_new = g.scalar(1.0 - cell.zoneout)
        new = [b.op("Add", b.op("Mul", s_prev, z), b.op("Mul", s_new, keep_new))
               for s_prev, s_new in zip(prev, new)]
    states = [b.op("Identity", s, out=b.name(f"{n}_next")) for s, n in zip(new, names)]
    scans = [b.op("Identity", s, out=b.name(f"{n}_seq")) for s, n in zip(new, names)]
    info = [helper.make_tensor_value_info(n, proto.FLOAT, None) for n in prev + [xw]]
    outs = [helper.make_tensor_value_info(n, proto.FLOAT, None) for n in states + scans]
    return helper.make_graph(b.nodes, cell.prefix + "step", info, outs)


class _Body:
    """Nodes of a Scan body, their values named under one prefix."""

    def __init__(self, g, prefix: str):
        self.g, self.prefix, self.nodes, self.count = g, prefix, [], 0

    def name(self, base: str) -> str:
        return self.prefix + base

    def op(self, op_type: str, *inputs: str, out: str | None = None, outputs: int = 1,
           **attrs):
        names = [out] if out else [self.name(f"{op_type.lower()}{self.count}_{k}")
                                   for k in range(outputs)]
        self.count += 1
        self.nodes.append(self.g.onnx.helper.make_node(op_type, list(inputs), names,
                                                       name=names[0], **attrs))
        return names[0] if outputs == 1 else names


def _lstm_step(b, xw, hh, prev):
    i, f, g, o = b.op("Split", b.op("Add", xw, hh), outputs=4, axis=1)
    c = b.op("Add", b.op("Mul", b.op("Sigmoid", f), prev[1]),
             b.op("Mul", b.op("Sigmoid", i), b.op("Tanh", g)))
    return [b.op("Mul", b.op("Sigmoid", o), b.op("Tanh", c)), c]


def _gru_step(b, xw, hh, prev):
    xr, xz, xn = b.op("Split", xw, outputs=3, axis=1)
    hr, hz, hn = b.op("Split", hh, outputs=3, axis=1)
    r = b.op("Sigmoid", b.op("Add", xr, hr))
    z = b.op("Sigmoid", b.op("Add", xz, hz))
    n = b.op("Tanh", b.op("Add", xn, b.op("Mul", r, hn)))
    keep_new = b.op("Sub", b.g.scalar(1.0), z)
    return [b.op("Add", b.op("Mul", keep_new, n), b.op("Mul", z, prev[0]))]


_STEPS = {
    "lstm": _lstm_step,
    "gru": _gru_step,
    "rnn_tanh": lambda b, xw, hh, prev: [b.op("Tanh", b.op("Add", xw, hh))],
    "rnn_relu": lambda b, xw, hh, prev: [b.op("Relu", b.op("Add", xw, hh))],
}
