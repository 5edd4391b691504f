"""plan_memory: liveness over the schedule, offsets in one arena, in-place stacks and concats;
and verify_memory, the shadow-arena replay that checks the plan independently."""
import copy
import itertools

import pytest

import symrnn as sym
from codegen import Builder
from codegen.graph import copy_graph, format_graph, node, same_graph
from codegen.passes.fuse import fuse_elementwise
from codegen.passes.plan_memory import plan_memory
from codegen.passes.schedule import schedule
from codegen.pipeline import passes
from codegen.verify import VerifyError, verify_memory
from runtime.program import View
from symrnn.lower import lower_and_infer

ARENA = "arena.float32"


def planned(g, fuse=True):
    g = schedule(fuse_elementwise(g, fuse))
    text, attrs, edges = format_graph(g), copy.deepcopy(dict(g.graph)), set(g.edges)
    out = plan_memory(g)
    assert format_graph(g) == text and dict(g.graph) == attrs and set(g.edges) == edges
    assert same_graph(out, g)
    return out


def whole(offset, shape, cols=None):
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return View(ARENA, offset, rows, shape[-1], cols or shape[-1], tuple(shape))


def footprint(v: View) -> set:
    return {v.offset + r * v.ld + c for r in range(v.rows) for c in range(v.cols)}


def assert_live_values_disjoint(g):
    """Planner-side check: roots whose live ranges meet never share an arena element."""
    live, layout = g.graph["liveness"], g.graph["layout"]
    for a, b in itertools.combinations(sorted(live), 2):
        (s1, e1), (s2, e2) = live[a], live[b]
        if s1 <= e2 and s2 <= e1 and layout[a].buffer == layout[b].buffer:
            assert not footprint(layout[a]) & footprint(layout[b]), (a, b)


def chain():
    """x -> tanh a -> dot d1 -> tanh b -> dot d2 -> tanh c: each value dies one step later."""
    b = Builder()
    x, W = b.var("x", (4, 4)), b.var("W", (4, 4))
    a = b.add("tanh", [x], "a")
    c = b.add("tanh", [b.add("dot", [b.add("tanh", [b.add("dot", [a, W], "d1")], "b"), W],
                             "d2")], "c")
    b.set_outputs([c])
    return b.g


def test_disjoint_lifetimes_share_space_and_overlapping_ones_do_not():
    g = planned(chain())
    assert [u for u, _ in g.graph["schedule"]] == ["fused(a)", "d1", "fused(b)", "d2",
                                                   "fused(c)"]
    assert g.graph["liveness"] == {"a": (0, 1), "d1": (1, 2), "b": (2, 3), "d2": (3, 4),
                                   "c": (4, 5)}
    layout = g.graph["layout"]
    # a, b and c never live at once: one range; d1 and d2 the other
    for nid in ("a", "b", "c"):
        assert layout[nid] == whole(0, (4, 4))
    for nid in ("d1", "d2"):
        assert layout[nid] == whole(16, (4, 4))
    assert layout["x"] == View("arg:x", 0, 4, 4, 4, (4, 4))
    assert g.graph["arena"] == {ARENA: 32}
    assert g.graph["unplanned"] == {ARENA: 80}
    assert_live_values_disjoint(g)
    verify_memory(g)


def test_a_value_seen_by_an_output_through_a_view_lives_to_the_end():
    b = Builder()
    x, W = b.var("x", (4, 4)), b.var("W", (4, 4))
    r = b.add("reshape", [b.add("tanh", [x], "a")], "r", shape=(2, 2, 4))
    e = b.add("sigmoid", [b.add("dot", [x, W], "d")], "e")
    b.set_outputs([r, b.add("sigmoid", [b.add("dot", [e, W], "d2")], "e2")])
    g = planned(b.g)
    end = len(g.graph["schedule"])
    assert g.graph["liveness"]["a"] == (0, end)
    assert g.graph["layout"]["r"] == View(ARENA, g.graph["layout"]["a"].offset, 4, 4, 4,
                                          (2, 2, 4))
    assert_live_values_disjoint(g)
    verify_memory(g)


def stack_of_kernels():
    b = Builder()
    X = b.var("X", (2, 3, 4))
    hs = [b.add("tanh", [b.add("take", [X], f"x{t}", index=t)], f"h{t}") for t in range(2)]
    b.set_outputs([b.add("stack", hs, "S")])
    return b.g


def test_in_place_stack_has_no_step_and_its_parts_are_windows_of_it():
    g = planned(stack_of_kernels())
    assert [u for u, _ in g.graph["schedule"]] == ["fused(h0)", "fused(h1)"]
    layout = g.graph["layout"]
    assert layout["S"] == whole(0, (2, 3, 4))
    assert layout["h0"] == whole(0, (3, 4))
    assert layout["h1"] == whole(12, (3, 4))
    assert g.graph["arena"] == {ARENA: 32}
    verify_memory(g)


def test_in_place_concat_of_kernels_writes_column_windows():
    b = Builder()
    x = b.var("x", (3, 4))
    parts = [b.add("tanh", [x], "p0"), b.add("exp", [x], "p1")]
    b.set_outputs([b.add("concat", parts, "C", axis=1)])
    g = planned(b.g, fuse=False)
    assert "C" not in [u for u, _ in g.graph["schedule"]]
    layout = g.graph["layout"]
    assert layout["p0"] == View(ARENA, layout["C"].offset, 3, 4, 8, (3, 4))
    assert layout["p1"] == View(ARENA, layout["C"].offset + 4, 3, 4, 8, (3, 4))
    verify_memory(g)


def test_a_gemm_is_never_a_column_window_so_that_concat_is_copied():
    b = Builder()
    x, W = b.var("x", (3, 4)), b.var("W", (4, 4))
    b.set_outputs([b.add("concat", [b.add("tanh", [x], "h0"), b.add("dot", [x, W], "h1")],
                         "C", axis=1)])
    g = planned(b.g)
    assert [u for u, _ in g.graph["schedule"]] == ["fused(h0)", "h1", "C"]
    layout = g.graph["layout"]
    assert layout["h1"].ld == layout["h1"].cols == 4  # contiguous, its own range
    assert_live_values_disjoint(g)
    verify_memory(g)


# ---- the verifier ---------------------------------------------------------------------------

def read_late():
    """a is read by the last kernel, after d was written: they must not share memory."""
    b = Builder()
    x, W = b.var("x", (4, 4)), b.var("W", (4, 4))
    a = b.add("tanh", [x], "a")
    e = b.add("sigmoid", [b.add("dot", [a, W], "d")], "e")
    b.set_outputs([b.add("mul", [e, a], "f")])
    return b.g


def corrupt(g, victim, culprit):
    """A copy of planned `g` in which `culprit` is written over `victim`."""
    bad = copy_graph(g)
    bad.graph = dict(g.graph)
    bad.graph["layout"] = dict(g.graph["layout"])
    v, c = bad.graph["layout"][victim], bad.graph["layout"][culprit]
    bad.graph["layout"][culprit] = View(v.buffer, v.offset, c.rows, c.cols, c.ld, c.shape)
    return bad


def test_verify_memory_raises_when_a_live_value_is_overwritten():
    g = planned(read_late())
    assert g.graph["liveness"]["a"] == (0, 2) and g.graph["liveness"]["d"] == (1, 2)
    verify_memory(g)
    with pytest.raises(VerifyError, match="fused\\(f\\) reads a"):
        verify_memory(corrupt(g, "a", "d"))


def lstm_plan(typ="lstm", T=4, skip=(), **kw):
    rnn = sym.RNNFactory(num_hidden=[8, 6], data_dim=5, typ=typ, **kw)
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    loss = sym.sum(out * out, name="loss")
    g, _ = lower_and_infer(loss, {"data": (T, 3, 5)})
    wrt = [a for a in loss.list_arguments() if a != "data"]
    for name, run in passes(wrt, optimize=True):
        if name not in skip:
            g = run(g)
    return g


@pytest.mark.parametrize("typ, kw", [("lstm", {}), ("gru", {"dropout": 0.3}),
                                     ("rnn_tanh", {"zoneout": 0.2})])
def test_recurrent_training_plans_verify_and_reuse_memory(typ, kw):
    g = lstm_plan(typ, **kw)
    assert_live_values_disjoint(g)
    verify_memory(g)
    assert g.graph["arena"][ARENA] < g.graph["unplanned"][ARENA]


def test_verify_memory_catches_a_corrupted_lstm_plan():
    g = lstm_plan()
    live = g.graph["liveness"]
    # the cell state of step 1 is read again in the backward pass; the recurrent product of
    # step 2 is written in between: putting it on top of the cell state must be caught
    victim, culprit = "lstm_l0_t1_c", "lstm_l0_t2_h2h.gemm"
    assert live[victim][0] < live[culprit][0] < live[victim][1]
    verify_memory(g)
    with pytest.raises(VerifyError, match="memory plan"):
        verify_memory(corrupt(g, victim, culprit))


def test_a_part_of_two_concats_is_in_place_in_one_and_copied_by_the_other():
    """In a GRU's backward step the gradients of r and z belong to both the i2h and the h2h
    gate-gradient concats: each concat keeps its step and copies only the parts stored
    elsewhere (runtime.assemble); the others are computed in their windows. (In the pipeline
    split_shared_parts gives the second concat copies of its own first: skipped here.)"""
    from codegen.verify import _parts_in_place
    from runtime.assemble import copies

    g = lstm_plan("gru", skip=("split_shared_parts",))
    layout = g.graph["layout"]
    kept = [u for u, _ in g.graph["schedule"] if u in g and node(g, u).op == "concat"]
    assert kept
    for c in kept:
        n = node(g, c)
        copied = copies("concat", n.attr_dict, [layout[p] for p in n.inputs], layout[c])
        assert len(copied) == len(n.inputs) - len(_parts_in_place(g, c, layout))
        assert 0 < len(copied) < len(n.inputs), c
    verify_memory(g)


def test_strided_layout_places_what_lives_to_the_end_first_and_groups_above_each_other():
    """plan_memory(strided=True): the output first, then the rest above it, so that a step's
    values do not land in gaps whose size depends on the sequence's length."""
    g = chain()
    fused = fuse_elementwise(g)
    g = plan_memory(schedule(fused), strided=True)
    layout = g.graph["layout"]
    assert layout["c"] == whole(0, (4, 4))
    for nid in ("a", "b", "d1", "d2"):
        assert layout[nid].offset >= 16
    assert_live_values_disjoint(g)
    verify_memory(g)
