"""PyTorch CPU peers of issue 12's features, for bench/features.py: each the closest thing a
PyTorch user writes for the feature, with weights copied from a symrnn executor (`args`: its
arg_dict, `{name}_l0_i2h_weight` is `weight_ih_l0`, same layout and gate order).

- `PackedLSTM`: `nn.LSTM` (with `proj_size`, whose `weight_hr_l0` is `{name}_l0_h2r_weight`);
  given lengths, over `pack_padded_sequence(enforce_sorted=False)` and back through
  `pad_packed_sequence` inside the timed call, as a user's training step does.
- `GateLoop`: no PyTorch module clips the cell or normalizes the gates, so a Python loop over
  the steps in the form of PyTorch's own fastrnns `LayerNormLSTMCell`: the input projection of
  every step at once (`F.linear` over `T*N` rows, layer-normalized there when asked), then per
  step `F.linear` of `h`, the gates, `torch.clamp` of `c` (cell clip) or `nn.LayerNorm` on the
  recurrent projection and on `c` before `tanh` (layer norm as symrnn.rnn.layer_norm and Ba et
  al.: `LN(W x) + b`, over the 4H gates; the carried `c` is not normalized).
- `WeightDropLSTM`: AWD-LSTM's WeightDrop: in training, one `F.dropout` mask on the raw
  `weight_hh_l0` per forward, then `nn.LSTM` run with the masked weight
  (`torch.func.functional_call`); identity at inference.

Each exposes `fwd()` (inference under `no_grad`), `fwdbwd()` (training forward, then
`backward(grad)`, gradients reset first) and `output()` (the inference output, numpy).
"""
from __future__ import annotations

import numpy as np
from peers import StepPeer

WEIGHTS = (("weight_ih", "i2h_weight"), ("weight_hh", "h2h_weight"),
           ("bias_ih", "i2h_bias"), ("bias_hh", "h2h_bias"), ("weight_hr", "h2r_weight"))


def _tensor(torch, arr, grad: bool = False):
    t = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True))
    return t.requires_grad_(True) if grad else t


class _Peer(StepPeer):
    """Data, initial states and the head gradient as tensors; `_leaves` get gradients."""

    def __init__(self, torch, args: dict, name: str, data, grad):
        self.torch, self.name = torch, name
        self.x = _tensor(torch, data, grad=True)
        self.h0 = _tensor(torch, args[f"{name}_l0_init_h"], grad=True)
        self.c0 = _tensor(torch, args[f"{name}_l0_init_c"], grad=True)
        self.grad = _tensor(torch, grad)
        self._leaves = [self.x, self.h0, self.c0]

    def _run(self, train: bool):
        raise NotImplementedError


class PackedLSTM(_Peer):
    """`nn.LSTM(I, H, proj_size=P)`; over packed sequences when `lengths` is given."""

    def __init__(self, torch, args, name, data, grad, lengths=None, proj_size: int = 0):
        super().__init__(torch, args, name, data, grad)
        hidden = args[f"{name}_l0_init_c"].shape[1]
        self.module = torch.nn.LSTM(data.shape[2], hidden, proj_size=proj_size)
        copy_weights(torch, self.module, args, name)
        self.lengths = None if lengths is None else torch.tensor(np.asarray(lengths),
                                                                 dtype=torch.int64)
        self._leaves += list(self.module.parameters())

    def _run(self, train: bool):
        self.module.train(train)
        state = (self.h0[None], self.c0[None])
        if self.lengths is None:
            return self.module(self.x, state)[0]
        rnn = self.torch.nn.utils.rnn
        packed = rnn.pack_padded_sequence(self.x, self.lengths, enforce_sorted=False)
        y = self.module(packed, state)[0]
        return rnn.pad_packed_sequence(y, total_length=self.x.shape[0])[0]


class WeightDropLSTM(PackedLSTM):
    """AWD-LSTM's weight drop on `nn.LSTM`'s `weight_hh_l0` at rate `p`."""

    def __init__(self, torch, args, name, data, grad, p: float):
        super().__init__(torch, args, name, data, grad)
        self.p = float(p)

    def _run(self, train: bool):
        if not train:
            return super()._run(False)
        torch = self.torch
        self.module.train(True)
        raw = self.module.weight_hh_l0
        masked = torch.nn.functional.dropout(raw, self.p, training=True)
        return torch.func.functional_call(self.module, {"weight_hh_l0": masked},
                                          (self.x, (self.h0[None], self.c0[None])))[0]


class GateLoop(_Peer):
    """An LSTM step by step in Python, the input projection hoisted; `clip` clamps `c`,
    `layer_norm` normalizes the two projections (over the 4H gates) and `c` before tanh."""

    def __init__(self, torch, args, name, data, grad, clip=None, layer_norm=False):
        super().__init__(torch, args, name, data, grad)
        p = {ours: torch.nn.Parameter(_tensor(torch, args[f"{name}_l0_{ours}"]))
             for _, ours in WEIGHTS[:4]}
        self.w, self.clip = p, clip
        self._leaves += list(p.values())
        self.norms = None
        if layer_norm:
            hidden = args[f"{name}_l0_init_c"].shape[1]
            self.norms = [torch.nn.LayerNorm(4 * hidden), torch.nn.LayerNorm(4 * hidden),
                          torch.nn.LayerNorm(hidden)]
            self._leaves += [q for n in self.norms for q in n.parameters()]

    def _project(self, v, which: str, k: int):
        """`W v + b`, or with layer norm `LN(W v) + b` (the bias after the norm)."""
        F, w, b = self.torch.nn.functional, self.w[f"{which}_weight"], self.w[f"{which}_bias"]
        return F.linear(v, w, b) if self.norms is None else self.norms[k](F.linear(v, w)) + b

    def _run(self, train: bool):
        i2h = self._project(self.x, "i2h", 0)
        h, c, outs = self.h0, self.c0, []
        for t in range(self.x.shape[0]):
            i, f, g, o = (i2h[t] + self._project(h, "h2h", 1)).chunk(4, 1)
            c = self.torch.sigmoid(f) * c + self.torch.sigmoid(i) * self.torch.tanh(g)
            if self.clip is not None:
                c = self.torch.clamp(c, -self.clip, self.clip)
            shown = self.norms[2](c) if self.norms else c
            h = self.torch.sigmoid(o) * self.torch.tanh(shown)
            outs.append(h)
        return self.torch.stack(outs)


def copy_weights(torch, module, args: dict, name: str) -> None:
    with torch.no_grad():
        for theirs, ours in WEIGHTS:
            if hasattr(module, f"{theirs}_l0") and f"{name}_l0_{ours}" in args:
                getattr(module, f"{theirs}_l0").copy_(
                    torch.from_numpy(np.ascontiguousarray(args[f"{name}_l0_{ours}"])))
