"""MXNet 1.x weights: the `.params` file format read with numpy alone, and the fused
`sym.RNN` parameter vector unpacked as `FusedRNNCell.unpack_weights` does.

    >>> from symrnn.interop import from_mxnet_params
    >>> from_mxnet_params("model-0010.params", ex)     # doctest: +SKIP

The file is what `mx.nd.save` (and `mx.model.save_checkpoint`) writes (MXNet's
`src/ndarray/ndarray.cc`, `NDArray::Save` and the list format of `MXNDArraySave`):

    uint64 0x112, uint64 0                       the list's magic and a reserved word
    uint64 count, count arrays                   each: uint32 magic 0xF993FAC9 (V2) or
                                                 0xF993FACA (V3), int32 storage type
                                                 (0 dense), shape (int32 ndim, int64 dims),
                                                 context (int32 type, int32 id), int32 dtype
                                                 flag, the data (little-endian, C order)
    uint64 count, count names                    each: uint64 length, the UTF-8 bytes

Older arrays (magic 0xF993FAC8, or none: the word is then the ndim, dims uint32) have no
storage type. Names carry `arg:` / `aux:` prefixes, which are dropped. mx.rnn cells name their
parameters `{prefix}i2h_weight` ... as symrnn does; MXNet's gate order (LSTM `i, f, c, o`,
GRU `r, z, o`) is symrnn's, so arrays copy unchanged.
"""
from __future__ import annotations

import os
import re
import struct

import numpy as np

from symrnn.interop.errors import InteropError
from symrnn.interop.structure import GATES, find_cells

LIST_MAGIC = 0x112
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
DTYPES = {0: "<f4", 1: "<f8", 2: "<f2", 3: "u1", 4: "<i4", 5: "i1", 6: "<i8"}
WHERE = "from_mxnet_params"


class _Reader:
    """A cursor over the file's bytes that names what it was reading when they ran out."""

    def __init__(self, data: bytes, source: str):
        self.data, self.at, self.source = data, 0, source

    def take(self, size: int, what: str) -> bytes:
        if self.at + size > len(self.data):
            raise InteropError(f"{WHERE}: {self.source} is truncated: {what} needs {size} "
                               f"bytes at offset {self.at}, but the file has "
                               f"{len(self.data) - self.at} left")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def unpack(self, fmt: str, what: str):
        values = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))
        return values[0] if len(values) == 1 else values


def read_mxnet_params(source) -> dict[str, np.ndarray]:
    """`{name: array}` from an MXNet `.params` file (a path) or its bytes."""
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), "the given bytes"
    else:
        label = repr(os.fspath(source))
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise InteropError(f"{WHERE}: cannot read {label}: {e.strerror}") from None
    r = _Reader(data, label)
    magic, _ = r.unpack("QQ", "the header")
    if magic != LIST_MAGIC:
        raise InteropError(f"{WHERE}: {label} is not an MXNet .params file: its header is "
                           f"{magic:#x}, expected {LIST_MAGIC:#x}")
    arrays = [_read_array(r, k) for k in range(r.unpack("Q", "the array count"))]
    count = r.unpack("Q", "the name count")
    names = [r.take(r.unpack("Q", f"name {k}'s length"), f"name {k}").decode()
             for k in range(count)]
    if len(names) != len(arrays):
        raise InteropError(f"{WHERE}: {label} holds {len(arrays)} arrays but {len(names)} "
                           f"names; only named arrays can be loaded")
    return {re.sub(r"^(arg|aux):", "", n): a for n, a in zip(names, arrays)}


def _read_array(r: _Reader, k: int) -> np.ndarray:
    what = f"array {k}"
    magic = r.unpack("I", f"{what}'s magic")
    if magic in (V2, V3):
        stype = r.unpack("i", f"{what}'s storage type")
        if stype != 0:
            raise InteropError(f"{WHERE}: {what} has storage type {stype} (sparse); only "
                               f"dense arrays (0) are supported")
        shape = _shape(r, r.unpack("i", f"{what}'s ndim"), "q", what)
    elif magic == V1:
        shape = _shape(r, r.unpack("I", f"{what}'s ndim"), "q", what)
    else:  # the oldest form: no magic, the word read is the ndim
        shape = _shape(r, magic, "I", what)
    if shape is None:
        return np.zeros((0,), np.float32)
    r.unpack("ii", f"{what}'s context")
    flag = r.unpack("i", f"{what}'s dtype")
    if flag not in DTYPES:
        raise InteropError(f"{WHERE}: {what} has MXNet dtype flag {flag}; supported are "
                           f"{sorted(DTYPES)} (float32, float64, float16, uint8, int32, int8, "
                           f"int64)")
    dtype = np.dtype(DTYPES[flag])
    size = int(np.prod(shape)) * dtype.itemsize
    return np.frombuffer(r.take(size, f"{what}'s data {shape}"), dtype).reshape(shape).copy()


def _shape(r: _Reader, ndim: int, fmt: str, what: str):
    if ndim <= 0 or ndim > 32:
        if ndim in (0, -1):
            return None  # an empty array, saved without data
        raise InteropError(f"{WHERE}: {what} has ndim {ndim}; the file is damaged")
    dims = r.unpack(fmt * ndim, f"{what}'s shape")
    return (dims,) if ndim == 1 else tuple(dims)


def unpack_fused(prefix: str, vector: np.ndarray, executor) -> dict[str, np.ndarray]:
    """The fused `sym.RNN` vector `{prefix}parameters` as the parameters of the executor's
    cells `{prefix}{l|r}{layer}_` (named as the cells name them), laid out as in MXNet's
    `FusedRNNCell._slice_weights`: all weights (per layer, per direction: i2h then h2h, the
    gates in order), then all biases in the same order. Sizes come from the executor's
    cells of that prefix."""
    cells = [c for c in find_cells(executor.symbol)
             if re.fullmatch(re.escape(prefix) + r"[lr]\d+_", c.prefix)]
    if not cells:
        raise InteropError(f"{WHERE}: the file holds the fused vector {prefix + 'parameters'!r}"
                           f" but the executor has no cells named {prefix}l0_, {prefix}r0_, ...")
    shapes = [(c.params[k], executor.arg_dict[c.params[k]].shape) for c in cells
              for k in ("i2h_weight", "h2h_weight")]
    shapes += [(c.params[k], (GATES[c.typ] * c.hidden,)) for c in cells
               for k in ("i2h_bias", "h2h_bias")]
    total = sum(int(np.prod(s)) for _, s in shapes)
    vector = np.asarray(vector).reshape(-1)
    if vector.size != total:
        raise InteropError(f"{WHERE}: {prefix + 'parameters'!r} holds {vector.size} values but "
                           f"the executor's {len(cells)} cells of {prefix!r} need {total}")
    out, at = {}, 0
    for name, shape in shapes:
        size = int(np.prod(shape))
        out[name] = vector[at:at + size].reshape(shape)
        at += size
    return out


def from_mxnet_params(path_or_dict, executor, allow_extra: bool = False) -> list[str]:
    """Loads MXNet weights (a `.params` path, its bytes, or a `{name: array}` dict) into the
    executor by name, unpacking fused `{prefix}parameters` vectors first; returns the names
    loaded. Names the executor lacks are refused unless `allow_extra`. Every name and shape is
    checked before anything is copied."""
    if isinstance(path_or_dict, dict):
        given = {n: np.asarray(v) for n, v in path_or_dict.items()}
    else:
        given = read_mxnet_params(path_or_dict)
    arrays = {}
    for name, value in given.items():
        if name.endswith("parameters") and name not in executor.arg_dict:
            arrays.update(unpack_fused(name[:-len("parameters")], value, executor))
        else:
            arrays[name] = value
    unknown = [n for n in arrays if n not in executor.arg_dict]
    if unknown and not allow_extra:
        raise InteropError(f"{WHERE}: {unknown[0]!r} is not an argument of the executor "
                           f"(pass allow_extra=True to skip such names); the arguments are "
                           f"{list(executor.arg_dict)}")
    values = {n: v.astype(executor.arg_dict[n].dtype, copy=False) for n, v in arrays.items()
              if n in executor.arg_dict}
    executor.copy_params_from(values)
    return list(values)
