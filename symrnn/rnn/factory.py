"""`RNNFactory`: a stack of recurrent layers described in one call, as in the proposal of
MXNet issue #3930 (sxjscience's `RNNFactory`), built from the cells.

    >>> import symrnn as sym
    >>> rnn = sym.RNNFactory(num_hidden=[5, 3], data_dim=4, typ="lstm", dropout=0.2, name="enc")
    >>> all_h, all_c, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=10)
    >>> all_h[-1].infer_shape(data=(10, 2, 4))[1]
    [(10, 2, 3)]
"""
from __future__ import annotations

from runtime.errors import ConfigError
from symrnn.lengths import LAZY_FROM, Recipe
from symrnn.ops import check_rate, check_size, concat, stack_steps, take_step
from symrnn.rnn.cells import GRUCell, LSTMCell, RNNCell, check_clip, check_proj
from symrnn.rnn.layer_norm import check_layer_norm
from symrnn.rnn.lengths import check_lengths
from symrnn.rnn.modifiers import BidirectionalCell, DropoutCell, ZoneoutCell
from symrnn.scalars import as_int
from symrnn.symbol import Symbol

CELLS = {
    "lstm": (LSTMCell, {}),
    "gru": (GRUCell, {}),
    "rnn_tanh": (RNNCell, {"activation": "tanh"}),
    "rnn_relu": (RNNCell, {"activation": "relu"}),
}
RET_TYPES = ("all", "out", "state")
DROPOUT_MODES = ("step", "sequence")
WHERE = "RNNFactory"


class RNNFactory:
    """A stack of `len(num_hidden)` recurrent layers of type `typ`, time-major `(T, N, C)`.

    Arguments (DESIGN.md section 3 fixes the semantics):

    - `num_hidden`: the hidden size of each layer (a list; an int means one layer).
      `data_dim`: the input size `I` (None: inferred from the data at bind).
    - `typ`: 'lstm', 'gru' (cuDNN form), 'rnn_tanh' or 'rnn_relu'.
    - `dropout[l]`: inverted dropout on layer `l`'s output (what feeds layer `l+1`, or the
      stack's output for the last layer); `dropout_mode` 'step' draws a fresh mask per step,
      'sequence' one mask for all steps. `recurrent_dropout[l]`: one mask per sequence on
      `h_prev` where it enters the recurrent product. `zoneout[l]`: zoneout on `h` and `c`,
      independent masks per layer, state and step; the expectation at inference. A rate is a
      float for every layer or a list with one per layer, each in [0, 1). `weight_drop[l]`:
      DropConnect on layer `l`'s `h2h_weight` (AWD-LSTM), one mask per training forward.
    - `cell_clip` ('lstm' only, cuDNN's cellClip): every layer's cell state is clipped to
      `[-cell_clip, cell_clip]` before its `tanh` and before it is carried; None: no clipping.
    - `proj_size` ('lstm' only, PyTorch's `proj_size`, cuDNN's LSTMP): an int for every layer
      or a list with one per layer, each >= 0 (0: none). Layer `l` with `P = proj_size[l]`
      outputs `h = W_hr (o * tanh(c))`, `W_hr` = `{name}_l{l}_h2r_weight` `(P, H_l)`; its `h`
      states are `(N, P)`, `h2h_weight` `(4H, P)`, and layer `l+1` reads `P` (`2P`) features.
    - `layer_norm` (symrnn.rnn.layer_norm; Ba et al. 2016, as `torch.nn.LayerNorm`): every
      layer normalizes `W x` and `U h` separately over their gate columns before adding the
      biases (any `typ`), and an LSTM its cell state before the tanh of `h`; parameters
      `{name}_l{l}_i2h_gamma`, `_i2h_beta`, `_h2h_gamma`, `_h2h_beta` `(G*H,)` and for
      'lstm' `_c_gamma`, `_c_beta` `(H,)`.
    - `bidirectional`: each layer also runs a reverse cell; its output is the forward and
      reverse outputs concatenated on the features (forward first), `(T, N, 2*H_l)`.
    - `name`: parameters of layer `l` are `{name}_l{l}_i2h_weight` `(G*H, I_l)`,
      `{name}_l{l}_h2h_weight` `(G*H, H)`, `{name}_l{l}_i2h_bias`, `{name}_l{l}_h2h_bias`
      `(G*H,)`, initial states `{name}_l{l}_init_h` / `_init_c` `(N, H)`; the reverse
      direction has `r{l}` in place of `l{l}`.
    - `i2h_weight`, `i2h_bias`, `h2h_weight`, `h2h_bias`, `init_h`, `init_c`: None (create
      the arguments above) or a list of symbols, one per layer; when bidirectional, one per
      layer and direction in PyTorch's order `[l0, r0, l1, r1, ...]`. `init_c` is for 'lstm'
      only.

    A factory describes one stack: call `step` once per graph, since node names derive from
    the factory's name, the layer and the step.
    """

    def __init__(self, num_hidden, data_dim: int | None = None, typ: str = "lstm",
                 dropout=0.0, zoneout=0.0, recurrent_dropout=0.0, dropout_mode: str = "step",
                 i2h_weight=None, i2h_bias=None, h2h_weight=None, h2h_bias=None,
                 init_h=None, init_c=None, bidirectional: bool = False, name: str = "lstm",
                 cell_clip: float | None = None, proj_size=0, weight_drop=0.0,
                 layer_norm: bool = False):
        self.num_hidden = _sizes(num_hidden)
        self.data_dim = None if data_dim is None else check_size(WHERE, "data_dim", data_dim)
        if not isinstance(typ, str) or typ not in CELLS:
            raise ConfigError(f"{WHERE}: 'typ' must be one of {tuple(CELLS)}, given {typ!r}")
        if dropout_mode not in DROPOUT_MODES:
            raise ConfigError(f"{WHERE}: 'dropout_mode' must be one of {DROPOUT_MODES}, "
                              f"given {dropout_mode!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{WHERE}: 'name' must be a non-empty string, given {name!r}")
        if typ != "lstm" and init_c is not None:
            raise ConfigError(f"{WHERE}: 'init_c' is only for typ='lstm'; {typ!r} has no cell "
                              f"state, given {init_c!r}")
        self.typ, self.name, self.dropout_mode = typ, name, dropout_mode
        self.cell_clip = check_clip(WHERE, cell_clip)
        if typ != "lstm" and self.cell_clip is not None:
            raise ConfigError(f"{WHERE}: 'cell_clip' is only for typ='lstm' (it clips the cell "
                              f"state), given {cell_clip!r} for typ={typ!r}")
        self.layer_norm = check_layer_norm(WHERE, layer_norm)
        self.bidirectional = bool(bidirectional)
        layers = len(self.num_hidden)
        self.proj_size = _projections(proj_size, layers, typ)
        self.dropout = _rates("dropout", dropout, layers)
        self.zoneout = _rates("zoneout", zoneout, layers)
        self.recurrent_dropout = _rates("recurrent_dropout", recurrent_dropout, layers)
        self.weight_drop = _rates("weight_drop", weight_drop, layers)
        slots = layers * self.num_directions
        given = {k: _symbols(k, v, slots, self.bidirectional) for k, v in [
            ("i2h_weight", i2h_weight), ("i2h_bias", i2h_bias),
            ("h2h_weight", h2h_weight), ("h2h_bias", h2h_bias)]}
        self._cells = [self._make_cell(i, d, {k: v[self._slot(i, d)] for k, v in given.items()})
                       for i in range(layers) for d in range(self.num_directions)]
        self.init_h = self._initial("init_h", init_h, 0)
        self.init_c = self._initial("init_c", init_c, 1) if typ == "lstm" else None

    # ---- structure --------------------------------------------------------------------------
    @property
    def layer_num(self) -> int:
        return len(self.num_hidden)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def params(self) -> list[Symbol]:
        """All weights and biases: i2h weights, i2h biases, h2h weights, h2h biases, then the
        projections' h2r weights (when `proj_size`), then the layer norms' gains and biases
        (when `layer_norm`)."""
        keys = ("i2h_weight", "i2h_bias", "h2h_weight", "h2h_bias", "h2r_weight", "i2h_gamma",
                "i2h_beta", "h2h_gamma", "h2h_beta", "c_gamma", "c_beta")
        return [self._base(c).params[k] for k in keys for c in self._cells
                if k in self._base(c).params]

    def output_size(self, layer: int) -> int:
        """The size of layer `layer`'s `h` per direction: its `proj_size`, else `num_hidden`."""
        return self.proj_size[layer] or self.num_hidden[layer]

    def prefix(self, layer: int, direction: int = 0) -> str:
        """`{name}_l{layer}_`, or `{name}_r{layer}_` for the reverse direction."""
        return f"{self.name}_{'lr'[direction]}{layer}_"

    def _slot(self, layer: int, direction: int) -> int:
        return layer * self.num_directions + direction

    def _make_cell(self, layer: int, direction: int, params: dict):
        cls, extra = CELLS[self.typ]
        if self.cell_clip is not None:
            extra = {**extra, "cell_clip": self.cell_clip}
        if self.proj_size[layer]:
            extra = {**extra, "proj_size": self.proj_size[layer]}
        size = self.data_dim if layer == 0 else self.output_size(layer - 1) * self.num_directions
        cell = cls(self.num_hidden[layer], prefix=self.prefix(layer, direction),
                   input_size=size, recurrent_dropout=self.recurrent_dropout[layer],
                   weight_drop=self.weight_drop[layer], layer_norm=self.layer_norm,
                   **extra, **params)
        if self.zoneout[layer]:
            cell = ZoneoutCell(cell, zoneout_states=self.zoneout[layer])
        return cell

    @staticmethod
    def _base(cell):
        return cell.base_cell if isinstance(cell, ZoneoutCell) else cell

    def _initial(self, arg: str, given, index: int) -> list[Symbol]:
        if given is not None:
            return _symbols(arg, given, len(self._cells), self.bidirectional)
        return [c.begin_state()[index] for c in self._cells]

    def _layer(self, layer: int):
        """The layer's cell (bidirectional when asked) and the dropout on its output."""
        cells = self._cells[self._slot(layer, 0):self._slot(layer + 1, 0)]
        cell = cells[0] if len(cells) == 1 else BidirectionalCell(
            *cells, output_prefix=self.prefix(layer))
        drop = DropoutCell(self.dropout[layer], prefix=self.prefix(layer),
                           mode=self.dropout_mode)
        return cell, drop

    # ---- the stack over a sequence --------------------------------------------------------
    def step(self, data, prev_h=None, prev_c=None, seq_len: int | None = None,
             ret_typ: str = "all", sequence_length: Symbol | None = None):
        """Feeds the sequence `data` through the stack.

        `data` is a `(T, N, I)` symbol (then `seq_len` = T is required) or a list of T step
        symbols `(N, I)`. `prev_h` / `prev_c` replace the factory's initial states (lists as
        `init_h` / `init_c`). `sequence_length`: an int32 `(N,)` symbol (an input, never given
        a gradient) of per-sample lengths in [0, T], checked at forward; as cuDNN's and
        PyTorch's packed sequences, steps past a sample's length output zeros and leave its
        states unchanged (the reverse direction starts at its last valid step). With `D` = 2
        if bidirectional else 1, `H'_l = D * H_l`:

        - `ret_typ='all'`: for 'lstm' `(all_h, all_c, last_h, last_c)`, otherwise
          `(all_h, last_h)`;
        - `ret_typ='out'`: `all_h`;
        - `ret_typ='state'`: for 'lstm' `(last_h, last_c)`, otherwise `last_h`;

        where `all_h[l]` is layer `l`'s output sequence `(T, N, H'_l)`, exactly what feeds
        layer `l+1` (after zoneout, and after `dropout[l]`, which is identity at inference),
        so `all_h[-1]` is the stack's output; `all_c[l]` the cell states `(T, N, H'_l)`;
        `last_h` / `last_c` the final states `(N, H_l)`, one per layer, or per layer and
        direction `[l0, r0, l1, r1, ...]` when bidirectional (the reverse direction's final
        state is the one after it has read step 0, as PyTorch's `h_n`). These are lists.
        """
        if ret_typ not in RET_TYPES:
            raise ConfigError(f"{WHERE}.step: 'ret_typ' must be one of {RET_TYPES}, "
                              f"given {ret_typ!r}")
        if self.typ != "lstm" and prev_c is not None:
            raise ConfigError(f"{WHERE}.step: 'prev_c' is only for typ='lstm', given "
                              f"{prev_c!r} for typ={self.typ!r}")
        if isinstance(data, Symbol) and isinstance(seq_len, int) and seq_len >= LAZY_FROM:
            return self._lazy_step(data, prev_h, prev_c, seq_len, ret_typ, sequence_length)
        return self._step(data, prev_h, prev_c, seq_len, ret_typ, sequence_length)

    def _lazy_step(self, data, prev_h, prev_c, seq_len, ret_typ, sequence_length):
        """`step`'s result as lazy symbols (symrnn.lengths): built when first read, and
        compiled at short lengths when bound."""
        check_size(f"{WHERE}.step", "seq_len", seq_len)
        example = self._step(data, prev_h, prev_c, 2, ret_typ, sequence_length)

        def build(length: int) -> list:
            return [s._outputs[0] for s in _flat(self._step(data, prev_h, prev_c, length,
                                                            ret_typ, sequence_length))]

        lazy = iter(Recipe(build, seq_len).outputs([s._outputs[0] for s in _flat(example)]))
        return _shaped(example, lazy)

    def _step(self, data, prev_h, prev_c, seq_len, ret_typ, sequence_length=None):
        xs = self._steps(data, seq_len)
        check_lengths(f"{WHERE}.step", sequence_length, "sequence_length")
        h0 = self.init_h if prev_h is None else _symbols(
            "prev_h", prev_h, len(self._cells), self.bidirectional)
        c0 = None
        if self.typ == "lstm":
            c0 = self.init_c if prev_c is None else _symbols(
                "prev_c", prev_c, len(self._cells), self.bidirectional)
        all_h, all_c, last_h, last_c = [], [], [], []
        for layer in range(self.layer_num):
            xs, cells, finals = self._run_layer(layer, xs, h0, c0, ret_typ == "all",
                                                sequence_length)
            all_h.append(stack_steps(xs, name=f"{self.prefix(layer)}out"))
            all_c += cells
            last_h += [f[0] for f in finals]
            last_c += [f[1] for f in finals if len(f) > 1]
        if ret_typ == "out":
            return all_h
        if self.typ != "lstm":
            return (all_h, last_h) if ret_typ == "all" else last_h
        return (all_h, all_c, last_h, last_c) if ret_typ == "all" else (last_h, last_c)

    def _steps(self, data, seq_len) -> list[Symbol]:
        if isinstance(data, Symbol):
            if seq_len is None:
                raise ConfigError(f"{WHERE}.step: 'seq_len' is required when 'data' is one "
                                  f"(T, N, I) symbol, given None")
            check_size(f"{WHERE}.step", "seq_len", seq_len)
            return [take_step(data, t, name=f"{self.name}_t{t}_data", length=seq_len)
                    for t in range(seq_len)]
        if not isinstance(data, (list, tuple)) or not data or not all(
                isinstance(x, Symbol) for x in data):
            raise ConfigError(f"{WHERE}.step: 'data' must be a (T, N, I) Symbol or a non-empty "
                              f"list of step Symbols, given {data!r}")
        if seq_len is not None and seq_len != len(data):
            raise ConfigError(f"{WHERE}.step: 'seq_len' is {seq_len!r} but 'data' holds "
                              f"{len(data)} steps")
        return list(data)

    def _run_layer(self, layer, xs, h0, c0, want_c, lengths=None):
        """Outputs of one layer (after dropout), its cell-state sequence (when wanted, LSTM
        only) and its final states per direction."""
        cell, drop = self._layer(layer)
        states = []
        for d in range(self.num_directions):
            k = self._slot(layer, d)
            states += [h0[k]] if c0 is None else [h0[k], c0[k]]
        cell.reset()
        outs, per_step, final = cell.unroll_steps(xs, states, valid_length=lengths)
        drop.reset()
        outs, _, _ = drop.unroll_steps(outs, [])
        per_dir = len(states) // self.num_directions
        finals = [final[d * per_dir:(d + 1) * per_dir] for d in range(self.num_directions)]
        cells = []
        if want_c and c0 is not None:
            steps = [s[1::per_dir] for s in per_step]
            steps = [s[0] if len(s) == 1 else concat(*s, dim=1, name=f"{self.prefix(layer)}"
                                                                       f"t{t}_c_concat")
                     for t, s in enumerate(steps)]
            cells.append(stack_steps(steps, name=f"{self.prefix(layer)}cells"))
        return outs, cells, finals


def _flat(result) -> list[Symbol]:
    """The symbols of a `step` result (a symbol, a list, or a tuple of those), in order."""
    if isinstance(result, Symbol):
        return [result]
    return [s for part in result for s in _flat(part)]


def _shaped(example, symbols):
    """`example`'s nesting, filled with the next of `symbols` at each symbol."""
    if isinstance(example, Symbol):
        return next(symbols)
    return type(example)(_shaped(part, symbols) for part in example)


def _sizes(num_hidden) -> list[int]:
    if as_int(num_hidden) is not None:
        num_hidden = [num_hidden]
    if not isinstance(num_hidden, (list, tuple)) or not num_hidden:
        raise ConfigError(f"{WHERE}: 'num_hidden' must be a non-empty list of positive ints "
                          f"(one per layer), given {num_hidden!r}")
    return [check_size(WHERE, f"num_hidden[{i}]", n) for i, n in enumerate(num_hidden)]


def _projections(value, layers: int, typ: str) -> list[int]:
    if isinstance(value, (list, tuple)):
        if len(value) != layers:
            raise ConfigError(f"{WHERE}: 'proj_size' must hold one size per layer ({layers}), "
                              f"given {len(value)}: {list(value)!r}")
        sizes = [check_proj(WHERE, p) for p in value]
    else:
        sizes = [check_proj(WHERE, value)] * layers
    if typ != "lstm" and any(sizes):
        raise ConfigError(f"{WHERE}: 'proj_size' is only for typ='lstm', given {value!r} for "
                          f"typ={typ!r}")
    return sizes


def _rates(arg: str, value, layers: int) -> list[float]:
    if isinstance(value, (list, tuple)):
        if len(value) != layers:
            raise ConfigError(f"{WHERE}: '{arg}' must hold one rate per layer ({layers}), "
                              f"given {len(value)}: {list(value)!r}")
        return [check_rate(WHERE, f"{arg}[{i}]", p) for i, p in enumerate(value)]
    return [check_rate(WHERE, arg, value)] * layers


def _symbols(arg: str, value, count: int, bidirectional: bool) -> list:
    """`value` as a list of `count` symbols (None: `count` Nones to be filled in)."""
    if value is None:
        return [None] * count
    if isinstance(value, Symbol) and count == 1:
        value = [value]
    what = "per layer and direction [l0, r0, l1, ...]" if bidirectional else "per layer"
    if not isinstance(value, (list, tuple)) or len(value) != count:
        got = len(value) if isinstance(value, (list, tuple)) else type(value).__name__
        raise ConfigError(f"{WHERE}: '{arg}' must be a list of {count} symbols, one {what}, "
                          f"given {got}")
    for i, v in enumerate(value):
        if not isinstance(v, Symbol) or len(v) != 1:
            raise ConfigError(f"{WHERE}: '{arg}[{i}]' must be a single-output Symbol, "
                              f"given {v!r}")
    return list(value)


__all__ = ["RNNFactory"]
