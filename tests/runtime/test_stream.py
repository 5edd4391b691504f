"""Streaming inference (runtime.stream): chunk after chunk with the final states carried
into the initial states equals the whole sequence at once."""
import numpy as np
import pytest

import symrnn as sym
from runtime.errors import BindError, ShapeError

T, N, I, H = 6, 2, 5, 7


def stream_symbol(typ: str, layers: int, t: int):
    rnn = sym.RNNFactory(num_hidden=[H] * layers, data_dim=I, typ=typ, name=typ)
    got = rnn.step(sym.Variable("data"), seq_len=t, ret_typ="all")
    out, last = got[0][-1], list(got[2 if typ == "lstm" else 1])
    if typ == "lstm":
        last += list(got[3])
    return sym.Group([out, *last])


def carried_pairs(ex, typ: str, layers: int, t: int) -> dict:
    kinds = ("h", "c") if typ == "lstm" else ("h",)
    return {f"{typ}_l{l}_init_{k}": f"{typ}_l{l}_t{t - 1}_{k}_output"
            for l in range(layers) for k in kinds}


def bound(typ, layers, t, backend, params=None):
    ex = stream_symbol(typ, layers, t).simple_bind(data=(t, N, I), backend=backend,
                                                  grad_req="null")
    if params is None:
        rng = np.random.default_rng(3)
        params = {n: rng.uniform(-0.5, 0.5, a.shape).astype(a.dtype)
                  for n, a in ex.arg_dict.items() if n != "data"}
    ex.copy_params_from(params)
    return ex, params


def streamed(ex, pairs, data, chunk):
    outs = []
    for start in range(0, len(data), chunk):
        ex.arg_dict["data"][...] = data[start:start + chunk]
        outs.append(ex.forward(is_train=False)[0].copy())
        ex.carry_states(pairs)
    return np.concatenate(outs), ex


@pytest.mark.parametrize("typ", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_chunks_equal_the_whole_sequence(typ, layers, chunk, backend):
    data = np.random.default_rng(1).standard_normal((T, N, I)).astype(np.float32)
    whole, params = bound(typ, layers, T, backend)
    want = whole.forward(is_train=False, data=data)
    ex, _ = bound(typ, layers, chunk, backend, params)
    got, ex = streamed(ex, carried_pairs(ex, typ, layers, chunk), data, chunk)
    np.testing.assert_allclose(got, want[0], rtol=0, atol=2e-6)
    finals = dict(zip(whole.output_names, want))
    for arg, out in carried_pairs(whole, typ, layers, T).items():
        np.testing.assert_allclose(ex.arg_dict[arg], finals[out], rtol=0, atol=2e-6)


def test_same_kernels_give_the_same_bits():
    """Two chunks of the T=3 program against the T=3 program run on the second chunk with
    the first chunk's final states given as initial states by hand."""
    data = np.random.default_rng(2).standard_normal((6, N, I)).astype(np.float32)
    ex, params = bound("lstm", 2, 3, "cpu")
    pairs = carried_pairs(ex, "lstm", 2, 3)
    got, _ = streamed(ex, pairs, data, 3)
    by_hand, _ = bound("lstm", 2, 3, "cpu", params)
    first = dict(zip(by_hand.output_names, by_hand.forward(data=data[:3])))
    second = by_hand.forward(data=data[3:], **{a: first[o].copy() for a, o in pairs.items()})
    assert np.array_equal(got[3:], second[0])


def test_the_arrays_stay_bound():
    ex, _ = bound("gru", 1, 1, "cpu")
    before = {n: a for n, a in ex.arg_dict.items()}
    ex.forward(is_train=False)
    ex.carry_states({"gru_l0_init_h": "gru_l0_t0_h_output"})
    assert all(ex.arg_dict[n] is a for n, a in before.items())
    assert np.array_equal(ex.arg_dict["gru_l0_init_h"], ex.outputs[1])


@pytest.mark.parametrize("pairs, error, words", [
    ({"nope": "gru_l0_t0_h_output"}, BindError, "'nope' is not an argument"),
    ({"gru_l0_init_h": "nope"}, BindError, "'nope' is not an output"),
    ({"data": "gru_l0_t0_h_output"}, ShapeError, "argument 'data' has (1, 2, 5)"),
    ([("gru_l0_init_h", "gru_l0_t0_h_output")] * 2, BindError, "fed twice"),
    ("gru_l0_init_h", BindError, "'pairs' must be a dict"),
])
def test_refused_pairs_leave_the_arguments(pairs, error, words):
    ex, _ = bound("gru", 1, 1, "cpu")
    ex.forward(is_train=False)
    before = {n: a.copy() for n, a in ex.arg_dict.items()}
    with pytest.raises(error) as info:
        ex.carry_states(pairs)
    assert words in str(info.value)
    assert all(np.array_equal(ex.arg_dict[n], a) for n, a in before.items())


def test_before_any_forward_is_refused():
    ex, _ = bound("gru", 1, 1, "cpu")
    with pytest.raises(BindError, match="call forward first"):
        ex.carry_states({"gru_l0_init_h": "gru_l0_t0_h_output"})


def test_a_state_retyped_in_place_is_refused_and_left_as_it_was():
    ex, _ = bound("gru", 1, 1, "cpu")
    ex.forward(is_train=False)
    state = ex.arg_dict["gru_l0_init_h"]
    state.dtype = np.int32  # the same bytes, read as integers
    before = state.copy()
    with pytest.raises(BindError, match=r"carry_states: arg_dict\['gru_l0_init_h'\] is now "
                                        r"\(2, 7\) int32 but the executor was bound with "
                                        r"\(2, 7\) float32"):
        ex.carry_states({"gru_l0_init_h": "gru_l0_t0_h_output"})
    np.testing.assert_array_equal(state, before)
    state.dtype = np.float32
    ex.carry_states({"gru_l0_init_h": "gru_l0_t0_h_output"})
    assert np.array_equal(state, ex.outputs[1])
