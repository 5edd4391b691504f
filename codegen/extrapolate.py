"""extrapolate: the rolled Program of a long sequence from those of three short ones.

Rolled (codegen.roll), the Program of a recurrent network at length T is the same list of
steps at every T past a few steps: only numbers move (loop trip counts, view offsets and rows,
buffer sizes, argument shapes, the step numbers in names), each by a constant amount per time
step. Given the Programs at lengths `t0`, `t0 + p` and `t0 + 2p`, `extrapolate` checks that
they are the same structure and that every number in them is affine in T (equal differences),
and writes the Program at `length = t0 + n p` by extending each number along its line:

    programs = [(t, compile(graph_at(t), options)) for t in (12, 14, 16)]
    program = extrapolate(programs, 5000)        # None where the three are not so related
    program.stats["extrapolated_from"]           # [12, 14, 16]

Compiling three short sequences and extending costs the same at any T, and the passes never
see T copies of the step. Where the Programs differ in anything but affine numbers (a mask-id
table of masks the user named, whose ids hash the names; a different schedule), it returns
None and the caller compiles T itself. Dict keys that name a step (the buffer of a head
`rnn_l0_t11_h`) are paired in order and extended as names. `p` = 2 covers layouts that
alternate between two buffers from one step to the next.
"""
from __future__ import annotations

import re
from dataclasses import fields, is_dataclass

from runtime.program import Program

_NUMBER = re.compile(r"(\d+)")


class NotAffine(Exception):
    pass


def extrapolate(samples: list, length: int) -> Program | None:
    """The Program at `length` from `[(t0, P0), (t1, P1), (t2, P2)]`, equally spaced, or None
    where they are not the same structure with numbers affine in T."""
    (t0, p0), (t1, p1), (t2, p2) = samples
    period = t1 - t0
    if period <= 0 or t2 - t1 != period or length < t0 or (length - t0) % period:
        return None
    n = (length - t0) // period
    if not p0.kernels == p1.kernels == p2.kernels:
        return None
    trees = [_tree(p) for p in (p0, p1, p2)]
    stats = [t.pop("stats") for t in trees]
    for t in trees:
        t["kernels"] = {}  # the same in all three: taken as they are
    try:
        tree = _fit(*trees, n)
    except NotAffine:
        return None
    tree["stats"] = {**_fit_stats(stats, n), "extrapolated_from": [t0, t1, t2]}
    program = Program.from_dict(tree)
    program.kernels = dict(p2.kernels)
    return program


def _tree(x):
    """`dataclasses.asdict` without its deep copies (the Programs are not changed)."""
    if is_dataclass(x):
        return {f.name: _tree(getattr(x, f.name)) for f in fields(x)}
    if isinstance(x, (list, tuple)):
        return type(x)(_tree(v) for v in x)
    if isinstance(x, dict):
        return {k: _tree(v) for k, v in x.items()}
    return x


def _fit(a, b, c, n: int):
    """`a`, `b`, `c` (equally spaced samples) extended `n` spacings on from `a`."""
    if not type(a) is type(b) is type(c):
        raise NotAffine(f"{a!r}, {b!r}, {c!r}")
    if isinstance(a, dict):
        if a.keys() == b.keys() == c.keys():
            return {k: _fit(a[k], b[k], c[k], n) for k in a}
        if not len(a) == len(b) == len(c):
            raise NotAffine(f"keys {sorted(a)} against {sorted(b)}")
        # keys that name a step (the buffer of a head `rnn_l0_t11_h`): in order, as names
        return {_fit(x, y, z, n): _fit(a[x], b[y], c[z], n) for x, y, z in zip(a, b, c)}
    if isinstance(a, (list, tuple)):
        if not len(a) == len(b) == len(c):
            raise NotAffine(f"lengths {len(a)}, {len(b)}, {len(c)}")
        return type(a)(_fit(x, y, z, n) for x, y, z in zip(a, b, c))
    if isinstance(a, int) and not isinstance(a, bool):
        return _line(a, b, c, n)
    if isinstance(a, str) and not a == b == c:
        return _name(a, b, c, n)
    if not a == b == c:
        raise NotAffine(f"{a!r}, {b!r}, {c!r}")
    return a


def _line(a: int, b: int, c: int, n: int) -> int:
    if b - a != c - b:
        raise NotAffine(f"{a}, {b}, {c}")
    return a + n * (b - a)


def _name(a: str, b: str, c: str, n: int) -> str:
    """A name whose numbers move with T (`lstm_l0_t11_h2h.gemm`): each along its line."""
    parts = [_NUMBER.split(x) for x in (a, b, c)]
    if not len(parts[0]) == len(parts[1]) == len(parts[2]):
        raise NotAffine(f"names {a!r}, {b!r}, {c!r}")
    out = []
    for i, (x, y, z) in enumerate(zip(*parts)):
        if i % 2:  # a number
            out.append(str(_line(int(x), int(y), int(z), n)))
        elif x == y == z:
            out.append(x)
        else:
            raise NotAffine(f"names {a!r}, {b!r}, {c!r}")
    return "".join(out)


def _fit_stats(stats: list, n: int) -> dict:
    """Counts along their lines where they are affine, the rest as at the longest sample;
    the compile seconds are the three compiles' together."""
    out = {}
    for key, value in stats[-1].items():
        if key == "compile_seconds":
            out[key] = {k: round(sum(s[key].get(k, 0.0) for s in stats), 4) for k in value}
            continue
        try:
            out[key] = _fit(stats[0].get(key), stats[1].get(key), value, n)
        except NotAffine:
            out[key] = value
    return out
