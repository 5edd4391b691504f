"""Variable-length batches in the cells: per-sample lengths as a symbol, the per-row valid
block and the masking of one step (codegen/ops/lengths.py has the ops and their meaning)."""
from __future__ import annotations

from runtime.errors import ConfigError
from symrnn.symbol import Symbol, _op


def check_lengths(where: str, lengths, arg: str = "valid_length") -> None:
    """None, or a single-output symbol that is an int32 variable or derived from one."""
    if lengths is None:
        return
    if not isinstance(lengths, Symbol) or len(lengths) != 1:
        raise ConfigError(f"{where}: '{arg}' must be a single-output int32 Symbol of shape "
                          f"(N,), given {lengths!r}")
    node = lengths._outputs[0][0]
    dtype = node.attrs.get("dtype", "float32") if node.op == "var" else None
    if node.op == "var" and dtype != "int32":
        raise ConfigError(f"{where}: '{arg}' must have dtype int32, given {node.name!r} of "
                          f"dtype {dtype}")
    shape = node.attrs.get("shape") if node.op == "var" else None
    if shape is not None and len(shape) != 1:
        raise ConfigError(f"{where}: '{arg}' must have shape (N,), given {node.name!r} of "
                          f"shape {tuple(shape)}")


class ValidRows:
    """The per-row lengths block of each state width of one cell, made on first use and
    named after the first state of that width: an LSTM's `h` and `c` (without projection)
    share one, so its step kernel reads one block, not two."""

    def __init__(self, lengths: Symbol, steps: int, prefix: str):
        self.lengths, self.steps, self.prefix = lengths, steps, prefix
        self._rows: dict = {}

    def rows(self, info: dict, like: Symbol) -> Symbol:
        width = info.get("shape", (0, 0))[-1] or info["name"]  # unknown width: its own block
        if width not in self._rows:
            self._rows[width] = _op("length_rows", [self.lengths, like],
                                    f"{self.prefix}valid_{info['name']}", steps=self.steps)
        return self._rows[width]

    def mask_step(self, t: int, out: Symbol, new: list, prev: list, info: list):
        """Step `t` with the rows past their length masked: states kept, output 0."""
        p = f"{self.prefix}t{t}_valid_"
        kept = []
        for s_new, s_prev, i in zip(new, prev, info):
            rows = self.rows(i, s_prev)
            kept.append(_op("step_select", [s_prev, s_new, rows], p + i["name"], mask_id=t))
        h_rows = self.rows(info[0], prev[0])
        return _op("step_zero", [out, h_rows], p + "out", mask_id=t), kept
