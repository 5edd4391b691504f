"""codegen.graph's helpers keep their own dicts; each must do exactly what the networkx calls
it stands for do, orders included (later topological orders depend on them), so each is
checked against those calls on a networkx.DiGraph, on random graphs."""
import random

import networkx as nx
import numpy as np
import pytest

from codegen.graph import (
    CycleError,
    add_node,
    copy_graph,
    copy_without,
    downstream,
    make_node,
    new_graph,
    node,
    remove_node,
    set_node,
    to_networkx,
    topo_order,
    upstream,
    with_graph_attrs,
)
from codegen.passes.fuse import groups_acyclic
from codegen.passes.plan_memory import _first_fit


def random_graph(seed: int, size: int = 40, with_networkx: bool = False):
    """A random DAG, built with add_node or with networkx's own calls."""
    rng = random.Random(seed)
    g = nx.DiGraph() if with_networkx else new_graph()
    for i in range(size):
        k = rng.choice([0, 0, 1, 1, 2, 3]) if i else 0
        inputs = [f"n{rng.randrange(i)}" for _ in range(k)] if i else []
        record = make_node("var" if not inputs else "add", inputs, (2,))
        if with_networkx:
            g.add_node(f"n{i}", node=record)
            for src in inputs:
                g.add_edge(src, f"n{i}")
        else:
            add_node(g, f"n{i}", record)
    return g


def layout(g):
    """Everything about a graph that an order can depend on."""
    if isinstance(g, nx.DiGraph):
        return (list(g), {n: list(g.successors(n)) for n in g},
                {n: list(g.predecessors(n)) for n in g}, list(nx.topological_sort(g)))
    return (list(g), {n: list(g.successors(n)) for n in g},
            {n: list(g.predecessors(n)) for n in g}, topo_order(g))


@pytest.mark.parametrize("seed", range(20))
def test_topo_order_is_networkx_topological_sort(seed):
    g = random_graph(seed)
    assert topo_order(g) == list(nx.topological_sort(to_networkx(g)))
    assert topo_order(g) == list(nx.topological_sort(random_graph(seed, with_networkx=True)))


def test_topo_order_refuses_a_cycle():
    g = new_graph()
    add_node(g, "a", make_node("var", (), (2,)))
    add_node(g, "b", make_node("neg", ("a",), (2,)))
    set_node(g, "a", make_node("neg", ("b",), (2,)))
    with pytest.raises(CycleError):
        topo_order(g)


@pytest.mark.parametrize("seed", range(20))
def test_add_node_and_set_node_do_what_the_networkx_calls_do(seed):
    rng = random.Random(seed)
    g, reference = random_graph(seed), random_graph(seed, with_networkx=True)
    assert layout(g) == layout(reference)
    for i in range(20):
        nids = list(g)
        nid = rng.choice(nids)
        ahead = list(nx.ancestors(reference, nid)) + [
            n for n in nids if n not in nx.descendants(reference, nid) and n != nid]
        inputs = tuple(rng.choice(ahead) for _ in range(rng.randrange(3))) if ahead else ()
        record = make_node("mul", inputs, (2,))
        set_node(g, nid, record)
        for src in list(reference.predecessors(nid)):
            reference.remove_edge(src, nid)
        reference.nodes[nid]["node"] = record
        for src in inputs:
            reference.add_edge(src, nid)
        new = f"new{i}"
        add_node(g, new, make_node("neg", (nid, nid), (2,)))
        reference.add_node(new, node=node(g, new))
        reference.add_edge(nid, new)
        reference.add_edge(nid, new)
    assert layout(g) == layout(reference)
    assert all(node(g, n) == reference.nodes[n]["node"] for n in g)


@pytest.mark.parametrize("seed", range(10))
def test_copy_without_is_remove_nodes_from_on_a_copy(seed):
    g, reference = random_graph(seed), random_graph(seed, with_networkx=True)
    dead = random.Random(seed).sample(list(g), 12)
    reference.remove_nodes_from(dead)
    before = layout(g)
    assert layout(copy_without(g, dead)) == layout(reference)
    assert layout(g) == before


def test_a_copy_and_its_source_change_independently():
    g = random_graph(0)
    before = layout(g)
    h = copy_graph(g)
    set_node(h, "n5", make_node("neg", ("n0",), (2,)))
    add_node(h, "extra", make_node("neg", ("n1",), (2,)))
    remove_node(h, "n3")
    assert layout(g) == before and "extra" not in g
    copied = layout(h)
    set_node(g, "n8", make_node("neg", ("n1",), (2,)))
    add_node(g, "other", make_node("neg", ("n0",), (2,)))
    remove_node(g, "n2")
    assert layout(h) == copied and "other" not in h


def test_a_labelled_copy_keeps_its_order_until_it_changes():
    g = random_graph(1)
    g.graph["outputs"] = ("n39",)
    h = with_graph_attrs(g, topo_order(g), groups={"a": ("n3",)})
    assert "groups" not in g.graph and h.graph == {"outputs": ("n39",), "groups": {"a": ("n3",)}}
    assert layout(h) == layout(g)
    labelled = with_graph_attrs(h, schedule=[])
    assert topo_order(labelled) == topo_order(g)
    add_node(labelled, "first", make_node("var", (), (2,)))
    set_node(labelled, "n0", make_node("neg", ("first",), (2,)))
    assert topo_order(labelled) == list(nx.topological_sort(to_networkx(labelled)))
    assert topo_order(h) == topo_order(g)


@pytest.mark.parametrize("seed", range(10))
def test_upstream_and_downstream_are_ancestors_and_descendants(seed):
    g = random_graph(seed)
    for nid in ("n7", "n20", "n39"):
        assert upstream(g, [nid]) == nx.ancestors(to_networkx(g), nid) | {nid}
        assert downstream(g, [nid]) == nx.descendants(to_networkx(g), nid) | {nid}


def test_groups_acyclic_sees_a_cycle_through_a_group():
    g = new_graph()
    add_node(g, "x", make_node("var", (), (2,)))
    add_node(g, "a", make_node("tanh", ("x",), (2,)))
    add_node(g, "b", make_node("dot", ("a",), (2,)))
    add_node(g, "c", make_node("tanh", ("b",), (2,)))
    assert groups_acyclic(g, {"a": "a", "c": "c"})
    assert not groups_acyclic(g, {"a": "a", "c": "a"})  # a -> b -> c, c in a's group


@pytest.mark.parametrize("seed", range(5))
def test_first_fit_finds_the_lowest_free_offset(seed):
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(0, 8))
        lo = np.sort(rng.integers(0, 40, n)) * 16
        hi = lo + rng.integers(1, 6, n) * 16
        size = int(rng.integers(1, 6)) * 16
        free = next(at for at in range(0, 1024, 16)
                    if all(at + size <= a or b <= at for a, b in zip(lo, hi)))
        assert _first_fit(lo, hi, size) == free


def test_to_networkx_without_networkx_is_a_config_error(monkeypatch):
    import sys

    from runtime.errors import ConfigError

    monkeypatch.setitem(sys.modules, "networkx", None)  # import networkx raises ImportError
    with pytest.raises(ConfigError, match=r"to_networkx: needs networkx.*symrnn\[graph\]"):
        to_networkx(random_graph(0, size=5))
