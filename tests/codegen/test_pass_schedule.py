"""schedule: `graph["schedule"]`, a list of (unit, phase) in a topological order over units
(fused groups and single non-view ops), forward units first; views and variables are no unit."""
import copy

import pytest

import symrnn as sym
from codegen import Builder, autodiff
from codegen.graph import format_graph, node, same_graph
from codegen.passes.dce import eliminate_dead_code
from codegen.passes.fuse import forward_nodes, fuse_elementwise
from codegen.passes.schedule import schedule, unit_map
from codegen.pipeline import passes
from codegen.views import is_view
from symrnn.lower import lower_and_infer


def scheduled(g):
    text, attrs, edges = format_graph(g), copy.deepcopy(dict(g.graph)), set(g.edges)
    out = schedule(g)
    assert format_graph(g) == text and dict(g.graph) == attrs and set(g.edges) == edges
    assert same_graph(out, g)
    return out


def gemm_between_kernels(train: bool):
    """x -> tanh -> split (a view) -> dot(., W) -> sigmoid -> sum"""
    b = Builder()
    x, W = b.var("x", (4, 6)), b.var("W", (3, 5))
    v = b.add("split", [b.add("tanh", [x], "a")], "v", axis=1, num_outputs=2, index=0)
    e = b.add("sigmoid", [b.add("dot", [v, W], "d")], "e")
    b.set_outputs([b.add("sum", [e], "s")])
    g = eliminate_dead_code(autodiff(b.g, ["x", "W"])) if train else b.g
    return fuse_elementwise(g)


def test_forward_graph_schedule_is_exact():
    g = scheduled(gemm_between_kernels(train=False))
    assert g.graph["schedule"] == [("fused(a)", "forward"), ("d", "forward"),
                                   ("fused(e)", "forward"), ("s", "forward")]


def check_schedule(g):
    """Topological over units (through views), every unit once, forward before backward,
    no view or variable scheduled."""
    order = g.graph["schedule"]
    units = [u for u, _ in order]
    unit_of = unit_map(g)
    assert sorted(units) == sorted(set(unit_of.values())), "each unit exactly once"
    pos = {u: i for i, u in enumerate(units)}
    for n in g:
        if node(g, n).op == "var" or is_view(g, n):
            assert n not in unit_of and n not in pos
    for a, b in g.edges:
        src = a
        while src not in unit_of and node(g, src).op != "var":
            src = node(g, src).inputs[0]  # a view: the unit that produced its source
        if src in unit_of and b in unit_of and unit_of[src] != unit_of[b]:
            assert pos[unit_of[src]] < pos[unit_of[b]], (a, b)
    phases = [p for _, p in order]
    assert phases == sorted(phases, key=lambda p: p == "backward")
    fwd = forward_nodes(g)
    for u, phase in order:
        members = [n for n, v in unit_of.items() if v == u]
        assert all((m in fwd) == (phase == "forward") for m in members), u


def test_training_graph_runs_forward_units_before_backward_ones():
    g = scheduled(gemm_between_kernels(train=True))
    check_schedule(g)
    order = g.graph["schedule"]
    assert order[:4] == [("fused(a)", "forward"), ("d", "forward"),
                         ("fused(e)", "forward"), ("s", "forward")]
    assert {p for _, p in order[4:]} == {"backward"}


def test_unfused_graph_has_one_unit_per_elementwise_node():
    b = Builder()
    x = b.var("x", (2, 3))
    b.set_outputs([b.add("exp", [b.add("tanh", [x], "a")], "b")])
    g = scheduled(fuse_elementwise(b.g, fuse=False))
    assert g.graph["schedule"] == [("fused(a)", "forward"), ("fused(b)", "forward")]


@pytest.fixture(scope="module")
def lstm():
    T = 5
    rnn = sym.RNNFactory(num_hidden=[8, 6], data_dim=5, typ="lstm")
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    loss = sym.sum(out * out, name="loss")
    g, _ = lower_and_infer(loss, {"data": (T, 3, 5)})
    wrt = [a for a in loss.list_arguments() if a != "data"]
    for name, run in passes(wrt, optimize=True):
        g = run(g)
        if name == "schedule":
            return g, T


def test_lstm_training_schedule_is_valid_and_follows_the_time_steps(lstm):
    g, T = lstm
    check_schedule(g)
    units = [u for u, _ in g.graph["schedule"]]
    for layer in range(2):
        steps = [units.index(f"fused(lstm_l{layer}_t{t}_h)") for t in range(T)]
        assert steps == sorted(steps)
    # layer 0 finishes before layer 1 starts: its whole output feeds one batched GEMM
    assert units.index(f"fused(lstm_l0_t{T - 1}_h)") < units.index("fused(lstm_l1_t0_h)")
