"""Recurrent cells with MXNet's protocol: `cell(x, states) -> (output, new_states)`.

A cell describes one time step; `unroll` repeats it over a sequence. Every node a step adds is
named from the cell's prefix, the step and the gate (`lstm_l0_t3_i2h`, `lstm_l0_t3_gates`,
`lstm_l0_t3_c`), so that names are stable and say what a node is. Each step projects the input
and the previous hidden state with one FullyConnected each over the packed `(G*H, .)` weights,
adds them and splits the sum into gates: the structure the compiler's GEMM batching and gate
fusion look for.

    >>> import symrnn as sym
    >>> cell = sym.LSTMCell(4, prefix="enc_", input_size=3)
    >>> outputs, states = cell.unroll(5, sym.Variable("data"))
    >>> [s.name for s in cell.begin_state()]
    ['enc_init_h', 'enc_init_c']
"""
from __future__ import annotations

from runtime.errors import ConfigError
from symrnn.ops import (
    Dropout,
    FullyConnected,
    as_param,
    check_rate,
    check_size,
    param_variable,
    relu,
    sigmoid,
    split,
    stack_steps,
    take_step,
    tanh,
)
from symrnn.rnn.layer_norm import (
    check_layer_norm,
    normalized_cell,
    normalized_projections,
)
from symrnn.rnn.lengths import ValidRows, check_lengths
from symrnn.rnn.options import check_clip, check_proj
from symrnn.symbol import Symbol, Variable, _op

LAYOUTS = ("TNC",)


def _add(a: Symbol, b: Symbol, name: str) -> Symbol:
    return _op("add", [a, b], name)


def _mul(a: Symbol, b: Symbol, name: str) -> Symbol:
    return _op("mul", [a, b], name)


def split_steps(where: str, length: int, inputs, layout: str, prefix: str) -> list[Symbol]:
    """`inputs` as a list of `length` step symbols: a `(T, N, C)` symbol is cut with one
    `take` per step, named `{prefix}t{t}_data`; a list is checked and returned."""
    check_size(where, "length", length)
    if layout not in LAYOUTS:
        raise ConfigError(f"{where}: 'layout' must be one of {LAYOUTS} (time-major), "
                          f"given {layout!r}")
    if isinstance(inputs, Symbol):
        return [take_step(inputs, t, name=f"{prefix}t{t}_data", length=length)
                for t in range(length)]
    if not isinstance(inputs, (list, tuple)) or not all(isinstance(x, Symbol) for x in inputs):
        raise ConfigError(f"{where}: 'inputs' must be a (T, N, C) Symbol or a list of step "
                          f"Symbols, given {type(inputs).__name__}")
    if len(inputs) != length:
        raise ConfigError(f"{where}: 'inputs' has {len(inputs)} steps but 'length' is {length}")
    return list(inputs)


def merge_steps(outputs: list[Symbol], merge: bool, name: str):
    """A `(T, N, C)` symbol named `name` when `merge`, else the list of step symbols."""
    return stack_steps(outputs, name=name) if merge else list(outputs)


class BaseRNNCell:
    """The cell protocol. Subclasses set `state_info` and implement `_step(x, states, t)`.

    Steps are named by `t`: `unroll` passes the time index explicitly (the reverse direction
    of a bidirectional layer names step `t` after the input step it reads); a cell called
    directly numbers its calls 0, 1, ... until `reset()`.
    """

    def __init__(self, prefix: str = ""):
        if not isinstance(prefix, str):
            raise ConfigError(f"{type(self).__name__}: 'prefix' must be a string, "
                              f"given {prefix!r}")
        self._prefix = prefix
        self._counter = 0

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def state_info(self) -> list[dict]:
        """One dict per state: `name` ('h' or 'c'), `shape` ((0, H): batch inferred) and
        `__layout__` ('NC')."""
        return []

    def begin_state(self) -> list[Symbol]:
        """Initial states as arguments `{prefix}init_h`, `{prefix}init_c` of shape `(0, H)`
        (the batch is inferred at bind), marked `kind="state"`."""
        return [Variable(f"{self._prefix}init_{info['name']}", shape=info["shape"],
                         kind="state") for info in self.state_info]

    def reset(self) -> None:
        self._counter = 0

    def __call__(self, inputs: Symbol, states, step: int | None = None):
        """One step: `(output, new_states)`."""
        if step is None:
            step, self._counter = self._counter, self._counter + 1
        if not isinstance(states, (list, tuple)):
            raise ConfigError(f"{type(self).__name__} {self._prefix!r}: 'states' must be a list "
                              f"of {len(self.state_info)} symbols, given {type(states).__name__}")
        states = list(states)
        if len(states) != len(self.state_info):
            raise ConfigError(f"{type(self).__name__} {self._prefix!r}: 'states' must hold "
                              f"{len(self.state_info)} symbols, given {len(states)}")
        return self._step(inputs, states, step)

    def _step(self, x: Symbol, states: list[Symbol], t: int):
        raise NotImplementedError

    def unroll_steps(self, steps: list[Symbol], states, reverse: bool = False,
                     valid_length: Symbol | None = None):
        """Runs the cell over `steps` (in reverse time order when `reverse`).

        Returns `(outputs, step_states, final_states)`, `outputs[t]` and `step_states[t]`
        indexed by time; `final_states` are the states after the last step processed. With
        `valid_length` (int32 `(N,)`), step `t` of sample `n` is valid when
        `t < valid_length[n]`: past it the states are left unchanged and the output is 0."""
        order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
        outputs, step_states = [None] * len(steps), [None] * len(steps)
        states = list(states)
        masking = valid_length is not None and self.state_info
        rows = ValidRows(valid_length, len(steps), self.prefix) if masking else None
        for t in order:
            out, new = self(steps[t], states, step=t)
            if rows is not None:
                out, new = rows.mask_step(t, out, new, states, self.state_info)
            outputs[t], states = out, new
            step_states[t] = states
        return outputs, step_states, states

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "TNC",
               merge_outputs: bool | None = None, valid_length: Symbol | None = None):
        """Unrolls over `length` steps: `(outputs, final_states)`.

        `inputs` is a `(T, N, C)` symbol or a list of `T` step symbols `(N, C)`. Outputs are
        merged into one `(T, N, H)` symbol `{prefix}out` when `merge_outputs` is True, or by
        default when `inputs` is one symbol; otherwise they are a list of step symbols.
        `begin_state` defaults to `begin_state()`. `valid_length`: an int32 `(N,)` symbol of
        per-sample lengths in [0, length] (Gluon's): outputs past a sample's length are 0 and
        its final states are those after its own last step.
        """
        where = f"{type(self).__name__}.unroll"
        steps = split_steps(where, length, inputs, layout, self.prefix)
        check_lengths(where, valid_length)
        self.reset()
        states = self.begin_state() if begin_state is None else list(begin_state)
        outputs, _, final = self.unroll_steps(steps, states, valid_length=valid_length)
        merge = isinstance(inputs, Symbol) if merge_outputs is None else merge_outputs
        return merge_steps(outputs, merge, f"{self.prefix}out"), final


class _GatedCell(BaseRNNCell):
    """A cell whose step starts from `i2h = FC(x)` and `h2h = FC(h_prev)` over packed
    `(G*H, .)` weights `{prefix}i2h_weight`, `{prefix}h2h_weight` and biases.

    `recurrent_dropout` drops `h_prev` where it enters `h2h` only, with one mask for the whole
    sequence (Gal and Ghahramani, 2016), named `{prefix}h2h_dropout_mask`. `weight_drop`
    (DropConnect, as AWD-LSTM's WeightDrop): in training, inverted dropout on `h2h_weight`
    itself, node `{prefix}h2h_weight_drop`, one mask per forward applied once and read by
    every step; identity at inference. `layer_norm` (symrnn.rnn.layer_norm): `W x` and `U h`
    each normalized over their gate columns before the biases are added, with the parameters
    `{prefix}i2h_gamma`, `{prefix}i2h_beta`, `{prefix}h2h_gamma`, `{prefix}h2h_beta` `(G*H,)`.
    """

    num_gates = 1
    state_names = ("h",)

    def __init__(self, num_hidden: int, prefix: str = "", input_size: int | None = None,
                 recurrent_dropout: float = 0.0, i2h_weight=None, i2h_bias=None,
                 h2h_weight=None, h2h_bias=None, weight_drop: float = 0.0,
                 layer_norm: bool = False):
        super().__init__(prefix)
        where = type(self).__name__
        self._layer_norm = check_layer_norm(where, layer_norm)
        self._num_hidden = check_size(where, "num_hidden", num_hidden)
        if input_size is not None:
            check_size(where, "input_size", input_size)
        self._input_size = input_size
        self._recurrent_dropout = check_rate(where, "recurrent_dropout", recurrent_dropout)
        self._weight_drop = check_rate(where, "weight_drop", weight_drop)
        self._h2h_weight = None  # the weight the steps read: dropped once, on first use
        size = self.num_gates * num_hidden
        self.params = {
            "i2h_weight": self._param(i2h_weight, "i2h_weight", (size, input_size or 0)),
            "i2h_bias": self._param(i2h_bias, "i2h_bias", (size,)),
            "h2h_weight": self._param(h2h_weight, "h2h_weight", (size, self.output_size)),
            "h2h_bias": self._param(h2h_bias, "h2h_bias", (size,)),
        }
        if self._layer_norm:
            for k in ("i2h_gamma", "i2h_beta", "h2h_gamma", "h2h_beta"):
                self.params[k] = param_variable(self._prefix + k, shape=(size,))

    def _param(self, given, suffix: str, shape) -> Symbol:
        if given is None:
            return param_variable(self._prefix + suffix, shape=shape)
        if not isinstance(given, Symbol) or len(given) != 1:
            raise ConfigError(f"{type(self).__name__}: '{suffix}' must be a single-output "
                              f"Symbol, given {given!r}")
        return as_param(given)

    @property
    def num_hidden(self) -> int:
        return self._num_hidden

    @property
    def output_size(self) -> int:
        """The size of `h` (the output and the recurrent input): `num_hidden` here."""
        return self._num_hidden

    @property
    def layer_norm(self) -> bool:
        return self._layer_norm

    @property
    def state_info(self) -> list[dict]:
        return [{"name": n, "shape": (0, self.output_size if n == "h" else self._num_hidden),
                 "__layout__": "NC"} for n in self.state_names]

    def _recurrent_weight(self) -> Symbol:
        if not self._weight_drop:
            return self.params["h2h_weight"]
        if self._h2h_weight is None:
            self._h2h_weight = Dropout(self.params["h2h_weight"], self._weight_drop,
                                       name=self._prefix + "h2h_weight_drop")
        return self._h2h_weight

    def _dropped(self, h: Symbol, t: int) -> Symbol:
        if not self._recurrent_dropout:
            return h
        return Dropout(h, self._recurrent_dropout, name=f"{self._prefix}t{t}_h2h_dropout",
                       mask=self._prefix + "h2h_dropout_mask")

    def _gate_parts(self, x: Symbol, h: Symbol, t: int):
        """With layer norm: the `G` normalized slices of the input and recurrent sides."""
        return normalized_projections(self, x, self._dropped(h, t), t)

    def _projections(self, x: Symbol, h: Symbol, t: int):
        p = f"{self._prefix}t{t}_"
        h = self._dropped(h, t)
        size = self.num_gates * self._num_hidden
        w = self.params
        i2h = FullyConnected(x, w["i2h_weight"], w["i2h_bias"], size, name=p + "i2h")
        h2h = FullyConnected(h, self._recurrent_weight(), w["h2h_bias"], size, name=p + "h2h")
        return i2h, h2h


class RNNCell(_GatedCell):
    """Elman cell: `h = f(W x + b_W + R h_prev + b_R)`, `f` tanh or relu (cuDNN's RNN)."""

    def __init__(self, num_hidden: int, activation: str = "tanh", prefix: str = "rnn_",
                 input_size: int | None = None, **kwargs):
        if activation not in ("tanh", "relu"):
            raise ConfigError(f"RNNCell: 'activation' must be 'tanh' or 'relu', "
                              f"given {activation!r}")
        self._activation = activation
        super().__init__(num_hidden, prefix, input_size, **kwargs)

    def _step(self, x, states, t):
        p = f"{self._prefix}t{t}_"
        if self._layer_norm:
            (i2h,), (h2h,) = self._gate_parts(x, states[0], t)
        else:
            i2h, h2h = self._projections(x, states[0], t)
        act = tanh if self._activation == "tanh" else relu
        h = act(_add(i2h, h2h, p + "gates"), name=p + "h")
        return h, [h]


class LSTMCell(_GatedCell):
    """LSTM in cuDNN's form, no peepholes; gates `i, f, g, o` packed in that order:
    `c = f * c_prev + i * g`, `h = o * tanh(c)`. States `[h, c]`; the output is `h`.

    `cell_clip` (cuDNN's cellClip): `c` is clipped to `[-cell_clip, cell_clip]` before the
    `tanh` and before it is carried, node `{prefix}t{t}_c` (the sum is then `..._c_sum`).

    `proj_size` P > 0 (PyTorch's and cuDNN's LSTMP): `h = W_hr (o * tanh(c))` with the
    parameter `{prefix}h2r_weight` `(P, H)`; `h` (the output and state) is `(N, P)` and
    `h2h_weight` `(4H, P)`. 0 or None: no projection.

    `layer_norm`: as every gated cell, and `h = o * tanh(LN_c(c))` with `{prefix}c_gamma`,
    `{prefix}c_beta` `(H,)`; `c` is carried (and clipped) unnormalized."""

    num_gates = 4
    state_names = ("h", "c")

    def __init__(self, num_hidden: int, prefix: str = "lstm_", input_size: int | None = None,
                 cell_clip: float | None = None, proj_size: int | None = None,
                 h2r_weight=None, **kwargs):
        self._cell_clip = check_clip("LSTMCell", cell_clip)
        self._proj_size = check_proj("LSTMCell", proj_size)
        super().__init__(num_hidden, prefix, input_size, **kwargs)
        if self._layer_norm:
            for k in ("c_gamma", "c_beta"):
                self.params[k] = param_variable(self._prefix + k, shape=(num_hidden,))
        if self._proj_size:
            self.params["h2r_weight"] = self._param(h2r_weight, "h2r_weight",
                                                    (self._proj_size, num_hidden))
        elif h2r_weight is not None:
            raise ConfigError(f"LSTMCell: 'h2r_weight' is only for proj_size > 0, "
                              f"given {h2r_weight!r} with proj_size={proj_size!r}")

    @property
    def output_size(self) -> int:
        return self._proj_size or self._num_hidden

    @property
    def proj_size(self) -> int:
        return self._proj_size

    @property
    def cell_clip(self) -> float | None:
        return self._cell_clip

    def _step(self, x, states, t):
        p = f"{self._prefix}t{t}_"
        h_prev, c_prev = states
        if self._layer_norm:
            xi, hh = self._gate_parts(x, h_prev, t)
            gates = [_add(a, b, f"{p}gate{k}") for k, (a, b) in enumerate(zip(xi, hh))]
        else:
            i2h, h2h = self._projections(x, h_prev, t)
            gates = split(_add(i2h, h2h, p + "gates"), num_outputs=4, axis=1, name=p + "slice")
        i = sigmoid(gates[0], name=p + "i")
        f = sigmoid(gates[1], name=p + "f")
        g = tanh(gates[2], name=p + "g")
        o = sigmoid(gates[3], name=p + "o")
        clip = self._cell_clip
        c = _add(_mul(f, c_prev, p + "f_c"), _mul(i, g, p + "i_g"), p + ("c_sum" if clip else "c"))
        if clip:
            c = _op("clip", [c], p + "c", scalar=clip)
        proj = self._proj_size
        normed = normalized_cell(self, c, t) if self._layer_norm else c
        h = _mul(o, tanh(normed, name=p + "tanh_c"), p + ("h_full" if proj else "h"))
        if proj:
            h = FullyConnected(h, self.params["h2r_weight"], None, proj, no_bias=True,
                               name=p + "h")
        return h, [h, c]


class GRUCell(_GatedCell):
    """GRU in cuDNN's form, gates `r, z, n` packed in that order, the reset gate applied
    after the recurrent product: `n = tanh(W_n x + b_Wn + r * (R_n h + b_Rn))`,
    `h = (1 - z) * n + z * h_prev`. As the `n` gate needs `i2h` and `h2h` apart, both are
    split into gates and `r`, `z` add their halves (MXNet's GRUCell does the same)."""

    num_gates = 3

    def __init__(self, num_hidden: int, prefix: str = "gru_", input_size: int | None = None,
                 **kwargs):
        super().__init__(num_hidden, prefix, input_size, **kwargs)

    def _step(self, x, states, t):
        p = f"{self._prefix}t{t}_"
        h_prev = states[0]
        if self._layer_norm:
            xi, hh = self._gate_parts(x, h_prev, t)
        else:
            i2h, h2h = self._projections(x, h_prev, t)
            xi = split(i2h, num_outputs=3, axis=1, name=p + "i2h_slice")
            hh = split(h2h, num_outputs=3, axis=1, name=p + "h2h_slice")
        r = sigmoid(_add(xi[0], hh[0], p + "r_sum"), name=p + "r")
        z = sigmoid(_add(xi[1], hh[1], p + "z_sum"), name=p + "z")
        n = tanh(_add(xi[2], _mul(r, hh[2], p + "r_h2h"), p + "n_sum"), name=p + "n")
        keep_new = _op("rsub_scalar", [z], p + "one_minus_z", scalar=1.0)
        h = _add(_mul(keep_new, n, p + "new_part"), _mul(z, h_prev, p + "old_part"), p + "h")
        return h, [h]


__all__ = ["BaseRNNCell", "GRUCell", "LSTMCell", "RNNCell", "merge_steps", "split_steps"]
