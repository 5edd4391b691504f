"""PyTorch `nn.LSTM` / `nn.GRU` / `nn.RNN` weights in and out of a bound executor.

    >>> import torch, symrnn as sym
    >>> from symrnn.interop import from_torch
    >>> lstm = torch.nn.LSTM(4, 8, num_layers=2)
    >>> out = sym.RNNFactory([8, 8], data_dim=4).step(sym.Variable("data"), seq_len=5,
    ...                                               ret_typ="out")[-1]
    >>> ex = out.simple_bind(backend="reference", data=(5, 3, 4))
    >>> from_torch(lstm, ex)

The gate order is the same on both sides (cuDNN's: LSTM `i, f, g, o`, GRU `r, z, n`), so
`weight_ih_l{k}[_reverse]`, `weight_hh_...`, `bias_ih_...`, `bias_hh_...` copy to the cell of
layer `k` (and direction) as `i2h_weight`, `h2h_weight`, `i2h_bias`, `h2h_bias` unchanged,
and with `proj_size` `weight_hr_...` as `h2r_weight`.
Everything is checked before anything is copied: a refused call changes nothing. torch is
never imported by symrnn; the module brings it.
"""
from __future__ import annotations

import numpy as np

from runtime.errors import ShapeError
from symrnn.interop.errors import InteropError
from symrnn.interop.structure import find_cells

_TORCH_NAMES = {"weight_ih": "i2h_weight", "weight_hh": "h2h_weight",
                "bias_ih": "i2h_bias", "bias_hh": "h2h_bias", "weight_hr": "h2r_weight"}


def from_torch(module, executor, allow_batch_first: bool = False) -> None:
    """Copies the parameters of `module` (an `nn.LSTM`, `nn.GRU` or `nn.RNN`) into the
    executor's recurrent cells. `allow_batch_first=True` accepts a batch-first module (its
    weights are the same; its data is `(N, T, I)` where symrnn's is `(T, N, I)`)."""
    pairs = torch_pairs("from_torch", module, executor, allow_batch_first)
    values = {}
    for torch_name, name in pairs:
        array = getattr(module, torch_name).detach().cpu().numpy()
        values[name] = array.astype(executor.arg_dict[name].dtype)
    executor.copy_params_from(values)


def to_torch(executor, module, allow_batch_first: bool = False) -> None:
    """Copies the executor's recurrent parameters into `module`, in place."""
    import torch

    pairs = torch_pairs("to_torch", module, executor, allow_batch_first)
    with torch.no_grad():
        for torch_name, name in pairs:
            param = getattr(module, torch_name)
            param.copy_(torch.from_numpy(np.ascontiguousarray(executor.arg_dict[name])))


def torch_pairs(where: str, module, executor, allow_batch_first: bool = False) -> list:
    """`[(torch parameter name, symrnn argument name)]` after checking that `module` has the
    configuration and every shape of the executor's stack."""
    typ = _module_typ(where, module)
    cells = _cells(where, executor)
    _check_config(where, module, typ, cells, allow_batch_first)
    pairs = []
    for cell in cells:
        suffix = f"_l{cell.layer}" + ("_reverse" if cell.reverse else "")
        for torch_key, key in _TORCH_NAMES.items():
            if key not in cell.params:
                continue
            torch_name, name = torch_key + suffix, cell.params[key]
            got = tuple(getattr(module, torch_name).shape)
            want = executor.arg_dict[name].shape
            if got != want:
                raise ShapeError(f"{where}: module parameter {torch_name!r} has shape {got} "
                                 f"but {name!r} has {want}")
            pairs.append((torch_name, name))
    return pairs


def _module_typ(where: str, module) -> str:
    mode = getattr(module, "mode", None)
    typ = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}
    if mode not in typ or not hasattr(module, "num_layers"):
        raise InteropError(f"{where}: 'module' must be a torch nn.LSTM, nn.GRU or nn.RNN, "
                           f"given {type(module).__name__}")
    return typ[mode]


def _cells(where: str, executor):
    symbol = getattr(executor, "symbol", None)
    cells = find_cells(symbol) if symbol is not None else []
    if not cells:
        raise InteropError(f"{where}: 'executor' holds no recurrent cells to copy weights "
                           f"to or from")
    return cells


def _check_config(where, module, typ, cells, allow_batch_first) -> None:
    _check_stack(where, module, typ, cells)
    if not module.bias:
        raise InteropError(f"{where}: the module has bias=False; symrnn's cells always have "
                           f"both biases (expected bias=True)")
    projections = sorted({c.proj for c in cells})
    if projections != [getattr(module, "proj_size", 0)]:
        raise InteropError(f"{where}: the executor's projection sizes are {projections} but "
                           f"the module has proj_size={getattr(module, 'proj_size', 0)}")
    if module.batch_first and not allow_batch_first:
        raise InteropError(f"{where}: the module has batch_first=True but symrnn is "
                           f"time-major (T, N, I); pass allow_batch_first=True to copy the "
                           f"weights anyway")


def _check_stack(where, module, typ, cells) -> None:
    """Cell type, layers, directions and hidden sizes: the module's must be the stack's."""
    layers = 1 + max(c.layer for c in cells)
    dirs = 2 if any(c.reverse for c in cells) else 1
    want_typ = {c.typ for c in cells}
    if want_typ != {typ}:
        raise InteropError(f"{where}: the executor's cells are {sorted(want_typ)} but the "
                           f"module is {typ!r}")
    stack = {"num_layers": layers, "bidirectional": dirs == 2}
    given = {"num_layers": module.num_layers, "bidirectional": bool(module.bidirectional)}
    for key, want in stack.items():
        if want != given[key]:
            raise InteropError(f"{where}: the executor's stack has {key}={want} but the "
                               f"module has {key}={given[key]}")
    if len(cells) != layers * dirs:
        raise InteropError(f"{where}: the executor holds {len(cells)} cells, not one stack "
                           f"of {layers} layers x {dirs} directions")
    sizes = sorted({c.hidden for c in cells})
    if sizes != [module.hidden_size]:
        raise InteropError(f"{where}: the executor's hidden sizes are {sizes} but the module "
                           f"has hidden_size={module.hidden_size} for every layer")
