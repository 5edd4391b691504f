"""`arg_dict` and `grad_dict` (runtime.arg_views.ArgDict) on every CPU engine: assignment
copies same-kind values into the executor's own arrays or raises a BindError naming the
argument and both specs; keys are never removed; the engines see every accepted value."""

import copy
import pickle
import warnings

import numpy as np
import pytest

import symrnn as sym
from runtime.arg_views import ArgDict
from runtime.errors import fmt_shape
from symrnn import BindError

BACKENDS = ["reference", "cpu"]
T, N, I, H = 2, 3, 5, 4


def _executor(backend, grad_req="write"):
    data = sym.Variable("data")
    head = sym.sum(sym.tanh(sym.FullyConnected(data, num_hidden=H, name="fc")))
    ex = head.simple_bind(backend=backend, grad_req=grad_req, data=(T, N, I))
    rng = np.random.default_rng(0)
    for v in ex.arg_dict.values():
        v[...] = rng.standard_normal(v.shape)
    return ex


def _refused(ex, call, *needles):
    """`call` raises a BindError with every needle; every array is as it was."""
    before = {d: {k: (v, v.copy()) for k, v in getattr(ex, d).items()}
              for d in ("arg_dict", "grad_dict")}
    with pytest.raises(BindError) as info:
        call()
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    for d, arrays in before.items():
        assert list(getattr(ex, d)) == list(arrays)
        for k, (obj, values) in arrays.items():
            assert getattr(ex, d)[k] is obj
            np.testing.assert_array_equal(obj, values)
    return str(info.value)


def _assign(mapping, name, value):
    def call():
        mapping[name] = value
    return call


@pytest.mark.parametrize("backend", BACKENDS)
def test_transposed_weight_of_the_same_size_is_refused(backend):
    ex = _executor(backend)
    w = ex.arg_dict["fc_weight"]
    _refused(ex, _assign(ex.arg_dict, "fc_weight", w.T.copy()), "arg_dict['fc_weight']",
             "(4, 5) float32", "(5, 4) float32")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "complex64"])
def test_non_float_values_into_a_float_argument_are_refused(backend, dtype):
    ex = _executor(backend)
    value = np.ones((H, I), dtype)
    _refused(ex, _assign(ex.arg_dict, "fc_weight", value), "'fc_weight'", "float32", dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_and_pop_are_refused_and_the_next_forward_uses_the_array(backend):
    ex = _executor(backend)
    expected = ex.forward()[0].copy()
    _refused(ex, _assign(ex.arg_dict, "fc_weight", np.ones((H, I), np.int32)), "int32")
    _refused(ex, lambda: ex.arg_dict.__delitem__("fc_weight"), "cannot be removed",
             "'fc_weight'")
    _refused(ex, lambda: ex.arg_dict.pop("fc_weight"), "cannot be removed")
    _refused(ex, ex.arg_dict.clear, "cannot be removed")
    _refused(ex, ex.grad_dict.popitem, "cannot be removed")
    _refused(ex, _assign(ex.arg_dict, "new", np.ones(2, np.float32)), "'new'",
             "not an argument")
    np.testing.assert_array_equal(ex.forward()[0], expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_dict_with_a_wrong_shape_is_refused(backend):
    ex = _executor(backend)
    _refused(ex, _assign(ex.grad_dict, "fc_weight", np.zeros((I, H), np.float32)),
             "grad_dict['fc_weight']", "(4, 5) float32", "(5, 4) float32")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [0.5, [[1.0] * I] * H, None])
def test_non_arrays_are_refused_with_the_in_place_idiom(backend, value):
    ex = _executor(backend)
    msg = _refused(ex, _assign(ex.arg_dict, "fc_weight", value), "'fc_weight'")
    assert "arg_dict['fc_weight'][...] = value" in msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_is_copied_into_the_same_array_and_used(backend):
    ex = _executor(backend)
    w = ex.arg_dict["fc_weight"]
    new = np.random.default_rng(1).standard_normal((H, I))  # float64
    ex.arg_dict["fc_weight"] = new
    assert ex.arg_dict["fc_weight"] is w and w.dtype == np.float32
    np.testing.assert_array_equal(w, new.astype(np.float32))
    fresh = _executor(backend)
    fresh.arg_dict["fc_weight"][:] = new  # the MXNet idiom gives the same numbers
    fresh.arg_dict["fc_bias"][:] = ex.arg_dict["fc_bias"]
    fresh.arg_dict["data"][:] = ex.arg_dict["data"]
    np.testing.assert_array_equal(ex.forward()[0], fresh.forward()[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_assigning_a_square_transpose_of_itself_is_exact(backend):
    data = sym.Variable("data")
    ex = sym.FullyConnected(data, num_hidden=I, name="fc").simple_bind(
        backend=backend, grad_req="null", data=(T, N, I))
    w = ex.arg_dict["fc_weight"]
    w[...] = np.arange(I * I).reshape(I, I)
    ex.arg_dict["fc_weight"] = w.T  # overlapping memory
    np.testing.assert_array_equal(w, np.arange(I * I).reshape(I, I).T)


def test_a_float64_value_that_overflows_float32_is_refused():
    ex = _executor("cpu")
    value = np.full((H, I), 1e300)
    _refused(ex, _assign(ex.arg_dict, "fc_weight", value), "overflows float32")


def test_integers_into_an_integer_argument_must_fit():
    label = sym.Variable("label", dtype="int32")
    ex = sym.Embedding(label, input_dim=10, output_dim=2, name="e").simple_bind(
        backend="cpu", grad_req="null", label=(3,))
    ex.arg_dict["label"] = np.array([1, 2, 3], np.int64)
    np.testing.assert_array_equal(ex.arg_dict["label"], [1, 2, 3])
    _refused(ex, _assign(ex.arg_dict, "label", np.array([1, 2, 2**40])), "do not fit int32")
    _refused(ex, _assign(ex.arg_dict, "label", np.array([1.0, 2.0, 3.0])), "integer arrays")


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_updates_and_update_keep_the_arrays(backend):
    ex = _executor(backend)
    ex.forward(is_train=True)
    ex.backward()
    g = ex.grad_dict["fc_weight"]
    twice = 2 * g
    ex.grad_dict["fc_weight"] += g  # __setitem__ with the same object
    assert ex.grad_dict["fc_weight"] is g
    np.testing.assert_array_equal(g, twice)
    _refused(ex, lambda: ex.arg_dict.update(fc_bias=np.zeros(H), nope=np.zeros(1)), "'nope'")
    ex.arg_dict.update({"fc_bias": np.zeros(H)})
    assert not ex.arg_dict["fc_bias"].any() and ex.arg_dict["fc_bias"].dtype == np.float32


def test_the_views_are_dicts_and_survive_copies():
    ex = _executor("cpu")
    assert isinstance(ex.arg_dict, dict) and isinstance(ex.grad_dict, ArgDict)
    assert sym.clip_global_norm(ex.grad_dict, 1.0) == 0.0  # dict-taking helpers accept them
    for other in (pickle.loads(pickle.dumps(ex.arg_dict)), copy.deepcopy(ex.arg_dict)):
        assert type(other) is ArgDict and list(other) == list(ex.arg_dict)
        np.testing.assert_array_equal(other["fc_weight"], ex.arg_dict["fc_weight"])
        with pytest.raises(BindError):
            del other["fc_weight"]
    assert type(ex.arg_dict.copy()) is dict


def test_bind_args_grad_adopts_the_callers_array_and_still_checks_later_assignments():
    ex0 = _executor("cpu")
    g = np.zeros((H, I), np.float32)
    ex = ex0.symbol.bind(backend="cpu", args=dict(ex0.arg_dict), args_grad={"fc_weight": g})
    assert ex.grad_dict["fc_weight"] is g
    ex.forward(is_train=True)
    ex.backward()
    assert g.any()
    _refused(ex, _assign(ex.grad_dict, "fc_weight", np.zeros((I, H), np.float32)), "(5, 4)")
    with pytest.raises(BindError, match="C-contiguous"):
        ex.grad_dict.adopt("fc_weight", np.zeros((I, H), np.float32).T)


def _changed_in_place(a: np.ndarray, how: str) -> None:
    if how == "shape":
        a.shape = a.shape[::-1]  # the same bytes read as the transpose's shape
    elif how == "dtype":
        a.dtype = np.int32  # the same bytes read as integers
    else:
        with warnings.catch_warnings():  # setting strides is deprecated, not yet gone
            warnings.simplefilter("ignore", DeprecationWarning)
            a.strides = (a.itemsize, a.itemsize * a.shape[0])  # read column-major


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["shape", "dtype", "strides"])
def test_an_argument_changed_in_place_is_refused_until_it_is_set_back(backend, how):
    """`a.shape = ...` keeps the array object and its memory: the engine, which reads the
    bound memory in the bound layout, would give numbers for the old shape silently."""
    ex = _executor(backend)
    want = [o.copy() for o in ex.forward()]
    w = ex.arg_dict["fc_weight"]
    shape, dtype, strides = w.shape, w.dtype, w.strides
    _changed_in_place(w, how)
    message = _refused(ex, ex.forward, "forward: arg_dict['fc_weight'] is now",
                       "bound with (4, 5) float32", "changed in place")
    assert _refused(ex, lambda: ex.forward(is_train=True), "fc_weight") == message
    w.shape, w.dtype = shape, dtype
    if how == "strides":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            w.strides = strides
    for a, b in zip(ex.forward(), want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gradient_or_argument_changed_in_place_refuses_backward_and_keeps_the_gradients(
        backend):
    ex = _executor(backend, grad_req="add")
    ex.forward(is_train=True)
    ex.backward()
    for d, name in (("grad_dict", "fc_weight"), ("arg_dict", "data")):
        a = getattr(ex, d)[name]
        shape = a.shape
        a.shape = shape[::-1]
        _refused(ex, ex.backward, f"backward: {d}[{name!r}] is now",
                 f"bound with {fmt_shape(shape)} float32")
        a.shape = shape
    before = ex.grad_dict["fc_weight"].copy()
    ex.backward()  # 'add': once more, as in MXNet
    np.testing.assert_allclose(ex.grad_dict["fc_weight"], 2 * before, rtol=1e-6, atol=1e-6)
