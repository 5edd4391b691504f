"""Helpers for pass tests (as numpy.testing is for arrays): compare a pass's output graph with
an Expected graph, and check that a pass leaves its input untouched; and `load_sibling`, which
lets one test file use another's helpers."""
from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

from codegen.graph import format_graph, node, same_graph


def record(g, nid):
    return node(g, nid) if nid in g else None


def assert_same(after, expected):
    """`same_graph`, with a node-by-node diff when it fails; edges must match too."""
    diff = [f"{nid}: got {record(after, nid)}, expected {record(expected, nid)}"
            for nid in sorted(set(after) | set(expected))
            if record(after, nid) != record(expected, nid)]
    assert same_graph(after, expected), "\n".join(diff) or (
        f"outputs {after.graph['outputs']} != {expected.graph['outputs']}")
    assert set(after.edges) == set(expected.edges)


def assert_pure(run, g):
    """Runs the pass `run` on `g`; fails if it mutated `g`. Returns the pass's output."""
    text, attrs, edges = format_graph(g), copy.deepcopy(dict(g.graph)), set(g.edges)
    out = run(g)
    assert out is not g
    assert format_graph(g) == text and dict(g.graph) == attrs and set(g.edges) == edges
    return out


def load_sibling(test_file: str, filename: str):
    """The module `filename` beside `test_file` (tests/ is not a package under pytest's
    importlib mode), loaded once per process."""
    path = Path(test_file).with_name(filename)
    name = f"_symrnn_{path.stem}_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]
