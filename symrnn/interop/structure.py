"""The recurrent layers of a symbol, recovered from its nodes.

A symbol is an unrolled graph: the cells (symrnn.rnn.cells) add, per step `t`, nodes named
`{prefix}t{t}_i2h`, `{prefix}t{t}_h2h`, `{prefix}t{t}_gates`, ... For exporters and weight
loaders we need the layers back: which cells there are, their type, sizes, parameters,
direction, the per-step input, output and state values and the initial states. `find_cells`
reads them from the names and then checks every step against the cell's equations node by
node, so a node that only looks like a cell is never mistaken for one.

    >>> import symrnn as sym
    >>> rnn = sym.RNNFactory([8, 6], data_dim=4, name="enc")
    >>> out = rnn.step(sym.Variable("data"), seq_len=3, ret_typ="out")[-1]
    >>> [(c.prefix, c.typ, c.hidden, c.layer) for c in find_cells(out)]
    [('enc_l0_', 'lstm', 8, 0), ('enc_l1_', 'lstm', 6, 1)]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from symrnn.interop.errors import UnsupportedExport
from symrnn.symbol import Symbol

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
PARAM_KEYS = ("i2h_weight", "i2h_bias", "h2h_weight", "h2h_bias")
_STEP = re.compile(r"^(?P<prefix>.*)t(?P<t>\d+)_i2h$")

# Each cell's step, node by node: suffix -> (op, inputs). An input is `suffix:index`, or
# `H` / `C` (the previous states as they enter the step).
_TEMPLATES = {
    "lstm": {
        "gates": ("add", ["i2h:0", "h2h:0"]), "slice": ("split", ["gates:0"]),
        "i": ("sigmoid", ["slice:0"]), "f": ("sigmoid", ["slice:1"]),
        "g": ("tanh", ["slice:2"]), "o": ("sigmoid", ["slice:3"]),
        "f_c": ("mul", ["f:0", "C"]), "i_g": ("mul", ["i:0", "g:0"]),
        "c": ("add", ["f_c:0", "i_g:0"]), "tanh_c": ("tanh", ["c:0"]),
        "h": ("mul", ["o:0", "tanh_c:0"]),
    },
    "gru": {
        "i2h_slice": ("split", ["i2h:0"]), "h2h_slice": ("split", ["h2h:0"]),
        "r_sum": ("add", ["i2h_slice:0", "h2h_slice:0"]), "r": ("sigmoid", ["r_sum:0"]),
        "z_sum": ("add", ["i2h_slice:1", "h2h_slice:1"]), "z": ("sigmoid", ["z_sum:0"]),
        "r_h2h": ("mul", ["r:0", "h2h_slice:2"]), "n_sum": ("add", ["i2h_slice:2", "r_h2h:0"]),
        "n": ("tanh", ["n_sum:0"]), "one_minus_z": ("rsub_scalar", ["z:0"]),
        "new_part": ("mul", ["one_minus_z:0", "n:0"]), "old_part": ("mul", ["z:0", "H"]),
        "h": ("add", ["new_part:0", "old_part:0"]),
    },
    "rnn_tanh": {"gates": ("add", ["i2h:0", "h2h:0"]), "h": ("tanh", ["gates:0"])},
    "rnn_relu": {"gates": ("add", ["i2h:0", "h2h:0"]), "h": ("relu", ["gates:0"])},
}


@dataclass
class Cell:
    """One direction of one recurrent layer. Values are `(node, index)` pairs; per-step lists
    are indexed by time `t`, whatever the direction."""

    prefix: str
    typ: str
    hidden: int
    input_size: int | None
    reverse: bool
    params: dict                   # {'i2h_weight': argument name, ...}
    zoneout: float                 # the state zoneout rate (0: none)
    inputs: list = field(default_factory=list)    # x_t
    outputs: list = field(default_factory=list)   # what the cell returns at t (h after mixing)
    states: list = field(default_factory=list)    # [h_t, c_t] after step t
    initial: list = field(default_factory=list)   # [h0, c0]
    layer: int = 0
    proj: int = 0                  # LSTM projection size (0: none); params['h2r_weight']
    clip: float | None = None      # LSTM cell clip (None: none)

    @property
    def num_states(self) -> int:
        return 2 if self.typ == "lstm" else 1

    @property
    def last(self) -> int:
        """The step processed last: T-1 forward, 0 in reverse."""
        return 0 if self.reverse else len(self.inputs) - 1


def find_cells(symbol: Symbol) -> list[Cell]:
    """The recurrent cells of `symbol`, ordered by layer, forward before reverse."""
    nodes = {n.name: n for n in symbol.topo_nodes()}
    prefixes: dict[str, list[int]] = {}
    for name, node in nodes.items():
        m = _STEP.match(name)
        if m and node.op == "FullyConnected":
            prefixes.setdefault(m["prefix"], []).append(int(m["t"]))
    cells = [c for p, ts in prefixes.items() if (c := _read_cell(nodes, p, sorted(ts)))]
    _assign_layers(cells)
    return sorted(cells, key=lambda c: (c.layer, c.reverse))


def _typ(nodes, p: str) -> str | None:
    slice_ = nodes.get(f"{p}t0_slice")
    if slice_ is not None and slice_.op == "split" and slice_.num_outputs == 4:
        return "lstm"
    if f"{p}t0_i2h_slice" in nodes:
        return "gru"
    h = nodes.get(f"{p}t0_h")
    return {"tanh": "rnn_tanh", "relu": "rnn_relu"}.get(getattr(h, "op", None))


def _read_cell(nodes, p: str, ts: list[int]) -> Cell | None:
    typ = _typ(nodes, p)
    if typ is None:
        return None
    if ts != list(range(len(ts))):
        raise UnsupportedExport(f"cell {p!r}: steps {ts} are not 0..{len(ts) - 1}")
    if f"{p}t0_zoneout_out" in nodes:
        raise UnsupportedExport(f"cell {p!r}: zoneout on the outputs (zoneout_outputs) has no "
                                f"ONNX or PyTorch form; only zoneout_states is supported")
    if f"{p}i2h_gamma" in nodes:
        raise UnsupportedExport(f"cell {p!r}: layer_norm=True has no ONNX or PyTorch form "
                                f"(their LSTM, GRU and RNN have no layer norm)")
    i2h, h2h = nodes[f"{p}t0_i2h"], nodes[f"{p}t0_h2h"]
    if len(i2h.inputs) != 3 or len(h2h.inputs) != 3:
        raise UnsupportedExport(f"cell {p!r}: projections without bias are not supported")
    params = dict(zip(PARAM_KEYS, [i2h.inputs[1], i2h.inputs[2], h2h.inputs[1], h2h.inputs[2]]))
    for key, (src, _) in params.items():
        if src.op != "var":
            raise UnsupportedExport(f"cell {p!r}: '{key}' must be an argument, given the "
                                    f"output of {src.op} node {src.name!r}")
    zone = nodes.get(f"{p}t0_zoneout_h")
    cell = Cell(p, typ, i2h.attrs["num_hidden"] // GATES[typ], None, False,
                {k: s.name for k, (s, _) in params.items()},
                zone.attrs["p"] if zone is not None else 0.0)
    if typ == "lstm":
        _read_lstm_options(nodes, p, cell)
    for t in ts:
        cell.inputs.append(nodes[f"{p}t{t}_i2h"].inputs[0])
        cell.states.append(_new_states(nodes, p, t, typ, cell.zoneout))
        cell.outputs.append(cell.states[-1][0])
    _link_steps(nodes, cell)
    return cell


def _read_lstm_options(nodes, p: str, cell: Cell) -> None:
    """Projection (`h` a FullyConnected of `h_full`) and cell clipping (`c` a clip of
    `c_sum`), read from step 0 and checked on every step against the template."""
    h, c = nodes.get(f"{p}t0_h"), nodes.get(f"{p}t0_c")
    if h is not None and h.op == "FullyConnected" and len(h.inputs) == 2:
        w = h.inputs[1][0]
        if w.op != "var":
            raise UnsupportedExport(f"cell {p!r}: 'h2r_weight' must be an argument, given the "
                                    f"output of {w.op} node {w.name!r}")
        cell.proj, cell.params["h2r_weight"] = h.attrs["num_hidden"], w.name
    if c is not None and c.op == "clip":
        cell.clip = c.attrs["scalar"]


def _template(cell: Cell) -> dict:
    steps = dict(_TEMPLATES[cell.typ])
    if cell.clip is not None:
        steps["c_sum"] = steps["c"]
        steps["c"] = ("clip", ["c_sum:0"])
    if cell.proj:
        steps["h_full"] = ("mul", ["o:0", "tanh_c:0"])
        steps["h"] = ("FullyConnected", ["h_full:0", "h2r:0"])
    return steps


def _new_states(nodes, p, t, typ, zoneout) -> list:
    names = ["h", "c"] if typ == "lstm" else ["h"]
    if not zoneout:
        return [(nodes[f"{p}t{t}_{n}"], 0) for n in names]
    return [(nodes[f"{p}t{t}_zoneout_{n}"], 0) for n in names]


def _entering_states(nodes, p, t, typ) -> list:
    """The states step `t` reads: h where it enters h2h (before recurrent dropout), c."""
    h = nodes[f"{p}t{t}_h2h"].inputs[0]
    if h[0].op == "dropout" and h[0].name == f"{p}t{t}_h2h_dropout":
        h = h[0].inputs[0]
    if typ == "lstm":
        return [h, nodes[f"{p}t{t}_f_c"].inputs[1]]
    return [h]


def _link_steps(nodes, cell: Cell) -> None:
    """Sets the direction and initial states, and checks each step against the template."""
    p, steps = cell.prefix, len(cell.inputs)
    entering = [_entering_states(nodes, p, t, cell.typ) for t in range(steps)]
    same = _refs_equal
    # One step reads the same either way; then the factory's name says (`{name}_r{l}_`).
    cell.reverse = same(entering[0], cell.states[1]) if steps > 1 else bool(
        re.search(r"_r\d+_$", p))
    order = range(steps - 1, -1, -1) if cell.reverse else range(steps)
    prev = None
    for t in order:
        if prev is None:
            cell.initial = entering[t]
        elif not same(entering[t], cell.states[prev]):
            raise UnsupportedExport(f"cell {p!r}: step {t} does not read the states of step "
                                    f"{prev}; only plain recurrences can be exported")
        _check_step(nodes, cell, t, entering[t])
        prev = t


def _check_step(nodes, cell: Cell, t: int, entering: list) -> None:
    p = f"{cell.prefix}t{t}_"
    weight = {"h2r": (_var(nodes, cell.params.get("h2r_weight")), 0)}
    for suffix, (op, ins) in _template(cell).items():
        node = nodes.get(p + suffix)
        want = [entering[0] if r == "H" else entering[1] if r == "C" else weight["h2r"]
                if r == "h2r:0" else (nodes.get(p + r.split(":")[0]), int(r.split(":")[1]))
                for r in ins]
        if node is None or node.op != op or not _refs_equal(node.inputs, want):
            raise UnsupportedExport(f"cell {cell.prefix!r}: node {p + suffix!r} is not the "
                                    f"{op} of {ins} that a {cell.typ} step computes")
    if cell.zoneout:
        for k, n in enumerate(["h", "c"][:cell.num_states]):
            z = nodes[f"{p}zoneout_{n}"]
            new = (nodes[f"{p}{n}"], 0)
            if not _refs_equal(z.inputs, [entering[k], new]) or z.attrs["p"] != cell.zoneout:
                raise UnsupportedExport(f"cell {cell.prefix!r}: node {z.name!r} is not the "
                                        f"zoneout of state {n!r} at rate {cell.zoneout}")


def _var(nodes, name):
    return nodes.get(name) if name is not None else None


def _refs_equal(a, b) -> bool:
    return len(a) == len(b) and all(x[0] is y[0] and x[1] == y[1] for x, y in zip(a, b))


def _assign_layers(cells: list[Cell]) -> None:
    """Layer 0 reads the data; a cell reading another cell's outputs sits one layer above."""
    by_output = {}
    for c in cells:
        for t, ref in enumerate(c.outputs):
            by_output[(id(ref[0]), ref[1], t)] = c
    feeders = {id(c): _feeders(c, by_output) for c in cells}
    for _ in cells:  # the longest chain is at most len(cells) long
        for c in cells:
            c.layer = 1 + max(f.layer for f in feeders[id(c)]) if feeders[id(c)] else 0


def _feeders(cell: Cell, by_output: dict) -> list[Cell]:
    """Cells whose step-`t` output reaches this cell's step-`t` input through concat and
    dropout nodes (the bidirectional merge and the dropout between layers)."""
    found, stack = [], [(cell.inputs[0], 0)]
    while stack:
        (node, idx), t = stack.pop()
        owner = by_output.get((id(node), idx, t))
        if owner is not None:
            found.append(owner)
        elif node.op in ("concat", "dropout"):
            stack += [(ref, t) for ref in node.inputs]
    return found


def state_at(cells: list[Cell], ref) -> tuple[Cell, int, int] | None:
    """`(cell, step, state index)` when `ref` is a state a cell holds after a step."""
    for c in cells:
        for t, states in enumerate(c.states):
            for k, s in enumerate(states):
                if s[0] is ref[0] and s[1] == ref[1]:
                    return c, t, k
    return None
