"""Optimizers that update an executor's parameters in place, and global-norm clipping.

The update rules are PyTorch's (`torch.optim.SGD` with `dampening=0`, `torch.optim.Adam`);
optimizer state is plain numpy, one array per parameter, created on the first step.

    >>> import numpy as np
    >>> w, g = {"w": np.ones(2, np.float32)}, {"w": np.full(2, 0.5, np.float32)}
    >>> SGD(lr=0.1).update(w, g)
    >>> w["w"]
    array([0.95, 0.95], dtype=float32)
"""
from __future__ import annotations

import math

import numpy as np

from runtime.errors import ConfigError
from symrnn.scalars import as_real


def _check(where: str, arg: str, value, low: float, high: float = math.inf) -> float:
    number = as_real(value)
    if number is None or not low <= number < high:
        raise ConfigError(f"{where}: '{arg}' must be in [{low}, {high}), given {value!r}")
    return number


class Optimizer:
    """Subclasses implement `_update(name, param, grad)` on one array."""

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = _check(type(self).__name__, "lr", lr, 0.0)
        self.weight_decay = _check(type(self).__name__, "weight_decay", weight_decay, 0.0)
        self.state: dict[str, dict] = {}
        self.steps = 0

    def step(self, executor, names=None) -> None:
        """Updates `executor.arg_dict` from `executor.grad_dict` (all parameters that have
        gradients, or `names`)."""
        names = list(executor.grad_dict) if names is None else names
        self.update({n: executor.arg_dict[n] for n in names},
                    {n: executor.grad_dict[n] for n in names})

    def update(self, params: dict, grads: dict) -> None:
        """One step on every array of `params` (updated in place) from `grads`."""
        self.steps += 1
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * p
            self._update(name, p, g)

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """`v = momentum * v + g; p -= lr * v` (plain `p -= lr * g` when momentum is 0)."""

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _check("SGD", "momentum", momentum, 0.0, 1.0)

    def _update(self, name, p, g):
        if self.momentum:
            v = self.state.setdefault(name, {"v": np.zeros_like(p)})["v"]
            v *= self.momentum
            v += g
            g = v
        p -= (self.lr * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction, as `torch.optim.Adam`:
    `p -= lr * m_hat / (sqrt(v_hat) + eps)`."""

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ConfigError(f"Adam: 'betas' must be a pair, given {betas!r}")
        self.betas = tuple(_check("Adam", f"betas[{i}]", b, 0.0, 1.0)
                           for i, b in enumerate(betas))
        self.eps = _check("Adam", "eps", eps, 0.0)

    def _update(self, name, p, g):
        b1, b2 = self.betas
        s = self.state.setdefault(name, {"m": np.zeros_like(p), "v": np.zeros_like(p)})
        s["m"] *= b1
        s["m"] += (1 - b1) * g
        s["v"] *= b2
        s["v"] += (1 - b2) * np.square(g)
        m_hat = s["m"] / (1 - b1 ** self.steps)
        v_hat = s["v"] / (1 - b2 ** self.steps)
        p -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.dtype, copy=False)


def global_norm(grads) -> float:
    """The 2-norm of all gradients together (a dict or a list of arrays)."""
    arrays = grads.values() if isinstance(grads, dict) else grads
    return math.sqrt(sum(float(np.vdot(g, g)) for g in arrays))


def clip_global_norm(grads, max_norm: float) -> float:
    """Scales all gradients in place so that their global norm is at most `max_norm`;
    returns the norm before clipping. A non-finite norm leaves the gradients alone."""
    max_norm = _check("clip_global_norm", "max_norm", max_norm, 0.0)
    if max_norm == 0:
        raise ConfigError("clip_global_norm: 'max_norm' must be > 0, given 0")
    norm = global_norm(grads)
    if math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in (grads.values() if isinstance(grads, dict) else grads):
            g *= scale
    return norm


__all__ = ["SGD", "Adam", "Optimizer", "clip_global_norm", "global_norm"]
