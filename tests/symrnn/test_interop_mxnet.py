"""from_mxnet_params: `.params` files written by MXNet 1.9.1 (tests/data/mxnet, made by
make_params.py there) load, and symrnn reproduces the outputs MXNet recorded next to them;
damaged files and misfit weights are refused by name, the parameters unchanged."""
import os
import struct

import numpy as np
import pytest

import symrnn as sym
from symrnn.interop import InteropError, from_mxnet_params, read_mxnet_params

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                    "mxnet")
# case: (typ, sizes, bidirectional, factory name); the file's names are mx.rnn's
CASES = {
    "lstm_cells": ("lstm", [8, 6], False, "lstm"),
    "gru_cells_bi": ("gru", [5], True, "gru"),
    "fused_lstm_bi": ("lstm", [5, 5], True, "lstm"),
    "fused_rnn_relu": ("rnn_relu", [4], False, "rnn"),
}


def path(case, ext=".params"):
    return os.path.join(DATA, case + ext)


def executor(case, backend="reference"):
    typ, sizes, bi, name = CASES[case]
    T, N, I = np.load(path(case, ".npz"))["data"].shape
    outs = sym.RNNFactory(sizes, data_dim=I, typ=typ, bidirectional=bi, name=name).step(
        sym.Variable("data"), seq_len=T)
    if typ == "lstm":
        all_h, _, last_h, last_c = outs
        # MXNet's order: per cell [h, c] for stacked cells, [h..., c...] when fused
        heads = (last_h + last_c if case.startswith("fused") else
                 [s for pair in zip(last_h, last_c) for s in pair])
    else:
        all_h, heads = outs
    return sym.Group([all_h[-1]] + heads).simple_bind(backend=backend, grad_req="null",
                                                      data=(T, N, I))


def test_data_is_small():
    total = sum(os.path.getsize(os.path.join(DATA, f)) for f in os.listdir(DATA))
    assert total < 100_000


@pytest.mark.parametrize("case", list(CASES))
def test_reproduces_mxnet(case):
    rec = np.load(path(case, ".npz"))
    ex = executor(case, backend="cpu" if case == "lstm_cells" else "reference")
    loaded = from_mxnet_params(path(case), ex)
    assert sorted(loaded) == sorted(n for n in ex.arg_dict if n.endswith(("weight", "bias")))
    outs = ex.forward(data=rec["data"])
    np.testing.assert_allclose(outs[0], rec["out"], rtol=1e-5, atol=1e-6)
    states = [rec[k] for k in sorted(rec.files) if k.startswith("state")]
    if case.startswith("fused"):  # (layers * directions, N, H) per state kind
        states = [s for kind in states for s in kind]
    assert len(states) == len(outs) - 1
    for got, want in zip(outs[1:], states):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_reader_gives_names_without_prefix():
    arrays = read_mxnet_params(path("lstm_cells"))
    assert sorted(arrays) == sorted(f"lstm_l{k}_{p}" for k in range(2) for p in
                                    ("i2h_weight", "i2h_bias", "h2h_weight", "h2h_bias"))
    assert arrays["lstm_l0_i2h_weight"].shape == (32, 4)
    assert arrays["lstm_l0_i2h_weight"].dtype == np.float32


def test_reader_handles_every_dtype_and_rank():
    """A file in the documented layout with several dtypes and ranks reads back exactly."""
    arrays = {"a": np.arange(6, dtype=np.float64).reshape(2, 3),
              "b": np.arange(4, dtype=np.int32), "c": np.ones((2, 1, 2), np.float16)}
    flags = {np.float64: 1, np.int32: 4, np.float16: 2}
    blob = struct.pack("<QQQ", 0x112, 0, len(arrays))
    for a in arrays.values():
        blob += struct.pack("<Iii", 0xF993FAC9, 0, a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape)
        blob += struct.pack("<iii", 1, 0, flags[a.dtype.type]) + a.tobytes()
    blob += struct.pack("<Q", len(arrays))
    for n in arrays:
        blob += struct.pack("<Q", len(n) + 4) + f"arg:{n}".encode()
    got = read_mxnet_params(blob)
    for n, a in arrays.items():
        assert got[n].dtype == a.dtype
        np.testing.assert_array_equal(got[n], a)


def loaded_executor():
    ex = executor("lstm_cells")
    rng = np.random.default_rng(4)
    for a in ex.arg_dict.values():
        a[...] = rng.normal(size=a.shape)
    return ex, {n: a.copy() for n, a in ex.arg_dict.items()}


def assert_unchanged(ex, before):
    for n, a in ex.arg_dict.items():
        np.testing.assert_array_equal(a, before[n])


@pytest.mark.parametrize("keep", [10, 40, 200, -30, -3])
def test_truncated_file_is_refused(keep, tmp_path):
    with open(path("lstm_cells"), "rb") as f:
        blob = f.read()
    cut = tmp_path / "cut.params"
    cut.write_bytes(blob[:keep])
    ex, before = loaded_executor()
    with pytest.raises(InteropError, match="is truncated: .* needs \\d+ bytes at offset"):
        from_mxnet_params(str(cut), ex)
    assert_unchanged(ex, before)


def test_not_a_params_file_is_refused(tmp_path):
    bad = tmp_path / "x.params"
    bad.write_bytes(b"PK\x03\x04" + bytes(40))
    ex, before = loaded_executor()
    with pytest.raises(InteropError, match="not an MXNet .params file"):
        from_mxnet_params(str(bad), ex)
    with pytest.raises(InteropError, match="cannot read"):
        from_mxnet_params(str(tmp_path / "missing.params"), ex)
    assert_unchanged(ex, before)


def test_misfit_weights_are_refused():
    ex, before = loaded_executor()
    arrays = read_mxnet_params(path("lstm_cells"))
    with pytest.raises(InteropError, match="'dense_weight' is not an argument"):
        from_mxnet_params({**arrays, "dense_weight": np.zeros((2, 2))}, ex)
    arrays["lstm_l1_h2h_weight"] = np.zeros((24, 7), np.float32)
    with pytest.raises(sym.ShapeError, match="lstm_l1_h2h_weight"):
        from_mxnet_params(arrays, ex)
    assert_unchanged(ex, before)


def test_fused_vector_of_wrong_size_is_refused():
    ex = executor("fused_lstm_bi")
    before = {n: a.copy() for n, a in ex.arg_dict.items()}
    vector = read_mxnet_params(path("fused_lstm_bi"))["lstm_parameters"]
    with pytest.raises(InteropError, match=f"holds {vector.size - 5} values but .* need "
                                           f"{vector.size}"):
        from_mxnet_params({"lstm_parameters": vector[:-5]}, ex)
    assert_unchanged(ex, before)


def test_extra_names_skipped_when_allowed():
    ex, _ = loaded_executor()
    arrays = read_mxnet_params(path("lstm_cells"))
    loaded = from_mxnet_params({**arrays, "softmax_weight": np.zeros(3)}, ex,
                               allow_extra=True)
    assert "softmax_weight" not in loaded
    np.testing.assert_array_equal(ex.arg_dict["lstm_l0_h2h_bias"], arrays["lstm_l0_h2h_bias"])
