"""An engine pair: the training program, and a forward-only program for inference.

`forward(is_train=False)` needs none of what the backward pass keeps (gate activations,
masks' inputs), so it runs a program compiled without gradients, built on first use. A
`backward` after an inference forward re-runs the training forward on the same arguments
first, so that it still sees consistent saved values.
"""
from __future__ import annotations


class DualEngine:
    def __init__(self, train, make_infer):
        self.train = train
        self._make_infer = make_infer
        self._infer = None
        self.arg_specs, self.out_specs, self.wrt = train.arg_specs, train.out_specs, train.wrt
        self.program = train.program
        self._last = None  # (args, seed) of an inference forward not yet replayed

    @property
    def infer(self):
        if self._infer is None:
            self._infer = self._make_infer()
        return self._infer

    def forward(self, args: dict, is_train: bool, seed: int):
        if is_train:
            self._last = None
            return self.train.forward(args, True, seed)
        self._last = (args, seed)
        return self.infer.forward(args, False, seed)

    def backward(self, head_grads: list) -> dict:
        if self._last is not None:
            args, seed = self._last
            self.train.forward(args, False, seed)
            self._last = None
        return self.train.backward(head_grads)
