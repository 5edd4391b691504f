"""Shape inference: rules refine shapes in both directions, and errors name the argument."""
import numpy as np
import pytest

from codegen import Builder, infer_shapes, require_known
from codegen.graph import copy_graph, node, same_graph, set_node
from runtime.errors import ShapeError


def shape(g, nid):
    return node(g, nid).shape


def fc_graph(x_shape=(5, 3), w_shape=None, bias=True):
    """out = FC(x, w, b) + h, with h an initial state whose batch size is left open."""
    b = Builder()
    x = b.var("x", x_shape)
    w = b.var("w", w_shape)
    ins = [x, w, b.var("bias")] if bias else [x, w]
    fc = b.add("FullyConnected", ins, "fc", num_hidden=4)
    h = b.var("h", (0, 4))
    b.set_outputs([b.add("add", [fc, h], "out")])
    return b.g


def test_weight_shape_follows_from_the_data():
    g = infer_shapes(fc_graph())
    assert shape(g, "w") == (4, 3)
    assert shape(g, "bias") == (4,)
    assert shape(g, "fc") == (5, 4)


def test_weight_shape_follows_from_a_given_data_shape():
    g = infer_shapes(fc_graph(x_shape=(0, 0), w_shape=(0, 0)), {"x": (2, 7)})
    assert shape(g, "w") == (4, 7)
    assert shape(g, "h") == (2, 4)
    assert shape(g, "out") == (2, 4)


def test_data_shape_follows_from_the_weight_backwards():
    g = infer_shapes(fc_graph(x_shape=(0, 0), w_shape=(4, 6), bias=False), {"h": (8, 4)})
    assert shape(g, "x") == (8, 6)


def test_initial_state_takes_the_batch_size_of_the_step_it_enters():
    g = fc_graph()
    assert shape(g, "h") == (None, 4)
    g2 = infer_shapes(g)
    assert shape(g2, "h") == (5, 4)
    require_known(g2)


def test_infer_shapes_does_not_mutate_its_input():
    g = fc_graph(x_shape=(0, 0))
    before = copy_graph(g)
    infer_shapes(g, {"x": (2, 3)})
    assert same_graph(g, before)
    assert shape(g, "w") is None and shape(g, "x") == (None, None)


def test_a_given_shape_that_conflicts_with_a_declared_one_names_both():
    with pytest.raises(ShapeError) as e:
        infer_shapes(fc_graph(), {"x": (5, 9)})
    msg = str(e.value)
    assert "'x'" in msg and "(5, 9)" in msg and "(5, 3)" in msg


def test_a_given_shape_that_conflicts_with_an_inferred_one_names_both():
    with pytest.raises(ShapeError) as e:
        infer_shapes(fc_graph(), {"h": (7, 4)})
    msg = str(e.value)
    assert "'h'" in msg and "(7, 4)" in msg and "(5, 4)" in msg


def test_a_conflict_found_downstream_blames_the_given_argument():
    b = Builder()
    b.add("reshape", [b.var("x", (0,))], "r", shape=(2, 3))
    with pytest.raises(ShapeError) as e:
        infer_shapes(b.g, {"x": (5,)}, where="bind")
    msg = str(e.value)
    assert msg.startswith("bind:")
    assert "'x'" in msg and "'r'" in msg and "(5,)" in msg and "(2, 3)" in msg


def test_a_builder_conflict_names_the_node_and_both_shapes():
    b = Builder()
    with pytest.raises(ShapeError) as e:
        b.add("add", [b.var("a", (2, 3)), b.var("c", (3, 2))], "s")
    msg = str(e.value)
    assert "'s'" in msg and "(2, 3)" in msg and "(3, 2)" in msg


@pytest.mark.parametrize("bad", [(0, 3), (-1, 3), (2, 0)])
def test_non_positive_dims_are_refused(bad):
    with pytest.raises(ShapeError, match="'x'.*positive"):
        infer_shapes(fc_graph(x_shape=(0, 0)), {"x": bad})


@pytest.mark.parametrize("bad", [(2.0, 3), ("2", 3), (True, 3), (2, None), 5, "23"])
def test_non_int_dims_are_refused(bad):
    with pytest.raises(ShapeError, match="'x'.*tuple of ints"):
        infer_shapes(fc_graph(x_shape=(0, 0)), {"x": bad})


def test_a_list_is_accepted_as_a_shape():
    g = infer_shapes(fc_graph(x_shape=(0, 0)), {"x": [2, 3]})
    assert shape(g, "x") == (2, 3)


def test_numpy_integer_dims_are_accepted():
    g = infer_shapes(fc_graph(x_shape=(0, 0)), {"x": (np.int64(2), np.int32(3))})
    assert shape(g, "x") == (2, 3)


def test_an_unknown_argument_name_is_a_shape_error():
    with pytest.raises(ShapeError, match="'nope'"):
        infer_shapes(fc_graph(), {"nope": (2, 3)})


def test_require_known_names_the_unknown_argument():
    g = fc_graph(x_shape=(0, 3))
    with pytest.raises(ShapeError) as e:
        require_known(infer_shapes(g), where="bind")
    msg = str(e.value)
    assert msg.startswith("bind:") and "argument 'x'" in msg and "(?, 3)" in msg


def test_require_known_names_an_unknown_op_node():
    b = Builder()
    b.add("tanh", [b.var("x")], "y")
    g = infer_shapes(b.g, {"x": (2, 3)})
    require_known(g)
    set_node(g, "y", node(g, "y").with_(shape=(2, None)))
    with pytest.raises(ShapeError, match="'tanh' node 'y'"):
        require_known(g)




@pytest.mark.parametrize("op, attrs", [
    ("sum", {"axis": (0, 3)}),
    ("slice", {"axis": 1, "begin": 1, "end": 3}),
    ("reshape", {"shape": (4, -1)}),
    ("reshape", {"shape": (-1, -1)}),
    ("take", {"index": 3}),
    ("sum", {"axis": 2}),
    ("split", {"axis": 0, "num_outputs": 2, "index": 0}),
    ("slice", {"axis": 2, "begin": 0, "end": 1}),
    ("reshape", {"shape": (3, 2, 0)}),
    ("split", {"axis": 2, "num_outputs": 1, "index": 0}),
])
def test_rules_refuse_impossible_attributes(op, attrs):
    b = Builder()
    with pytest.raises(ShapeError, match="'y'"):
        b.add(op, [b.var("x", (3, 2))], "y", **attrs)
