"""Cells built from cells: stacks, dropout on the output, zoneout, two directions.

    >>> import symrnn as sym
    >>> stack = sym.SequentialRNNCell()
    >>> stack.add(sym.ZoneoutCell(sym.LSTMCell(8, prefix="l0_", input_size=4), zoneout_states=.1))
    >>> stack.add(sym.DropoutCell(0.2, prefix="l0_"))
    >>> stack.add(sym.LSTMCell(8, prefix="l1_", input_size=8))
    >>> outputs, states = stack.unroll(10, sym.Variable("data"))
"""
from __future__ import annotations

from runtime.errors import ConfigError
from symrnn.ops import Dropout, check_rate, concat, step_dropout, step_zoneout
from symrnn.rnn.cells import BaseRNNCell
from symrnn.symbol import Symbol, _op

DROPOUT_MODES = ("step", "sequence")


def _check_cell(where: str, arg: str, cell) -> BaseRNNCell:
    if not isinstance(cell, BaseRNNCell):
        raise ConfigError(f"{where}: '{arg}' must be a cell, given {type(cell).__name__}")
    return cell


class SequentialRNNCell(BaseRNNCell):
    """Cells applied one after the other; the states are the children's, concatenated.

    `unroll` runs one child over the whole sequence before the next, so a stack may hold
    a BidirectionalCell. `prefix` defaults to the first child's."""

    def __init__(self, prefix: str | None = None):
        super().__init__(prefix or "")
        self._own_prefix = prefix is not None
        self._cells: list[BaseRNNCell] = []

    def add(self, cell: BaseRNNCell) -> None:
        self._cells.append(_check_cell("SequentialRNNCell.add", "cell", cell))

    @property
    def cells(self) -> list[BaseRNNCell]:
        return list(self._cells)

    @property
    def prefix(self) -> str:
        if self._own_prefix or not self._cells:
            return self._prefix
        return self._cells[0].prefix

    @property
    def state_info(self) -> list[dict]:
        return [info for c in self._cells for info in c.state_info]

    def begin_state(self) -> list[Symbol]:
        return [s for c in self._cells for s in c.begin_state()]

    def reset(self) -> None:
        super().reset()
        for c in self._cells:
            c.reset()

    def _split_states(self, states):
        out, at = [], 0
        for c in self._cells:
            k = len(c.state_info)
            out.append(list(states[at:at + k]))
            at += k
        return out

    def _step(self, x, states, t):
        new_states = []
        for cell, own in zip(self._cells, self._split_states(states)):
            x, own = cell(x, own, step=t)
            new_states += own
        return x, new_states

    def unroll_steps(self, steps, states, reverse=False, valid_length=None):
        if len(states) != len(self.state_info):
            raise ConfigError(f"SequentialRNNCell: 'states' must hold {len(self.state_info)} "
                              f"symbols, given {len(states)}")
        per_step = [[] for _ in steps]
        final = []
        for cell, own in zip(self._cells, self._split_states(states)):
            steps, cell_steps, cell_final = cell.unroll_steps(steps, own, reverse,
                                                              valid_length=valid_length)
            for acc, s in zip(per_step, cell_steps):
                acc += s
            final += cell_final
        return steps, per_step, final


class DropoutCell(BaseRNNCell):
    """Inverted dropout on the input, as a stateless cell (put it after a cell to drop that
    cell's output). `mode='step'` draws a fresh mask per step (node `{prefix}t{t}_dropout`,
    stream `step_mask_id('{prefix}dropout', t)`); `'sequence'` shares the mask
    `{prefix}dropout_mask` across the steps (variational dropout). Rate 0 adds no node."""

    def __init__(self, dropout: float, prefix: str = "dropout_", mode: str = "step"):
        super().__init__(prefix)
        self._p = check_rate("DropoutCell", "dropout", dropout)
        if mode not in DROPOUT_MODES:
            raise ConfigError(f"DropoutCell: 'mode' must be one of {DROPOUT_MODES}, "
                              f"given {mode!r}")
        self._mode = mode

    def _step(self, x, states, t):
        if self._p == 0:
            return x, states
        name = f"{self._prefix}t{t}_dropout"
        if self._mode == "sequence":
            return Dropout(x, self._p, name=name, mask=f"{self._prefix}dropout_mask"), states
        return step_dropout(x, self._p, name, f"{self._prefix}dropout", t), states


class ZoneoutCell(BaseRNNCell):
    """Zoneout (Krueger et al., 2016) around `base_cell`.

    Each state `s` becomes `zoneout(s_prev, s_new)`, node `{prefix}t{t}_zoneout_{h|c}`, with a
    fresh mask per step and state (stream `step_mask_id('{prefix}zoneout_{h|c}', t)`): in
    training a unit keeps its previous value with probability `zoneout_states`, at inference
    `s = z * s_prev + (1 - z) * s_new`. The base cell computes all its new states from the
    unmixed ones (for the LSTM, `h_new` uses `c_new`), and the mix comes after.

    The output: with `zoneout_outputs > 0` it is mixed with the previous output (zeros
    before the first step) under its own mask, as in MXNet; otherwise, when the base cell's
    output is its hidden state (LSTM, GRU and RNN cells), the output is the mixed hidden
    state, so that the next layer sees the state the cell carries. (MXNet returned the
    unmixed candidate there.)
    """

    def __init__(self, base_cell: BaseRNNCell, zoneout_outputs: float = 0.0,
                 zoneout_states: float = 0.0):
        self.base_cell = _check_cell("ZoneoutCell", "base_cell", base_cell)
        if isinstance(base_cell, BidirectionalCell):
            raise ConfigError("ZoneoutCell: 'base_cell' cannot be a BidirectionalCell; wrap "
                              "each direction instead")
        super().__init__(base_cell.prefix)
        self._p_out = check_rate("ZoneoutCell", "zoneout_outputs", zoneout_outputs)
        self._p_state = check_rate("ZoneoutCell", "zoneout_states", zoneout_states)
        self._prev_output = None

    @property
    def state_info(self) -> list[dict]:
        return self.base_cell.state_info

    def begin_state(self) -> list[Symbol]:
        return self.base_cell.begin_state()

    def reset(self) -> None:
        super().reset()
        self.base_cell.reset()
        self._prev_output = None

    def _step(self, x, states, t):
        out, new = self.base_cell(x, states, step=t)
        p = f"{self._prefix}t{t}_"
        names = [info.get("name", str(i)) for i, info in enumerate(self.state_info)]
        output_is_state = bool(new) and out._outputs == new[0]._outputs
        if self._p_state:
            new = [step_zoneout(old, s, self._p_state, f"{p}zoneout_{n}",
                                f"{self._prefix}zoneout_{n}", t)
                   for old, s, n in zip(states, new, names)]
        if self._p_out:
            prev = self._prev_output
            if prev is None:
                prev = _op("mul_scalar", [out], p + "zeros", scalar=0.0)
            out = step_zoneout(prev, out, self._p_out, p + "zoneout_out",
                               self._prefix + "zoneout_out", t)
        elif output_is_state:
            out = new[0]
        self._prev_output = out
        return out, new


class BidirectionalCell(BaseRNNCell):
    """Two cells over one sequence: `l_cell` forward, `r_cell` over the reversed steps. Step
    `t`'s output is `concat(l_out[t], r_out[t])` along the features, forward first (as
    cuDNN and PyTorch), node `{output_prefix}t{t}_concat`. States are `l_cell`'s then
    `r_cell`'s; `r_cell`'s final states are those after it has read step 0.

    It cannot be stepped (the reverse direction needs the whole sequence); use `unroll`."""

    def __init__(self, l_cell: BaseRNNCell, r_cell: BaseRNNCell, output_prefix: str = "bi_"):
        super().__init__(output_prefix)
        self.l_cell = _check_cell("BidirectionalCell", "l_cell", l_cell)
        self.r_cell = _check_cell("BidirectionalCell", "r_cell", r_cell)

    @property
    def state_info(self) -> list[dict]:
        return self.l_cell.state_info + self.r_cell.state_info

    def begin_state(self) -> list[Symbol]:
        return self.l_cell.begin_state() + self.r_cell.begin_state()

    def reset(self) -> None:
        super().reset()
        self.l_cell.reset()
        self.r_cell.reset()

    def __call__(self, inputs, states, step=None):
        raise ConfigError("BidirectionalCell cannot be called one step at a time: the reverse "
                          "direction needs the whole sequence; use unroll()")

    def unroll_steps(self, steps, states, reverse=False, valid_length=None):
        """The reverse cell reads step T-1 first; with `valid_length` its steps past a
        sample's length leave the states unchanged, so it starts at `valid_length[n] - 1`."""
        if reverse:
            raise ConfigError("BidirectionalCell: cannot be run in reverse")
        states = list(states)
        if len(states) != len(self.state_info):
            raise ConfigError(f"BidirectionalCell: 'states' must hold {len(self.state_info)} "
                              f"symbols, given {len(states)}")
        k = len(self.l_cell.state_info)
        l_out, l_steps, l_final = self.l_cell.unroll_steps(steps, states[:k],
                                                           valid_length=valid_length)
        r_out, r_steps, r_final = self.r_cell.unroll_steps(steps, states[k:], reverse=True,
                                                           valid_length=valid_length)
        outputs = [concat(a, b, dim=1, name=f"{self._prefix}t{t}_concat")
                   for t, (a, b) in enumerate(zip(l_out, r_out))]
        per_step = [a + b for a, b in zip(l_steps, r_steps)]
        return outputs, per_step, l_final + r_final


__all__ = ["BidirectionalCell", "DropoutCell", "SequentialRNNCell", "ZoneoutCell"]
