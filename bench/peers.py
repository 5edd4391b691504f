"""PyTorch CPU peers for bench/run.py: `nn.LSTM` / `nn.GRU` with weights copied from a symrnn
executor, and an `nn.LSTMCell` loop doing zoneout (what PyTorch cannot fuse).

PyTorch is optional: `torch_or_none()` returns the module or None, and nothing here imports it
at module level, so the benchmark runs (without the peers) where it is absent.

Each peer exposes the same two callables as the symrnn runners in run.py:
`fwd()` (inference, under `torch.no_grad()`) and `fwdbwd()` (training forward, then
`output.backward(grad)`, gradients reset to None first as `zero_grad(set_to_none=True)`
does). The data and the initial states require gradients, as symrnn's `grad_req='write'`
computes them for every argument.
"""
from __future__ import annotations

import numpy as np


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _param(torch, arr):
    return torch.nn.Parameter(torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)))


class TorchRNN:
    """`nn.LSTM` / `nn.GRU` (`typ` 'lstm' or 'gru') with `sizes[l] == H` for every layer, its
    weights copied from `args` (symrnn's arg_dict: `{name}_l{l}_i2h_weight` is PyTorch's
    `weight_ih_l{l}`, same layout and gate order)."""

    def __init__(self, torch, typ: str, num_layers: int, input_size: int, hidden: int,
                 args: dict, name: str, data: np.ndarray, grad: np.ndarray):
        self.torch = torch
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[typ]
        self.module = cls(input_size, hidden, num_layers=num_layers)
        with torch.no_grad():
            for l in range(num_layers):
                for theirs, ours in (("weight_ih", "i2h_weight"), ("weight_hh", "h2h_weight"),
                                     ("bias_ih", "i2h_bias"), ("bias_hh", "h2h_bias")):
                    getattr(self.module, f"{theirs}_l{l}").copy_(
                        torch.from_numpy(np.ascontiguousarray(args[f"{name}_l{l}_{ours}"])))
        self.typ = typ
        self.x = torch.from_numpy(np.array(data, copy=True)).requires_grad_(True)
        h0 = np.stack([args[f"{name}_l{l}_init_h"] for l in range(num_layers)])
        self.h0 = torch.from_numpy(h0.copy()).requires_grad_(True)
        if typ == "lstm":
            c0 = np.stack([args[f"{name}_l{l}_init_c"] for l in range(num_layers)])
            self.c0 = torch.from_numpy(c0.copy()).requires_grad_(True)
        self.grad = torch.from_numpy(np.array(grad, copy=True))
        self._leaves = [self.x, self.h0, *self.module.parameters()]
        if typ == "lstm":
            self._leaves.append(self.c0)

    def _run(self):
        state = (self.h0, self.c0) if self.typ == "lstm" else self.h0
        return self.module(self.x, state)[0]

    def output(self) -> np.ndarray:
        self.module.eval()
        with self.torch.no_grad():
            return self._run().numpy().copy()

    def grads(self) -> dict:
        """After fwdbwd: {'data': dx, 'i2h_weight_l0': ...} as numpy arrays."""
        out = {"data": self.x.grad.numpy()}
        for l in range(self.module.num_layers):
            out[f"l{l}_i2h_weight"] = getattr(self.module, f"weight_ih_l{l}").grad.numpy()
            out[f"l{l}_h2h_weight"] = getattr(self.module, f"weight_hh_l{l}").grad.numpy()
        return out

    def fwd(self):
        self.module.eval()
        with self.torch.no_grad():
            return self._run()

    def fwdbwd(self):
        self.module.train()
        for p in self._leaves:
            p.grad = None
        self._run().backward(self.grad)


class StepPeer:
    """A peer whose `_run(train)` builds its graph: `fwd` and `output` run it without
    gradients, `fwdbwd` runs it in training and back from the head gradient `grad` into
    fresh gradients of `_leaves`."""

    def output(self) -> np.ndarray:
        with self.torch.no_grad():
            return self._run(False).numpy().copy()

    def fwd(self):
        with self.torch.no_grad():
            return self._run(False)

    def fwdbwd(self):
        for p in self._leaves:
            p.grad = None
        self._run(True).backward(self.grad)


class TorchZoneoutLoop(StepPeer):
    """A stack of `nn.LSTMCell`s run step by step, with zoneout `z` on `h` and `c` of every
    layer: in training a fresh Bernoulli(z) mask per step, layer and state,
    `s = m * s_prev + (1 - m) * s_new`; at inference `s = z * s_prev + (1 - z) * s_new`
    (DESIGN.md section 3). `h_new` and `c_new` both come from the LSTMCell before the mix, and
    the next layer (and the output) sees the mixed `h`."""

    def __init__(self, torch, sizes: list, input_size: int, z: float, args: dict, name: str,
                 data: np.ndarray, grad: np.ndarray):
        self.torch, self.z = torch, float(z)
        self.cells = torch.nn.ModuleList()
        inp = input_size
        with torch.no_grad():
            for l, h in enumerate(sizes):
                cell = torch.nn.LSTMCell(inp, h)
                for theirs, ours in (("weight_ih", "i2h_weight"), ("weight_hh", "h2h_weight"),
                                     ("bias_ih", "i2h_bias"), ("bias_hh", "h2h_bias")):
                    getattr(cell, theirs).copy_(
                        torch.from_numpy(np.ascontiguousarray(args[f"{name}_l{l}_{ours}"])))
                self.cells.append(cell)
                inp = h
        self.x = torch.from_numpy(np.array(data, copy=True)).requires_grad_(True)
        self.h0 = [torch.from_numpy(np.array(args[f"{name}_l{l}_init_h"], copy=True))
                   .requires_grad_(True) for l in range(len(sizes))]
        self.c0 = [torch.from_numpy(np.array(args[f"{name}_l{l}_init_c"], copy=True))
                   .requires_grad_(True) for l in range(len(sizes))]
        self.grad = torch.from_numpy(np.array(grad, copy=True))
        self._leaves = [self.x, *self.h0, *self.c0, *self.cells.parameters()]
        self._p = [torch.full((data.shape[1], h), self.z) for h in sizes]

    def _run(self, train: bool):
        torch, z = self.torch, self.z
        hs, cs = list(self.h0), list(self.c0)
        outs = []
        for t in range(self.x.shape[0]):
            inp = self.x[t]
            for l, cell in enumerate(self.cells):
                h_new, c_new = cell(inp, (hs[l], cs[l]))
                if train:
                    mh = torch.bernoulli(self._p[l])
                    mc = torch.bernoulli(self._p[l])
                    hs[l] = mh * hs[l] + (1 - mh) * h_new
                    cs[l] = mc * cs[l] + (1 - mc) * c_new
                else:
                    hs[l] = z * hs[l] + (1 - z) * h_new
                    cs[l] = z * cs[l] + (1 - z) * c_new
                inp = hs[l]
            outs.append(inp)
        return torch.stack(outs)
