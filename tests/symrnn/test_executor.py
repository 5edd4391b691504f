"""The reference executor: numbers against numpy, grad_req, dropout seeds, bind, layouts."""

import numpy as np
import pytest

import symrnn as sym

T, N, I, H, C = 3, 2, 4, 5, 3


def _model():
    data = sym.Variable("data")
    label = sym.Variable("label", dtype="int32")
    h = sym.tanh(sym.FullyConnected(data, num_hidden=H, name="fc1"), name="act")
    logits = sym.FullyConnected(h, num_hidden=C, name="fc2")
    return sym.softmax_cross_entropy(logits, label, name="loss")


def _values(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "data": rng.standard_normal((T, N, I)),
        "fc1_weight": rng.standard_normal((H, I)) * 0.5,
        "fc1_bias": rng.standard_normal(H) * 0.1,
        "fc2_weight": rng.standard_normal((C, H)) * 0.5,
        "fc2_bias": rng.standard_normal(C) * 0.1,
        "label": rng.integers(0, C, (T, N)).astype("int32"),
    }


def _numpy_model(v):
    """Loss and gradients of the model, written out by hand in float64."""
    x, w1, b1, w2, b2 = (v[k].astype("float64") for k in
                         ("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"))
    h = np.tanh(x @ w1.T + b1)
    z = h @ w2.T + b2
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    onehot = np.eye(C)[v["label"]]
    loss = -(np.log(p) * onehot).sum()
    dz = p - onehot
    dh = dz @ w2
    da = dh * (1 - h**2)
    grads = {
        "fc2_weight": dz.reshape(-1, C).T @ h.reshape(-1, H), "fc2_bias": dz.sum((0, 1)),
        "fc1_weight": da.reshape(-1, H).T @ x.reshape(-1, I), "fc1_bias": da.sum((0, 1)),
        "data": da @ w1,
    }
    return loss, grads


def _bound(dtype, grad_req="write", **kw):
    ex = _model().simple_bind(backend="reference", dtype=dtype, grad_req=grad_req,
                              data=(T, N, I), **kw)
    ex.copy_params_from({k: v.astype(ex.arg_dict[k].dtype) for k, v in _values().items()})
    return ex


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_forward_backward_match_numpy(dtype, tol):
    ex = _bound(dtype)
    assert list(ex.arg_dict) == _model().list_arguments()
    assert all(ex.arg_dict[k].dtype == dtype for k in ex.arg_dict if k != "label")
    assert ex.arg_dict["label"].dtype == np.int32
    want_loss, want_grads = _numpy_model(_values())
    (loss,) = ex.forward(is_train=True)
    assert loss.shape == () and loss.dtype == dtype
    np.testing.assert_allclose(loss, want_loss, rtol=tol)
    assert list(ex.output_dict) == ["loss_output"]
    assert ex.output_dict["loss_output"] is ex.outputs[0]
    ex.backward()
    assert set(ex.grad_dict) == set(want_grads)  # int label: no gradient
    for k, g in want_grads.items():
        assert ex.grad_dict[k].dtype == dtype
        np.testing.assert_allclose(ex.grad_dict[k], g, rtol=tol, atol=tol)


def test_backward_without_out_grads_uses_ones_for_a_scalar_head():
    a, b = _bound("float64"), _bound("float64")
    a.forward(is_train=True)
    a.backward()
    b.forward(is_train=True)
    b.backward(np.array(2.0))
    for k in a.grad_dict:
        np.testing.assert_allclose(b.grad_dict[k], 2 * a.grad_dict[k], rtol=1e-14)
    b.backward([np.array(1.0)])
    for k in a.grad_dict:
        np.testing.assert_array_equal(b.grad_dict[k], a.grad_dict[k])


# ---- grad_req --------------------------------------------------------------------------------

def _run_twice(ex):
    ex.forward(is_train=True)
    ex.backward()
    first = {k: v.copy() for k, v in ex.grad_dict.items()}
    ex.forward(is_train=True)
    ex.backward()
    return first


def test_grad_req_write_overwrites():
    ex = _bound("float64", "write")
    first = _run_twice(ex)
    for k in first:
        np.testing.assert_array_equal(ex.grad_dict[k], first[k])


def test_grad_req_add_accumulates():
    ex = _bound("float64", "add")
    first = _run_twice(ex)
    for k in first:
        assert np.abs(first[k]).max() > 0
        np.testing.assert_allclose(ex.grad_dict[k], 2 * first[k], rtol=1e-14)


def test_grad_req_null_has_no_gradients():
    ex = _bound("float64", "null")
    assert ex.grad_dict == {}
    ex.forward(is_train=True)
    ex.backward()
    assert ex.grad_dict == {}


@pytest.mark.parametrize("form", ["dict", "list"])
def test_grad_req_per_argument(form):
    reqs = {"data": "null", "fc1_weight": "add", "fc1_bias": "write",
            "fc2_weight": "write", "fc2_bias": "null", "label": "null"}
    req = reqs if form == "dict" else [reqs[n] for n in _model().list_arguments()]
    ex = _bound("float64", req)
    assert set(ex.grad_dict) == {"fc1_weight", "fc1_bias", "fc2_weight"}
    assert ex.grad_req == reqs
    first = _run_twice(ex)
    _, want = _numpy_model(_values())
    np.testing.assert_allclose(ex.grad_dict["fc1_weight"], 2 * want["fc1_weight"], rtol=1e-12)
    np.testing.assert_array_equal(ex.grad_dict["fc1_bias"], first["fc1_bias"])
    np.testing.assert_allclose(ex.grad_dict["fc2_weight"], want["fc2_weight"], rtol=1e-12)


def test_grad_req_dict_leaves_unnamed_arguments_null():
    ex = _bound("float64", {"fc2_bias": "write"})
    assert list(ex.grad_dict) == ["fc2_bias"]


# ---- dropout and seeds -----------------------------------------------------------------------

def _dropout_ex(seed=0):
    x = sym.Variable("x")
    y = sym.Dropout(x, p=0.5, name="drop")
    ex = y.simple_bind(backend="reference", seed=seed, x=(8, 64))
    ex.arg_dict["x"][...] = 1.0
    return ex


def test_inference_is_deterministic_identity():
    ex = _dropout_ex()
    a = ex.forward(is_train=False)[0].copy()
    b = ex.forward(is_train=False)[0].copy()
    np.testing.assert_array_equal(a, 1.0)
    np.testing.assert_array_equal(a, b)


def test_training_with_an_explicit_seed_is_reproducible():
    ex = _dropout_ex()
    a = ex.forward(is_train=True, seed=7)[0].copy()
    b = ex.forward(is_train=True, seed=7)[0].copy()
    c = ex.forward(is_train=True, seed=8)[0].copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a)) == {0.0, 2.0}  # inverted dropout, p = 0.5
    assert 0.3 < (a == 0).mean() < 0.7
    assert np.array_equal(_dropout_ex().forward(is_train=True, seed=7)[0], a)


def test_training_without_a_seed_draws_fresh_masks():
    ex, twin, other = _dropout_ex(seed=5), _dropout_ex(seed=5), _dropout_ex(seed=6)
    seq = [ex.forward(is_train=True)[0].copy() for _ in range(3)]
    assert not np.array_equal(seq[0], seq[1]) and not np.array_equal(seq[1], seq[2])
    for want in seq:
        np.testing.assert_array_equal(twin.forward(is_train=True)[0], want)
    assert not np.array_equal(other.forward(is_train=True)[0], seq[0])


def test_dropout_backward_uses_the_forward_mask():
    ex = _dropout_ex()
    y = ex.forward(is_train=True, seed=3)[0].copy()
    ex.backward(np.ones((8, 64), "float32"))
    np.testing.assert_array_equal(ex.grad_dict["x"], y)  # x = 1, so y is the scaled mask


# ---- copy_params_from and bind ----------------------------------------------------------------

def test_copy_params_from_copies_values():
    ex = _bound("float64")
    w = np.full((H, I), 0.25)
    ex.copy_params_from({"fc1_weight": w, "extra": w}, allow_extra_params=True)
    w[...] = 9.0
    np.testing.assert_array_equal(ex.arg_dict["fc1_weight"], 0.25)
    ex.copy_params_from({"label": np.zeros((T, N), "int64")})
    assert ex.arg_dict["label"].dtype == np.int32 and not ex.arg_dict["label"].any()


@pytest.mark.parametrize("form", ["dict", "list"])
def test_bind_with_arrays_and_adopted_grads(form):
    vals = {k: (v if k == "label" else v.astype("float32")) for k, v in _values().items()}
    grads = {k: np.zeros_like(vals[k]) for k in ("fc1_weight", "fc2_bias")}
    args = vals if form == "dict" else [vals[n] for n in _model().list_arguments()]
    req = {"fc1_weight": "write", "fc2_bias": "add"}
    ex = _model().bind(backend="reference", args=args, args_grad=grads, grad_req=req)
    assert ex.grad_dict["fc1_weight"] is grads["fc1_weight"]
    assert ex.grad_dict["fc2_bias"] is grads["fc2_bias"]
    for k, v in vals.items():
        np.testing.assert_array_equal(ex.arg_dict[k], v)
        assert ex.arg_dict[k].dtype == v.dtype
    want_loss, want = _numpy_model(vals)
    np.testing.assert_allclose(ex.forward(is_train=True)[0], want_loss, rtol=1e-5)
    ex.backward()
    ex.forward(is_train=True)
    ex.backward()
    np.testing.assert_allclose(grads["fc1_weight"], want["fc1_weight"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["fc2_bias"], 2 * want["fc2_bias"], rtol=1e-5, atol=1e-6)


def test_bind_infers_float64_from_the_arrays():
    ex = _model().bind(backend="reference", args=_values())
    assert ex.arg_dict["fc1_weight"].dtype == np.float64
    np.testing.assert_allclose(ex.forward()[0], _numpy_model(_values())[0], rtol=1e-12)


def test_simple_bind_float64():
    ex = _model().simple_bind(backend="reference", dtype="float64", data=(T, N, I))
    assert {str(v.dtype) for k, v in ex.arg_dict.items() if k != "label"} == {"float64"}
    assert {str(v.dtype) for v in ex.grad_dict.values()} == {"float64"}
    assert ex.forward()[0].dtype == np.float64


# ---- layouts ----------------------------------------------------------------------------------

def _layouts(a):
    """The same values as `a`, laid out in memory in other ways."""
    t = np.ascontiguousarray(np.moveaxis(a, 0, -1))  # stored transposed
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return {"fortran": np.asfortranarray(a), "transposed_view": np.moveaxis(t, -1, 0),
            "strided_slice": wide[..., ::2], "reversed": a[::-1].copy()[::-1]}


@pytest.mark.parametrize("layout", ["fortran", "transposed_view", "strided_slice", "reversed"])
def test_non_contiguous_inputs_give_identical_results(layout):
    vals = {k: (v if k == "label" else v.astype("float32")) for k, v in _values().items()}
    ref = _model().bind(backend="reference", args=vals, grad_req="write")
    ref.forward(is_train=True)
    ref.backward()
    odd = {k: _layouts(v)[layout] if v.ndim > 1 else v for k, v in vals.items()}
    assert not odd["data"].flags.c_contiguous
    np.testing.assert_array_equal(odd["data"], vals["data"])
    by_bind = _model().bind(backend="reference", args=odd)
    by_forward = _bound("float32")
    by_forward.arg_dict["data"][...] = 0
    for ex in (by_bind, by_forward):
        out = ex.forward(is_train=True, **{k: odd[k] for k in ("data", "fc1_weight", "label")})
        np.testing.assert_array_equal(out[0], ref.outputs[0])
        ex.backward()
        for k in ref.grad_dict:
            np.testing.assert_array_equal(ex.grad_dict[k], ref.grad_dict[k])


def test_non_contiguous_out_grads_give_identical_results():
    x = sym.Variable("x")
    y = sym.tanh(x, name="t") * 3
    ex = y.simple_bind(backend="reference", dtype="float64", x=(4, 5))
    xv = np.linspace(-1, 1, 20).reshape(4, 5)
    g = np.arange(20.0).reshape(5, 4).T
    ex.forward(is_train=True, x=xv)
    ex.backward(g)
    np.testing.assert_allclose(ex.grad_dict["x"], 3 * g * (1 - np.tanh(xv) ** 2), rtol=1e-14)
    got = ex.grad_dict["x"].copy()
    ex.backward(np.ascontiguousarray(g))
    np.testing.assert_array_equal(ex.grad_dict["x"], got)
