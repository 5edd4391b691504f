"""User errors at bind, forward and backward (DESIGN.md section 7).

Each test checks the exception type and that the message names the argument and shows both the
expected and the given value; after every refused call on an executor, its arguments and
gradients must be exactly as they were.
"""

import re

import numpy as np
import pytest

import symrnn as sym
from symrnn import BindError, ConfigError, ShapeError, SymRNNError

T, N, I, H, C = 5, 3, 4, 6, 3


def _model(weight=None):
    data = sym.Variable("data")
    label = sym.Variable("label", dtype="int32")
    h = sym.tanh(sym.FullyConnected(data, weight=weight, num_hidden=H, name="fc1"), name="act")
    logits = sym.FullyConnected(h, num_hidden=C, name="fc2")
    return sym.softmax_cross_entropy(logits, label, name="loss")


def _executor(dtype="float32"):
    """A bound model after one training step, so that gradients are not all zero."""
    ex = _model().simple_bind(backend="reference", grad_req="add", dtype=dtype, data=(T, N, I))
    rng = np.random.default_rng(0)
    for k, v in ex.arg_dict.items():
        v[...] = rng.integers(0, C, v.shape) if k == "label" else rng.standard_normal(v.shape)
    ex.forward(is_train=True)
    ex.backward()
    return ex


def _refused(ex, call, exc, *needles):
    """Runs `call`, which must raise `exc` with every needle in its message, then checks that
    every array of `ex` is the same object with the same dtype and contents as before."""
    before = {d: {k: (v, v.dtype, v.copy()) for k, v in getattr(ex, d).items()}
              for d in ("arg_dict", "grad_dict")}
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    assert isinstance(info.value, SymRNNError)
    for d, arrays in before.items():
        now = getattr(ex, d)
        assert list(now) == list(arrays), d
        for k, (obj, dtype, values) in arrays.items():
            assert now[k] is obj and now[k].dtype == dtype, (d, k)
            np.testing.assert_array_equal(now[k], values, err_msg=f"{d}[{k!r}] changed")
    return msg


# ---- shapes at bind ----------------------------------------------------------------------------

def test_simple_bind_data_shape_conflicts_with_a_declared_weight():
    model = _model(weight=sym.Variable("w1", shape=(H, I)))
    with pytest.raises(ShapeError) as info:
        model.simple_bind(backend="reference", data=(T, N, 7))
    msg = str(info.value)
    assert "'data'" in msg and "(5, 3, 7)" in msg and f"({H}, {I})" in msg and f"({H}, 7)" in msg


def test_simple_bind_data_shape_conflicts_with_a_declared_data_shape():
    data = sym.Variable("data", shape=(T, N, I))
    model = sym.FullyConnected(data, num_hidden=H, name="fc")
    with pytest.raises(ShapeError, match=r"'data' has shape \(5, 3, 7\) but the graph expects "
                                         r"\(5, 3, 4\)"):
        model.simple_bind(backend="reference", data=(T, N, 7))


def test_simple_bind_weight_shape_conflicts_with_the_data():
    with pytest.raises(ShapeError, match=r"'fc1_weight' has shape \(6, 5\) but the graph "
                                         r"expects \(6, 4\)"):
        _model().simple_bind(backend="reference", data=(T, N, I), fc1_weight=(H, 5))


def test_bind_array_shape_conflicts_with_the_data():
    ex = _executor()
    args = {k: v.copy() for k, v in ex.arg_dict.items()}
    args["fc2_weight"] = np.zeros((C, H + 1), "float32")
    with pytest.raises(ShapeError, match=r"'fc2_weight' has shape \(3, 7\).*\(3, 6\)"):
        _model().bind(backend="reference", args=args)


@pytest.mark.parametrize("shape", [(0, N, I), (T, -1, I), (T, N, 0)])
def test_simple_bind_zero_or_negative_dims(shape):
    with pytest.raises(ShapeError) as info:
        _model().simple_bind(backend="reference", data=shape)
    msg = str(info.value)
    assert "'data'" in msg and str(shape) in msg and "positive" in msg


def test_variable_with_a_negative_declared_dim():
    with pytest.raises(ConfigError, match=r"'shape'.*\(3, -1\)"):
        sym.Variable("data", shape=(3, -1))


# ---- shapes, dtypes and names at forward ----------------------------------------------------------

def test_forward_wrong_data_shape():
    ex = _executor()
    _refused(ex, lambda: ex.forward(data=np.zeros((T, N, 7), "float32")), ShapeError,
             "forward: 'data' has shape (5, 3, 7) but the executor was bound with (5, 3, 4)")


def test_forward_one_bad_input_among_good_ones_changes_nothing():
    ex = _executor()
    good = np.ones((T, N, I), "float32")
    _refused(ex, lambda: ex.forward(data=good, label=np.zeros((T, N + 1), "int32")),
             ShapeError, "'label'", "(5, 4)", "(5, 3)")


@pytest.mark.parametrize("value, given, want", [
    (np.zeros((T, N, I), "float64"), "float64", "float32"),
    (np.zeros((T, N, I), "int64"), "int64", "float32"),
    (np.zeros((T, N, I), "float16"), "float16", "float32"),
    (np.zeros((T, N, I), bool), "bool", "float32"),
])
def test_forward_wrong_dtype(value, given, want):
    ex = _executor()
    _refused(ex, lambda: ex.forward(data=value), BindError, "'data'", given, want)


def test_forward_float32_into_a_float64_executor():
    ex = _executor("float64")
    _refused(ex, lambda: ex.forward(data=np.zeros((T, N, I), "float32")), BindError,
             "'data'", "float32", "float64")


def test_forward_a_python_list():
    ex = _executor()
    value = np.zeros((T, N, I)).tolist()
    _refused(ex, lambda: ex.forward(data=value), BindError, "'data'", "numpy array", "list")


def test_forward_non_integer_floats_into_an_int_argument():
    ex = _executor()
    _refused(ex, lambda: ex.forward(label=np.full((T, N), 0.5)), BindError, "'label'")


def test_forward_out_of_range_label_changes_nothing():
    ex = _executor()
    _refused(ex, lambda: ex.forward(label=np.full((T, N), C, "int32")), BindError, "label",
             str(C))


def test_forward_unknown_argument():
    ex = _executor()
    _refused(ex, lambda: ex.forward(dat=np.zeros((T, N, I), "float32")), BindError,
             "'dat'", "'data'", "'fc1_weight'")


def test_forward_check_finite_refuses_a_nan_parameter():
    ex = _executor()
    ex.arg_dict["fc1_weight"][1, 2] = np.nan
    _refused(ex, lambda: ex.forward(check_finite=True), BindError, "'fc1_weight'", "NaN")


def test_forward_check_finite_refuses_an_inf_input():
    ex = _executor()
    bad = np.zeros((T, N, I), "float32")
    bad[0, 0, 0] = np.inf
    _refused(ex, lambda: ex.forward(check_finite=True, data=bad), BindError, "'data'", "Inf")


# ---- names, backends and grad_req at bind ---------------------------------------------------------

def test_simple_bind_unknown_argument():
    with pytest.raises(SymRNNError) as info:
        _model().simple_bind(backend="reference", data=(T, N, I), dta=(1, 2))
    msg = str(info.value)
    assert "'dta'" in msg and "'data'" in msg and "not an argument" in msg


def test_bind_unknown_argument():
    args = {k: v.copy() for k, v in _executor().arg_dict.items()}
    args["fc3_weight"] = np.zeros((2, 2), "float32")
    with pytest.raises(SymRNNError) as info:
        _model().bind(backend="reference", args=args)
    assert "'fc3_weight'" in str(info.value) and "'fc2_weight'" in str(info.value)


def test_bind_unknown_argument_is_a_bind_error_named_bind():
    args = {k: v.copy() for k, v in _executor().arg_dict.items()}
    args["fc3_weight"] = np.zeros((2, 2), "float32")
    with pytest.raises(BindError, match=r"^bind: 'fc3_weight'"):
        _model().bind(backend="reference", args=args)


def test_bind_unknown_args_grad_name():
    args = {k: v.copy() for k, v in _executor().arg_dict.items()}
    with pytest.raises(BindError, match="'fc1_wieght'"):
        _model().bind(backend="reference", args=args,
                      args_grad={"fc1_wieght": np.zeros((H, I), "float32")})


def test_bind_missing_argument_and_wrong_list_length():
    args = {k: v.copy() for k, v in _executor().arg_dict.items()}
    del args["fc2_bias"]
    with pytest.raises(BindError, match="'fc2_bias'"):
        _model().bind(backend="reference", args=args)
    with pytest.raises(BindError, match=r"'args' has 5 arrays but the symbol has 6"):
        _model().bind(backend="reference", args=list(args.values()))


def test_bind_args_grad_checked():
    args = {k: v.copy() for k, v in _executor().arg_dict.items()}
    with pytest.raises(ShapeError, match=r"fc1_weight.*\(4, 6\).*\(6, 4\)"):
        _model().bind(backend="reference", args=args,
                      args_grad={"fc1_weight": np.zeros((I, H), "float32")})
    with pytest.raises(BindError, match=r"fc1_weight.*C-contiguous"):
        _model().bind(backend="reference", args=args,
                      args_grad={"fc1_weight": np.zeros((I, H), "float32").T})


def test_unknown_backend():
    with pytest.raises(BindError) as info:
        _model().simple_bind(backend="tpu", data=(T, N, I))
    msg = str(info.value)
    assert "'backend'" in msg and "'tpu'" in msg and "'reference'" in msg
    args = {k: v.copy() for k, v in _executor().arg_dict.items()}
    with pytest.raises(BindError, match="'tpu'"):
        _model().bind(backend="tpu", args=args)


@pytest.mark.parametrize("req, needles", [
    ("sum", ["'data'", "'sum'", "'write'"]),
    ({"fc1_weight": "accumulate"}, ["'fc1_weight'", "'accumulate'", "'add'"]),
    ({"fc9_weight": "write"}, ["'fc9_weight'", "'fc1_weight'"]),
    (["write", "add"], ["['write', 'add']", "list of 6"]),
    (None, ["'grad_req'", "None"]),
])
def test_bad_grad_req(req, needles):
    with pytest.raises(BindError) as info:
        _model().simple_bind(backend="reference", grad_req=req, data=(T, N, I))
    for needle in needles:
        assert needle in str(info.value)


# ---- backward --------------------------------------------------------------------------------------

def test_backward_before_forward():
    ex = _model().simple_bind(backend="reference", data=(T, N, I))
    _refused(ex, ex.backward, BindError, "backward", "forward")


def test_backward_without_out_grads_for_a_non_scalar_head():
    x = sym.Variable("x")
    ex = sym.tanh(x, name="t").simple_bind(backend="reference", grad_req="add", x=(2, 3))
    ex.forward(is_train=True, x=np.ones((2, 3), "float32"))
    ex.backward(np.ones((2, 3), "float32"))
    _refused(ex, ex.backward, BindError, "'t_output'", "(2, 3)", "out_grads")


@pytest.mark.parametrize("grads, exc, needles", [
    ([np.ones((2, 4), "float32")], ShapeError, ["t_output", "(2, 4)", "(2, 3)"]),
    (np.ones((3, 2), "float32"), ShapeError, ["t_output", "(3, 2)", "(2, 3)"]),
    ([np.ones((2, 3), "float64")], BindError, ["t_output", "float64", "float32"]),
    ([np.ones((2, 3), "float32")] * 2, BindError, ["2 arrays", "1 heads", "'t_output'"]),
    ([], BindError, ["0 arrays", "'t_output'"]),
    ({"t": np.ones((2, 3), "float32")}, BindError, ["'t_output'"]),
])
def test_backward_wrong_out_grads(grads, exc, needles):
    x = sym.Variable("x")
    ex = sym.tanh(x, name="t").simple_bind(backend="reference", grad_req="add", x=(2, 3))
    ex.forward(is_train=True, x=np.ones((2, 3), "float32"))
    ex.backward(np.ones((2, 3), "float32"))
    _refused(ex, lambda: ex.backward(grads), exc, *needles)


# ---- copy_params_from -----------------------------------------------------------------------------

@pytest.mark.parametrize("params, exc, needles", [
    ({"fc1_weight": np.zeros((I, H), "float32")}, ShapeError, ["'fc1_weight'", "(4, 6)",
                                                                "(6, 4)"]),
    ({"fc1_weight": np.zeros((H, I), "float64")}, BindError, ["'fc1_weight'", "float64"]),
    ({"fc1_bias": np.zeros(H, "float32"), "bias": np.zeros(H, "float32")}, BindError,
     ["'bias'", "'fc1_bias'"]),
])
def test_copy_params_from_refused(params, exc, needles):
    ex = _executor()
    _refused(ex, lambda: ex.copy_params_from(params), exc, *needles)


# ---- construction ----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1.0, 1.5, -0.1, True, "0.5"])
def test_dropout_rate_outside_unit_interval(p):
    with pytest.raises(ConfigError) as info:
        sym.Dropout(sym.Variable("x"), p=p)
    assert "'p'" in str(info.value) and "[0, 1)" in str(info.value) and repr(p) in str(info.value)


@pytest.mark.parametrize("p", [1, 2.0, -0.5])
def test_zoneout_rate_outside_unit_interval(p):
    with pytest.raises(ConfigError) as info:
        sym.zoneout(sym.Variable("a"), sym.Variable("b"), p=p)
    assert "'p'" in str(info.value) and "[0, 1)" in str(info.value) and repr(p) in str(info.value)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_fully_connected_non_positive_num_hidden(n):
    with pytest.raises(ConfigError) as info:
        sym.FullyConnected(sym.Variable("x"), num_hidden=n)
    msg = str(info.value)
    assert "'num_hidden'" in msg and "positive" in msg and repr(n) in msg


# ---- issue 19: raw errors that became SymRNNErrors ---------------------------------------------

@pytest.mark.parametrize("out_grads", [3, 2.5, "ones", object()])
def test_backward_with_a_non_array_out_grads(out_grads):
    ex = _executor()
    _refused(ex, lambda: ex.backward(out_grads), BindError, "backward: 'out_grads'",
             "an array, a list of arrays", type(out_grads).__name__)


@pytest.mark.parametrize("seed", ["abc", 1.5, [1], True])
def test_forward_with_a_bad_seed_leaves_the_data_alone(seed):
    ex = _executor()
    new = np.full((T, N, I), 7.0, "float32")
    _refused(ex, lambda: ex.forward(is_train=True, seed=seed, data=new), BindError,
             "forward: 'seed' must be an int", repr(seed))


def test_simple_bind_with_a_bad_seed():
    with pytest.raises(BindError, match="bind: 'seed' must be an int, given str 'abc'"):
        _model().simple_bind(backend="reference", seed="abc", data=(T, N, I))


def test_copy_params_from_a_list():
    ex = _executor()
    _refused(ex, lambda: ex.copy_params_from([np.zeros(3)]), BindError,
             "copy_params_from: expected a dict", "list")


@pytest.mark.parametrize("dtype", ["float16", "bogus", "bool", "complex64", np.float16, 3])
def test_variable_dtype_without_kernels_is_refused(dtype):
    with pytest.raises(ConfigError) as info:
        sym.Variable("x", dtype=dtype)
    msg = str(info.value)
    assert "Variable 'x'" in msg and "'dtype'" in msg and "'float32'" in msg
    assert repr(dtype) in msg


@pytest.mark.parametrize("dtype", ["float16", "bogus"])
def test_a_loaded_symbol_with_a_bad_dtype_is_refused(dtype):
    text = sym.tanh(sym.Variable("x")).tojson().replace('"float32"', f'"{dtype}"')
    with pytest.raises(SymRNNError, match=f"variable 'x'.*'dtype'.*{dtype}"):
        sym.load_json(text)


@pytest.mark.parametrize("dtype, want", [(np.float64, "float64"), (np.dtype("int64"), "int64")])
def test_variable_dtype_as_a_numpy_type(dtype, want):
    assert sym.Variable("x", dtype=dtype).tojson().count(f'"{want}"') == 1


@pytest.mark.parametrize("typ", [["lstm"], {"lstm": 1}, None, 3])
def test_factory_typ_that_is_not_a_string(typ):
    with pytest.raises(ConfigError, match=r"RNNFactory: 'typ' must be one of \('lstm'"):
        sym.RNNFactory(num_hidden=[H], data_dim=I, typ=typ)


@pytest.mark.parametrize("shape", [5, "abc", (2, 1.5), (2, None)])
def test_variable_shape_that_is_not_a_tuple_of_ints(shape):
    with pytest.raises(ConfigError, match=r"Variable 'x': 'shape' must be a tuple"):
        sym.Variable("x", shape=shape)


@pytest.mark.parametrize("call, needle", [
    (lambda x: x + "a", "add: the other operand"),
    (lambda x: x - None, "sub: the other operand"),
    (lambda x: [1] * x, "mul: the other operand"),
    (lambda x: x / 0, "cannot divide"),
    (lambda x: "2" / x, "rdiv: the other operand"),
])
def test_symbol_arithmetic_with_a_non_number(call, needle):
    with pytest.raises(ConfigError, match=needle):
        call(sym.Variable("x"))


def test_save_and_load_an_unusable_path(tmp_path):
    with pytest.raises(SymRNNError, match="save: cannot write"):
        sym.Variable("x").save(tmp_path / "no" / "such" / "x.json")
    with pytest.raises(SymRNNError, match="load: cannot read"):
        sym.load(tmp_path / "missing.json")


def test_init_params_with_a_bad_seed():
    ex = _executor()
    for seed in ("abc", -1):
        _refused(ex, lambda seed=seed: sym.init_params(ex, seed=seed), ConfigError,
                 "init_params: 'seed'", repr(seed))


@pytest.mark.parametrize("call, needle", [
    (lambda x: sym.slice_axis(x, axis="a", begin=0, end=2), "slice_axis: 'axis' must be an int"),
    (lambda x: sym.concat(x, x, dim="1"), "concat: 'dim' must be an int"),
    (lambda x: sym.reshape(x, shape=24), "reshape: 'shape' must be a tuple of ints"),
    (lambda x: sym.reshape(x, shape=(2, "a")), "reshape: 'shape[1]' must be an int"),
    (lambda x: sym.sum(x, axis="0"), "sum: 'axis' must be an int"),
    (lambda x: sym.take_step(x, "1"), "take_step: 'index' must be an int"),
    (lambda x: sym.dot(x, x, transpose_b="yes"), "dot: 'transpose_b' must be True or False"),
    (lambda x: sym.Dropout(x, p=0.1, mask=3), "Dropout: 'mask' must be a name"),
    (lambda x: sym.one_hot(x, depth=3, dtype="bogus"), "one_hot: 'dtype' must be one of"),
    (lambda x: sym.Group([x, 3]), "Group: 'symbols[1]' must be a Symbol"),
    (lambda x: sym.LSTMCell(3, prefix="q_")(x, 3), "'states' must be a list of 2 symbols"),
    (lambda x: sym.batchify(np.arange(100), "a"), "batchify: 'batch' must be a positive int"),
    (lambda x: sym.batchify(np.arange(100), 0), "batchify: 'batch' must be a positive int"),
    (lambda x: sym.CharLM(5, 4, [3]).sample({}, "abcde", temperature="a"), "'temperature'"),
])
def test_op_arguments_of_the_wrong_type(call, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        call(sym.Variable("x"))


@pytest.mark.parametrize("bad", [np.array([2**40, 1], np.int64), np.array([-1.0, 2.0**33])])
def test_integer_inputs_that_do_not_fit_their_dtype_are_refused(bad):
    """An int64 (or whole float) array copied into an int32 argument used to wrap silently
    (2**40 became 0); now it is refused naming the argument and the value, state unchanged."""
    import symrnn as sym

    idx = sym.Variable("idx", dtype="int32")
    net = sym.Embedding(idx, input_dim=4, output_dim=3, name="emb")
    ex = net.simple_bind(backend="reference", idx=(2,))
    before = ex.arg_dict["idx"].copy()
    with pytest.raises(BindError, match=r"'idx' holds .* outside the range of its dtype int32"):
        ex.forward(idx=bad)
    assert np.array_equal(ex.arg_dict["idx"], before)
    ex.forward(idx=np.array([3, 1], np.int64))  # values that fit are still accepted
