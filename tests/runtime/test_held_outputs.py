"""A forward's outputs are the caller's: whatever a caller holds of the last call (the list,
an array, a view, an export) keeps the numbers it had through the next forward and through a
repeated backward. Big outputs, 2 MiB each: where an engine might be tempted to write the old
arrays again (its copy into the old array measured no faster than a fresh one, so none does)."""
import ctypes

import numpy as np
import pytest

import symrnn as sym

ROWS, COLS = 512, 1024  # 2 MiB of float32


def bound(grad_req="null", rows=ROWS):
    x = sym.Variable("x")
    y = sym.tanh(x * 2.0, name="y")
    ex = sym.Group([y, sym.sigmoid(x, name="z")]).simple_bind(x=(rows, COLS),
                                                               grad_req=grad_req)
    return ex


def fed(ex, value: float):
    ex.arg_dict["x"][...] = value
    return ex.forward(is_train=False)


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
    got = fed(ex, 0.7)
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
