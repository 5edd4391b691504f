"""Makes the MXNet test data: run once with MXNet 1.9.1 (not needed to run the tests).

    python -m venv .mx-venv && .mx-venv/bin/pip install "numpy<1.24" mxnet==1.9.1
    .mx-venv/bin/python tests/data/mxnet/make_params.py

For each case it writes `{case}.params` (MXNet's `nd.save` of the arguments, `arg:`-prefixed
as `mx.model.save_checkpoint` writes them) and `{case}.npz`: the input `data`, and what MXNet
computed from it with zero initial states: `out` (the top layer's outputs, `(T, N, C)`) and
the final states `state0`, `state1`, ... in MXNet's order: per cell `[h, c]` (LSTM) or `[h]`
for stacked cells, `[h, c]` in the `(layers * directions, N, H)` layout for a FusedRNNCell.
"""
import os
import zlib

import mxnet as mx
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def cell_stack(typ, sizes, bidirectional=False):
    cls = {"lstm": mx.rnn.LSTMCell, "gru": mx.rnn.GRUCell}[typ]
    stack = mx.rnn.SequentialRNNCell()
    for layer, size in enumerate(sizes):
        if bidirectional:
            stack.add(mx.rnn.BidirectionalCell(cls(size, prefix=f"{typ}_l{layer}_"),
                                               cls(size, prefix=f"{typ}_r{layer}_"),
                                               output_prefix=f"{typ}_bi{layer}_"))
        else:
            stack.add(cls(size, prefix=f"{typ}_l{layer}_"))
    return stack


CASES = {
    # name: (cell, T, N, I)
    "lstm_cells": (lambda: cell_stack("lstm", [8, 6]), 5, 3, 4),
    "gru_cells_bi": (lambda: cell_stack("gru", [5], bidirectional=True), 4, 2, 3),
    "fused_lstm_bi": (lambda: mx.rnn.FusedRNNCell(5, num_layers=2, mode="lstm",
                                                  bidirectional=True, prefix="lstm_",
                                                  get_next_state=True), 4, 2, 3),
    "fused_rnn_relu": (lambda: mx.rnn.FusedRNNCell(4, num_layers=1, mode="rnn_relu",
                                                   prefix="rnn_", get_next_state=True), 3, 2, 3),
}


def flatten(states):
    if isinstance(states, (list, tuple)):
        return [s for x in states for s in flatten(x)]
    return [states]


def make(name, make_cell, T, N, I):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    cell = make_cell()
    out, states = cell.unroll(T, mx.sym.Variable("data"), layout="TNC", merge_outputs=True)
    net = mx.sym.Group([out] + flatten(states))
    shapes, _, _ = net.infer_shape(data=(T, N, I))
    args = {n: mx.nd.array(rng.uniform(-0.5, 0.5, s).astype(np.float32))
            for n, s in zip(net.list_arguments(), shapes)}
    data = rng.standard_normal((T, N, I)).astype(np.float32)
    args["data"] = mx.nd.array(data)
    for n in net.list_arguments():  # begin states: zeros (for the fused cell: state inputs)
        if "begin_state" in n or n.endswith(("init_h", "init_c")):
            args[n] = mx.nd.zeros(args[n].shape)
    ex = net.bind(mx.cpu(), args)
    results = [o.asnumpy() for o in ex.forward(is_train=False)]
    params = {f"arg:{n}": v for n, v in args.items() if n != "data" and "begin_state" not in n}
    mx.nd.save(os.path.join(HERE, f"{name}.params"), params)
    record = {"data": data, "out": results[0]}
    record.update({f"state{k}": r for k, r in enumerate(results[1:])})
    np.savez(os.path.join(HERE, f"{name}.npz"), **record)
    print(name, sorted(params), {k: v.shape for k, v in record.items()})


if __name__ == "__main__":
    print("mxnet", mx.__version__)
    for case, spec in CASES.items():
        make(case, *spec)
