"""Model helpers: layers, the token-mean loss, parameter initialization, binding for training,
and a character language model with text sampling.

    >>> import symrnn as sym
    >>> lm = sym.CharLM(vocab_size=50, embed_dim=16, num_hidden=[32])
    >>> ex, links = lm.bind(seq_len=8, batch=4, backend="reference")
    >>> sym.init_params(ex, seed=0)
    >>> sorted(links.values())
    ['lm_l0_init_c', 'lm_l0_init_h']
"""
from __future__ import annotations

import math

import numpy as np

from runtime.errors import ConfigError
from symrnn.ops import Embedding, FullyConnected, check_size, softmax_cross_entropy
from symrnn.rnn import RNNFactory
from symrnn.scalars import as_int, as_real
from symrnn.symbol import Group, Symbol, Variable, _op

_RNN_PARAMS = ("i2h_weight", "i2h_bias", "h2h_weight", "h2h_bias")


def embedding(data: Symbol, vocab: int, dim: int, name: str = "embed") -> Symbol:
    """Integer tokens `(...)` -> vectors `(..., dim)`; weight `{name}_weight` `(vocab, dim)`."""
    return Embedding(data, input_dim=vocab, output_dim=dim, name=name)


def dense(x: Symbol, num_hidden: int, name: str = "dense") -> Symbol:
    """`x @ W.T + b` on the last axis; `{name}_weight` `(num_hidden, in)`, `{name}_bias`."""
    return FullyConnected(x, num_hidden=num_hidden, name=name)


def softmax_ce_mean(logits: Symbol, labels: Symbol, num_tokens: int | None = None,
                    name: str = "loss") -> Symbol:
    """Softmax cross-entropy averaged over tokens: a scalar.

    `num_tokens` is the number of labels; by default it comes from the shape `labels` was
    declared with (`Variable('label', shape=(T, N))`).
    """
    if num_tokens is None:
        shape = labels.attr("shape")
        if not shape or 0 in shape:
            raise ConfigError("softmax_ce_mean: give 'num_tokens', or declare 'labels' with "
                              f"a full shape; {labels.name!r} has shape {shape}")
        num_tokens = math.prod(shape)
    check_size("softmax_ce_mean", "num_tokens", num_tokens)
    total = softmax_cross_entropy(logits, labels, name=f"{name}_sum")
    return _op("mul_scalar", [total], name, scalar=1.0 / num_tokens)


def state_args(symbol: Symbol) -> list[str]:
    """Arguments that hold recurrent states (Variables marked `kind="state"`)."""
    return [n.name for n in symbol.topo_nodes() if n.op == "var"
            and n.attrs.get("kind") == "state"]


def param_names(symbol: Symbol, inputs=()) -> list[str]:
    """Arguments that are trained: all but `inputs` (data, labels) and the states."""
    skip = set(inputs) | set(state_args(symbol))
    return [a for a in symbol.list_arguments() if a not in skip]


def bind_model(symbol: Symbol, backend: str = "cpu", optimize: bool = True, dtype=None,
               seed: int = 0, train: bool = True, **shapes):
    """`simple_bind` with gradients for the parameters only: the arguments named in
    `shapes` (data, labels) and the states get none. `train=False` binds without gradients."""
    req = {p: "write" for p in param_names(symbol, shapes)} if train else "null"
    return symbol.simple_bind(backend=backend, grad_req=req, optimize=optimize, dtype=dtype,
                              seed=seed, **shapes)


def declared_params(symbol: Symbol) -> list[str]:
    """Arguments declared as parameters (Variables marked `kind="param"`): the weights and
    biases of cells, factories, `FullyConnected` and `Embedding`, those handed to them
    included. Never data, labels or states."""
    return [n.name for n in symbol.topo_nodes() if n.op == "var"
            and n.attrs.get("kind") == "param"]


def init_params(executor, names=None, scale: float | None = None, seed: int = 0) -> None:
    """Fills parameters in place from `uniform(-b, b)`, drawn in argument order.

    `names` defaults to the declared parameters of the executor's symbol
    (`declared_params`), whatever `grad_req` says; an executor without a symbol (a loaded
    artifact) defaults to the arguments that have gradients. `b` is `scale` when given;
    otherwise PyTorch's rule: `1/sqrt(H)` for the weights and biases of a recurrent layer
    (`..._i2h_weight` etc., H its hidden size), `1/sqrt(fan_in)` for other weights (their
    second axis) and for a bias `{p}_bias` (the fan-in of `{p}_weight`). Gains `..._gamma`
    are set to 1 and their biases `..._beta` to 0 (layer norm; MXNet's rule by name).
    """
    args = executor.arg_dict
    names = _default_params(executor) if names is None else list(names)
    unknown = [n for n in names if n not in args]
    if unknown:
        raise ConfigError(f"init_params: {unknown[0]!r} is not an argument; the arguments "
                          f"are {list(args)}")
    if as_int(seed) is None or seed < 0:
        raise ConfigError(f"init_params: 'seed' must be a non-negative int, given {seed!r}")
    rng = np.random.default_rng(int(seed))
    for n in [a for a in args if a in set(names)]:
        if n.endswith(("_gamma", "_beta")):  # a normalization's gain and bias: 1 and 0
            args[n][...] = 1.0 if n.endswith("_gamma") else 0.0
            continue
        bound = scale if scale is not None else 1.0 / math.sqrt(_fan_in(n, args))
        args[n][...] = rng.uniform(-bound, bound, args[n].shape)


def _default_params(executor) -> list[str]:
    symbol = getattr(executor, "symbol", None)
    if symbol is None:
        return list(executor.grad_dict)
    return [n for n in declared_params(symbol) if n in executor.arg_dict]


def _fan_in(name: str, args: dict) -> int:
    for suffix in _RNN_PARAMS:
        recurrent = name[: -len(suffix)] + "h2h_weight"
        if name.endswith(suffix) and recurrent in args:
            return args[recurrent].shape[1]
    if name.endswith("_bias") and name[:-5] + "_weight" in args:
        return max(_fan_in(name[:-5] + "_weight", args), 1)
    shape = args[name].shape
    return max(shape[1] if len(shape) == 2 else shape[-1] if shape else 1, 1)


def state_links(factory: RNNFactory, last_h, last_c=None) -> dict[str, str]:
    """`{final-state output: initial-state argument}` of a factory's stack, what the training
    loop copies to carry states from one batch into the next."""
    inits = list(factory.init_h) + list(factory.init_c or [])
    finals = list(last_h) + list(last_c or [])
    return {f.list_outputs()[0]: i.name for f, i in zip(finals, inits)}


class CharLM:
    """Tokens -> Embedding -> a recurrent stack -> dense -> logits over the vocabulary.

    `symbol(seq_len, batch)` gives `Group([loss, *final states])` and the state links;
    `symbol(seq_len, batch, head="logits")` the same with the logits `(T, N, V)` first.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, num_hidden=(256,),
                 typ: str = "lstm", dropout=0.0, zoneout=0.0, name: str = "lm"):
        self.vocab_size = check_size("CharLM", "vocab_size", vocab_size)
        self.embed_dim = check_size("CharLM", "embed_dim", embed_dim)
        self.num_hidden = [num_hidden] if as_int(num_hidden) is not None else num_hidden
        self.typ, self.dropout, self.zoneout, self.name = typ, dropout, zoneout, name
        self._factory()  # validates the stack's arguments now

    def _factory(self) -> RNNFactory:
        return RNNFactory(self.num_hidden, data_dim=self.embed_dim, typ=self.typ,
                          dropout=self.dropout, zoneout=self.zoneout, name=self.name)

    def symbol(self, seq_len: int, batch: int, head: str = "loss"):
        """`(Group([head, *final states]), links)`; `head` is 'loss' or 'logits'."""
        if head not in ("loss", "logits"):
            raise ConfigError(f"CharLM: 'head' must be 'loss' or 'logits', given {head!r}")
        data = Variable("data", shape=(seq_len, batch), dtype="int32")
        label = Variable("label", shape=(seq_len, batch), dtype="int32")
        rnn = self._factory()
        x = embedding(data, self.vocab_size, self.embed_dim, name=f"{self.name}_embed")
        out = rnn.step(x, seq_len=seq_len)
        last_h, last_c = out[-2:] if self.typ == "lstm" else (out[-1], None)
        logits = dense(out[0][-1], self.vocab_size, name=f"{self.name}_decoder")
        first = softmax_ce_mean(logits, label, name=f"{self.name}_loss") \
            if head == "loss" else logits
        heads = Group([first, *last_h, *(last_c or [])])
        return heads, state_links(rnn, last_h, last_c)

    def bind(self, seq_len: int, batch: int, backend: str = "cpu", optimize: bool = True,
             seed: int = 0, train: bool = True, head: str | None = None):
        """`(executor, links)`. `train=True`: the loss head and parameter gradients;
        `train=False`: no gradients, the logits head (or `head='loss'`, for evaluation)."""
        head = head or ("loss" if train else "logits")
        net, links = self.symbol(seq_len, batch, head)
        shapes = {"data": (seq_len, batch)}
        if head == "loss":
            shapes["label"] = (seq_len, batch)
        ex = bind_model(net, backend, optimize, seed=seed, train=train, **shapes)
        ex.sym_gen = lambda length: self.symbol(length, batch, head)[0]  # for buckets
        return ex, links

    def sample(self, params: dict, vocab, prime: str = "\n", length: int = 200,
               temperature: float = 0.8, seed: int = 0, backend: str = "cpu") -> str:
        """Generates `length` characters after `prime` with a T=1, N=1 inference executor
        that shares the trained parameters (`params`: an executor's `arg_dict`)."""
        if not prime:
            raise ConfigError("CharLM.sample: 'prime' must hold at least one character")
        if as_real(temperature) is None or temperature <= 0:
            raise ConfigError(f"CharLM.sample: 'temperature' must be > 0, given {temperature}")
        ex, links = self.bind(1, 1, backend, train=False)
        skip = {"data", "label", *links.values()}
        ex.copy_params_from({k: v for k, v in params.items() if k not in skip}, True)
        rng = np.random.default_rng(seed)
        ids, out = list(vocab.encode(prime)), []
        for i in range(len(ids) + length - 1):
            token = ids[i] if i < len(ids) else out[-1]
            logits = ex.forward(data=np.full((1, 1), token, np.int32))
            for o, a in links.items():
                ex.arg_dict[a][...] = ex.output_dict[o]
            if i >= len(ids) - 1:
                out.append(_draw(logits[0].reshape(-1), temperature, rng))
        return prime + vocab.decode(out)


def _draw(logits: np.ndarray, temperature: float, rng) -> int:
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


__all__ = [
    "CharLM", "bind_model", "declared_params", "dense", "embedding", "init_params", "param_names",
    "softmax_ce_mean", "state_args", "state_links",
]
