"""runtime.outputs: a forward writes a big output into the last call's array only where
nobody can see it; whatever a caller holds keeps the numbers it had."""
import ctypes
import threading
import weakref

import numpy as np
import pytest

import symrnn as sym
from runtime import outputs

ROWS, COLS = 512, 1024  # 2 MiB of float32: over RECYCLE_BYTES


def bound(grad_req="null", rows=ROWS):
    x = sym.Variable("x")
    y = sym.tanh(x * 2.0, name="y")
    ex = sym.Group([y, sym.sigmoid(x, name="z")]).simple_bind(x=(rows, COLS),
                                                               grad_req=grad_req)
    return ex


def fed(ex, value: float):
    ex.arg_dict["x"][...] = value
    return ex.forward(is_train=False)


def test_dropped_outputs_are_written_again_with_the_right_numbers():
    ex = bound()
    ids = [id(a) for a in fed(ex, 0.1)]
    got = fed(ex, 0.3)
    assert [id(a) for a in got] == ids
    np.testing.assert_allclose(got[0], np.tanh(0.6), rtol=1e-6)
    np.testing.assert_allclose(got[1], 1 / (1 + np.exp(-0.3)), rtol=1e-6)
    assert got is ex.outputs


def held_list(ex):
    return ex.outputs


HOLDERS = {
    "the returned list": held_list,
    "an output": lambda ex: ex.outputs[0],
    "ex.outputs[0] view": lambda ex: ex.outputs[0][1:],
    "a reshaped view": lambda ex: ex.outputs[0].reshape(-1),
    "a memoryview": lambda ex: memoryview(ex.outputs[0]),
    "another list": lambda ex: [*ex.outputs],
    "output_dict": lambda ex: ex.output_dict,
    "a ctypes array": lambda ex: np.ctypeslib.as_ctypes(ex.outputs[0]),
    "a dlpack capsule": lambda ex: ex.outputs[0].__dlpack__(),
    "np.asarray": lambda ex: np.asarray(ex.outputs[0]),
}


def first_of(held):
    if isinstance(held, dict):
        return np.asarray(held["y_output"])
    if isinstance(held, list):
        return np.asarray(held[0])
    if isinstance(held, ctypes.Array):
        return np.ctypeslib.as_array(held)
    if type(held).__name__ == "PyCapsule":
        return None
    return np.asarray(held)


@pytest.mark.parametrize("how", list(HOLDERS))
def test_what_a_caller_holds_keeps_its_numbers(how):
    ex = bound()
    fed(ex, 0.1)
    held = HOLDERS[how](ex)
    before = first_of(held)
    before = None if before is None else before.copy()
    first = id(ex.outputs[0])
    got = fed(ex, 0.7)
    assert id(got[0]) != first  # the held array (or its base) is not written again
    if before is not None:
        np.testing.assert_array_equal(first_of(held), before)
    np.testing.assert_allclose(got[0], np.tanh(1.4), rtol=1e-6)


def test_a_torch_tensor_keeps_its_numbers():
    torch = pytest.importorskip("torch")
    ex = bound()
    t = torch.from_numpy(fed(ex, 0.1)[0])
    before = t.clone()
    fed(ex, 0.5)
    assert torch.equal(t, before)


def test_the_other_outputs_are_still_written_again():
    ex = bound()
    first = fed(ex, 0.1)
    kept, other = first[0], id(first[1])
    del first
    got = fed(ex, 0.2)
    assert got[0] is not kept and id(got[1]) == other
    np.testing.assert_allclose(kept, np.tanh(0.2), rtol=1e-6)


def test_a_weakly_referenced_output_is_not_written_again():
    ex = bound()
    ref = weakref.ref(fed(ex, 0.1)[0])
    fed(ex, 0.4)
    assert ref() is None or np.allclose(ref(), np.tanh(0.2))


def test_a_view_placed_in_the_list_does_not_write_its_base():
    ex = bound()
    fed(ex, 0.1)
    mine = np.zeros((2, ROWS, COLS), np.float32)
    ex.outputs[0] = mine[1]  # a view: its base is the caller's
    got = fed(ex, 0.6)
    assert not mine.any() and got[0].base is None


@pytest.mark.parametrize("change", ["readonly", "reshaped", "float64"])
def test_a_changed_array_is_not_written_again(change):
    ex = bound()
    fed(ex, 0.1)
    if change == "readonly":
        ex.outputs[0].flags.writeable = False
    elif change == "reshaped":
        ex.outputs[0].shape = (COLS, ROWS)
    else:
        ex.outputs[0] = np.zeros((ROWS, COLS))
    got = fed(ex, 0.2)
    assert got[0].shape == (ROWS, COLS) and got[0].dtype == np.float32
    assert got[0].flags.writeable
    np.testing.assert_allclose(got[0], np.tanh(0.4), rtol=1e-6)


def test_small_outputs_are_fresh_copies():
    ex = bound(rows=4)
    kept = fed(ex, 0.1)[0]
    assert not ex._copier.recycles
    got = fed(ex, 0.2)
    assert got[0] is not kept and got[0].base is None
    np.testing.assert_allclose(kept, np.tanh(0.2), rtol=1e-6)
    np.testing.assert_allclose(got[0], np.tanh(0.4), rtol=1e-6)


def test_a_failed_forward_leaves_the_outputs():
    ex = bound()
    fed(ex, 0.1)
    first, values = list(ex.outputs), [a.copy() for a in ex.outputs]
    del first

    def fail(phase):
        raise RuntimeError("boom")

    ex.engine._run = fail
    with pytest.raises(RuntimeError, match="boom"):
        fed(ex, 0.9)
    for a, v in zip(ex.outputs, values):
        np.testing.assert_array_equal(a, v)


def test_a_repeated_backward_leaves_the_outputs():
    """The replayed forward (Executor.backward) writes no output the caller was given."""
    ex = bound("write")
    ex.arg_dict["x"][...] = 0.1
    ex.forward(is_train=True)
    before = [a.copy() for a in ex.outputs]
    heads = [np.ones((ROWS, COLS), np.float32)] * 2
    ex.backward(heads)
    ex.arg_dict["x"][...] = 0.8  # the replay runs on these
    ex.backward(heads)
    for a, v in zip(ex.outputs, before):
        np.testing.assert_array_equal(a, v)


def test_a_read_from_another_thread_waits_for_the_copy():
    ex = bound(rows=4)
    fed(ex, 0.1)
    new, got = [np.ones(1)], []
    with ex._lock:
        ex._outputs = None  # as Executor._copy_out, while it writes
        reader = threading.Thread(target=lambda: got.append(ex.outputs))
        reader.start()
        reader.join(0.2)
        assert reader.is_alive() and not got
        ex._outputs = new
    reader.join(10)
    assert got == [new] and got[0] is new


def test_the_reference_counts_were_measured():
    assert outputs.RECYCLES  # CPython 3.11 with the GIL here
    assert outputs.LIST_ALONE == 2 and outputs.ARRAY_ALONE == 3
