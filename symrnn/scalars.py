"""What counts as a number in the user's API: Python's, and numpy's scalars alike.

`np.int64(4)` (what `arr.shape[0] * 2` or `np.prod` gives) is accepted wherever `4` is, and
`np.float32(0.1)` wherever `0.1` is; booleans are refused, as `True` is rarely meant as a size.
The checked value comes back as a Python `int` or `float`, so that attributes stay plain JSON.

    >>> as_int(np.int64(4)), as_real(np.float32(0.5))
    (4, 0.5)
    >>> as_int(2.0) is None
    True
"""
from __future__ import annotations

import numbers

import numpy as np


def as_int(value) -> int | None:
    """`value` as a Python int if it is an integer scalar (not a bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def as_real(value) -> float | None:
    """`value` as a Python float if it is a real scalar (int or float, not a bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    return float(value)
