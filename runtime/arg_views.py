"""`arg_dict` and `grad_dict`: dicts of the executor's own arrays that keep their keys,
shapes, dtypes and identities, whatever is assigned to them.

An engine binds these arrays by data pointer (runtime.cpu) or uploads them by name, so a
key that vanished or an array of another shape or dtype would give wrong numbers or a stale
copy. The rules:

- reading gives the executor's array; writing into it is the fast path, as in MXNet:
  `ex.arg_dict["w"][:] = v`, `ex.grad_dict["w"] *= 0.5`.
- `d[name] = value` copies `value` into the existing array (the array object stays the same)
  when `value` is a numpy array of exactly that shape whose dtype converts under numpy's
  "same_kind" casting restricted to the same family: any float into a float array
  (float64 -> float32 rounds; a finite value that would overflow to Inf is refused), any
  integer into an integer array when every value fits. Anything else is a BindError naming
  the argument, the expected shape and dtype and the given ones, and the array is left as it
  was: another shape (`w.T` of a non-square `w`), integers into floats, floats into
  integers, bools, a scalar or a list (write `d[name][...] = value` to broadcast).
- `del d[name]`, `pop`, `popitem`, `clear` and `setdefault` are refused: an argument cannot be
  removed. `update(...)` and `|=` assign key by key under the rules above, after checking
  every key first.
- `d.adopt(name, array)` (used by `bind(args_grad=...)`) makes the caller's array the one
  that is read and written, after checking that it has exactly the shape and dtype and is
  C-contiguous.
- an array reshaped, retyped or restrided in place (`a.shape = ...`, `a.dtype = ...`) would
  be read by the engine in its old layout: `HeldArrays.check` refuses the next forward or
  backward with a BindError naming the argument, both specs and the fix.

    >>> import numpy as np
    >>> d = ArgDict("arg_dict", {"w": np.zeros((2, 3), np.float32)})
    >>> d["w"] = np.ones((2, 3))          # float64 into float32: copied, same array object
    >>> d["w"].dtype, float(d["w"].sum())
    (dtype('float32'), 6.0)
    >>> d["w"] = np.ones((3, 2))
    Traceback (most recent call last):
    ...
    runtime.errors.BindError: arg_dict['w']: expected (2, 3) float32, given (3, 2) float64
"""
from __future__ import annotations

import numpy as np

from runtime.errors import BindError, fmt_shape

_FAMILY = {"f": "f", "i": "iu", "u": "iu"}


class ArgDict(dict):
    """A dict of named arrays that refuses what they cannot hold (see the module docstring).
    `where` names it in messages: 'arg_dict' or 'grad_dict'."""

    def __init__(self, where: str, arrays: dict):
        super().__init__(arrays)
        self.where = where

    def __setitem__(self, name, value) -> None:
        target = self._array(name)
        if value is not target:
            np.copyto(target, self._converted(name, value, target), casting="unsafe")

    def update(self, *others, **values) -> None:
        given = dict(*others, **values)
        for name in given:
            self._array(name)
        for name, value in given.items():
            self[name] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def adopt(self, name: str, array: np.ndarray) -> None:
        """Makes `array` (exactly the shape and dtype, C-contiguous) the one for `name`."""
        target = self._array(name)
        if not isinstance(array, np.ndarray) or array.shape != target.shape \
                or array.dtype != target.dtype:
            raise BindError(f"{self.where}[{name!r}]: expected exactly {_spec(target)}, "
                            f"given {_given(array)}")
        if not array.flags.c_contiguous:
            raise BindError(f"{self.where}[{name!r}]: the array must be C-contiguous to be "
                            f"written in place; pass np.ascontiguousarray(...)")
        dict.__setitem__(self, name, array)

    def copy(self) -> dict:
        """A plain dict of the same arrays (not copies of them)."""
        return dict(self)

    def __reduce__(self):
        return type(self), (self.where, dict(self))

    # ---- refused ------------------------------------------------------------------------------
    def __delitem__(self, name) -> None:
        self._refuse_removal(name)

    def pop(self, name, *default):
        self._refuse_removal(name)

    def popitem(self):
        self._refuse_removal(next(iter(self), None))

    def clear(self) -> None:
        self._refuse_removal(next(iter(self), None))

    def setdefault(self, name, default=None):
        return self._array(name)  # never adds a key

    def _refuse_removal(self, name) -> None:
        raise BindError(f"{self.where}: arguments cannot be removed (given {name!r}); the "
                        f"executor was bound with {list(self)}; assign zeros instead, "
                        f"e.g. {self.where}[{name!r}][...] = 0")

    # ---- checks -------------------------------------------------------------------------------
    def _array(self, name) -> np.ndarray:
        if name not in self:
            raise BindError(f"{self.where}: {name!r} is not an argument here; the names are "
                            f"{list(self)} (keys cannot be added)")
        return dict.__getitem__(self, name)

    def _converted(self, name, value, target: np.ndarray) -> np.ndarray:
        """`value` converted to `target`'s dtype, or a BindError saying why it cannot be."""
        def refuse(why: str = ""):
            return BindError(f"{self.where}[{name!r}]: expected {_spec(target)}, given "
                             f"{_given(value)}{why}")

        if not isinstance(value, np.ndarray):
            raise refuse(f"; assign an array, or write into the existing one: "
                         f"{self.where}[{name!r}][...] = value")
        if value.shape != target.shape:
            raise refuse()
        if value.dtype.kind not in _FAMILY.get(target.dtype.kind, target.dtype.kind):
            raise refuse(f" (only {_family_name(target.dtype)} are copied in; convert it "
                         f"with .astype({str(target.dtype)!r}))")
        if value.dtype.kind in "iu":
            return _fitting_ints(value, target.dtype, refuse)
        with np.errstate(over="ignore", invalid="ignore"):
            cast = value.astype(target.dtype)
        if not np.array_equal(np.isfinite(cast), np.isfinite(value)):
            raise refuse(f" (a finite value overflows {target.dtype})")
        return cast


class HeldArrays:
    """The shapes, dtypes and C strides the executor's arrays were bound with ({name:
    (shape, dtype)}); `check(where, *dicts)` costs a few attribute reads per array."""

    def __init__(self, specs: dict):
        self._specs = {}
        for name, (shape, dtype) in specs.items():
            shape, dtype = tuple(int(n) for n in shape), np.dtype(dtype)
            self._specs[name] = (shape, dtype, _c_strides(shape, dtype.itemsize))

    def check(self, where: str, *dicts: ArgDict) -> None:
        specs = self._specs
        for d in dicts:
            for name, a in dict.items(d):
                shape, dtype, strides = specs[name]
                if a.shape != shape or (a.dtype is not dtype and a.dtype != dtype) or (
                        a.strides != strides and not a.flags.c_contiguous):
                    raise BindError(
                        f"{where}: {d.where}[{name!r}] is now {_spec(a)}"
                        f"{'' if a.flags.c_contiguous else ' (not C-contiguous)'} but the "
                        f"executor was bound with {fmt_shape(shape)} {dtype}: its shape, "
                        f"dtype or strides were changed in place; set them back, or write "
                        f"values with {d.where}[{name!r}][...] = value (ex.reshape() "
                        f"binds new shapes)")


def _c_strides(shape: tuple, itemsize: int) -> tuple:
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _fitting_ints(value: np.ndarray, dtype: np.dtype, refuse) -> np.ndarray:
    info = np.iinfo(dtype)
    if value.size and (int(value.min()) < info.min or int(value.max()) > info.max):
        raise refuse(f" (values from {int(value.min())} to {int(value.max())} do not fit "
                     f"{dtype})")
    return value


def _family_name(dtype: np.dtype) -> str:
    return "float arrays" if dtype.kind == "f" else "integer arrays" \
        if dtype.kind in "iu" else f"{dtype} arrays"


def _spec(array: np.ndarray) -> str:
    return f"{fmt_shape(array.shape)} {array.dtype}"


def _given(value) -> str:
    if isinstance(value, np.ndarray):
        return _spec(value)
    return f"{type(value).__name__} {value!r}"[:80]
