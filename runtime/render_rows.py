"""The loops of a kernel with row reductions (`Reduce` statements): several passes per row.

A `Reduce` makes a row value (the same at every column of its row) from a value over the
row's columns. Each row runs, in order:

- one pass over the columns per reduction level: level 1 reduces values that need no row
  value, level 2 values that need level-1 row values, and so on. A pass recomputes what its
  reductions need (loads and elementwise statements), in the body's order, and accumulates;
- after each pass, the row values that follow from its sums alone (`uniform` statements, such
  as a mean or an inverse standard deviation), once per row;
- the last pass: every other statement, as in a kernel without reductions.

Stores happen in the last pass only, so a row's inputs are all read before any of its
outputs is written: outputs may alias inputs element for element, as in every kernel.

The C rendering vectorizes each pass (`#pragma omp simd reduction`); in training, the passes
draw masks in place and the last pass fills its draws chunk by chunk as other kernels do.
The CUDA rendering gives each row to one thread (rows over all threads of the grid, columns
in order): no barrier, shared memory or atomic, so cuda-sim runs it faithfully and no
thread writes a column another is still reading. It is correct on a GPU, not fast: the
batch rows are all the parallelism it has.
"""
from __future__ import annotations

from runtime.kernel_ir import REDUCTIONS, Compute, Load, Reduce, Store
from runtime.kernel_ops import C_EXPRS

IDX = "const uint64_t idx = (uint64_t)r * (uint64_t)cols + (uint64_t)c;"


def has_reductions(body) -> bool:
    return any(isinstance(s, Reduce) for s in body)


def plan(body) -> tuple[dict, set]:
    """`(level, uniform)`: each value's reduction level (0: needs no row value) and the set
    of row values (reduction results and what follows from them alone)."""
    level, uniform = {}, set()
    for s in body:
        if isinstance(s, Load):
            level[s.dst] = 0
        elif isinstance(s, Reduce):
            level[s.dst] = level[s.src] + 1
            uniform.add(s.dst)
        elif isinstance(s, Compute):
            level[s.dst] = max([level[i] for i in s.srcs], default=0)
            if s.srcs and all(i in uniform for i in s.srcs) and "{bits}" not in C_EXPRS[s.op]:
                uniform.add(s.dst)
    return level, uniform


def _cone(body, wanted: set, uniform: set) -> list:
    """The element statements (loads and computes) that the values `wanted` need, in the
    body's order; row values are defined before the pass."""
    by_dst = {s.dst: s for s in body if isinstance(s, (Load, Compute))}
    need, stack = set(), [w for w in wanted if w not in uniform]
    while stack:
        v = stack.pop()
        if v in need or v not in by_dst:
            continue
        need.add(v)
        stack.extend(i for i in getattr(by_dst[v], "srcs", ()) if i not in uniform)
    return [s for s in body if isinstance(s, (Load, Compute)) and s.dst in need]


def _slots(statements) -> list:
    """The mask slots that `statements` draw from."""
    return sorted({dict(s.attrs)["mask"] for s in statements
                   if isinstance(s, Compute) and "{bits}" in C_EXPRS[s.op]})


def row_body(r, body, dtype: str, mode: str) -> str:
    """What one row runs, with `r` the renderer: every reduction pass, then the last (what
    the stores need, and the stores)."""
    level, uniform = plan(body)
    reduces = [s for s in body if isinstance(s, Reduce)]
    text = ""
    for k in range(1, max(level[s.dst] for s in reduces) + 1):
        text += _reduction_pass(r, body, [s for s in reduces if level[s.dst] == k], uniform,
                                dtype, mode)
        text += "".join(f"{r.statement(s, dtype, mode)}\n" for s in body
                        if isinstance(s, Compute) and s.dst in uniform and level[s.dst] == k)
    stores = [s for s in body if isinstance(s, Store)]
    cone = _cone(body, {s.src for s in stores}, uniform)
    last = [r.statement(s, dtype, mode) for s in cone + stores]
    return text + r.last_pass(last, _slots(cone) if mode == "train" else [])


def _reduction_pass(r, body, reduces: list, uniform: set, dtype: str, mode: str) -> str:
    """One pass over a row's columns accumulating `reduces`, then their row values."""
    cone = _cone(body, {s.src for s in reduces}, uniform)
    lines = [r.statement(s, dtype, mode, draw_in_place=True) for s in cone]
    lines = ([IDX] if mode == "train" and _slots(cone) else []) + lines
    lines += [f"acc{s.dst} += v{s.src};" for s in reduces]
    accs = [f"acc{s.dst}" for s in reduces]
    return ("".join(f"real {a} = (real)0;\n" for a in accs)
            + f"{r.reduce_loop(accs)} {{\n" + "".join(f"    {x}\n" for x in lines) + "}\n"
            + "".join(f"const real v{s.dst} = acc{s.dst};\n" for s in reduces))


def reducing_loops(r, body, dtype: str, mode: str) -> str:
    """The row loop of renderer `r` over `row_body`."""
    inner = row_body(r, body, dtype, mode)
    pad = "".join("    " + line if line.strip() else line for line in inner.splitlines(True))
    return f"{r.reduce_row_loop} {{\n{pad}}}\n"


def check_reduce(s: Reduce, defined: set) -> None:
    """A Reduce reads a defined value with a known reduction (the renderers' check)."""
    if s.op not in REDUCTIONS:
        raise ValueError(f"{s}: {s.op!r} is not a row reduction in {REDUCTIONS}")
    if s.src not in defined:
        raise ValueError(f"{s} uses a value before it is defined")


__all__ = ["check_reduce", "has_reductions", "plan", "reducing_loops", "row_body"]
