"""The closed table of elementwise ops a kernel may contain: op name -> C expression.

Each expression is a template over the op's inputs `{0}`, `{1}`, ... and the attribute fields
the renderer fills in (`{scalar}`, `{p}`, `{threshold}`, `{scale}`, `{train}`, `{bits}`: see
runtime.render.placeholders). codegen's op table takes each elementwise op's `c_expr` from
here, so an op is still declared once; it lives in `runtime` because the artifact loader
renders kernels from their IR itself, and an IR op that is not in this table is refused.

    >>> C_EXPRS["add"]
    '({0} + {1})'
"""
from __future__ import annotations

import re

C_EXPRS: dict[str, str] = {
    "neg": "(-{0})",
    # A second copy of a value (codegen.passes.split_shared_parts), written where it is read.
    "copy": "({0})",
    "sigmoid": "symrnn_sigmoid({0})",
    "tanh": "symrnn_tanh({0})",
    "relu": "symrnn_relu({0})",
    "exp": "symrnn_exp({0})",
    "log": "symrnn_log({0})",
    # Layer norm's inverse standard deviation (a row value: computed once per row).
    "rsqrt": "((real)1 / (real)sqrt({0}))",
    "heaviside": "(({0}) > 0 ? (real)1 : (real)0)",
    "add": "({0} + {1})",
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "div": "({0} / {1})",
    "add_scalar": "({0} + {scalar})",
    "mul_scalar": "({0} * {scalar})",
    "rsub_scalar": "({scalar} - {0})",
    "rdiv_scalar": "({scalar} / {0})",
    "dropout": "({0} * symrnn_dropout({train}, {bits}, {threshold}, {scale}))",
    "zoneout": "symrnn_zoneout({train}, {bits}, {threshold}, {p}, {0}, {1})",
    "zeros": "((real)0)",
    # Cell clipping (cuDNN's cellClip) to [-scalar, scalar]; NaN passes, as in np.clip.
    "clip": "(({0}) > {scalar} ? {scalar} : (({0}) < -{scalar} ? -{scalar} : ({0})))",
    # clip's gradient: `{0}` where `{1}` was inside [-scalar, scalar], else 0.
    "clip_grad": "((({1}) >= -{scalar} && ({1}) <= {scalar}) ? ({0}) : (real)0)",
    # Variable lengths: `{mask}` carries the step t; {2} / {1} is the row's length.
    "step_select": "(({2}) > (real){mask} ? ({1}) : ({0}))",
    "step_zero": "(({1}) > (real){mask} ? ({0}) : (real)0)",
}


def arity(op: str) -> int:
    """How many inputs op `op`'s expression reads."""
    return len(set(re.findall(r"\{(\d+)\}", C_EXPRS[op])))


def fields(op: str) -> set:
    """The attribute fields op `op`'s expression needs."""
    return set(re.findall(r"\{([a-z_]+)\}", C_EXPRS[op]))
