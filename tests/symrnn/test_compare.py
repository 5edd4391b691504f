"""`symrnn.compare`: fused, unrolled and reference agree; the fused counts are right."""
import io

import pytest

import symrnn as sym
from runtime.errors import ConfigError

BACKEND = "cpu"
T, N, IN = 4, 3, 5


def _stack(layers=(6, 4), zoneout=0.1):
    rnn = sym.RNNFactory(list(layers), data_dim=IN, typ="lstm", zoneout=zoneout, name="cmp")
    all_h, _, last_h, last_c = rnn.step(sym.Variable("data"), seq_len=T)
    return sym.Group([all_h[-1], *last_h, *last_c])


@pytest.fixture(scope="module")
def result():
    out = io.StringIO()
    res = sym.compare(_stack(), backend=BACKEND, seed=7, repeat=1, file=out, data=(T, N, IN))
    res["printed"] = out.getvalue()
    return res


def test_fused_unrolled_and_reference_agree(result):
    assert set(result["columns"]) == {"fused", "unrolled", "reference"}
    diffs = result["diffs"]
    names = set(diffs["fused"])
    assert "out cmp_l1_out_output" in names and "grad cmp_l0_i2h_weight" in names
    assert len([k for k in names if k.startswith("out ")]) == 5  # output + 2 h + 2 c
    assert all(v == 0 for v in diffs["fused"].values())
    assert result["max_diff"] < 1e-4 and result["max_rel_diff"] < 1e-5


def test_fused_lstm_launch_counts(result):
    fused, unrolled = result["columns"]["fused"], result["columns"]["unrolled"]
    layers = 2
    assert fused["launches_forward"] == layers * T  # one elementwise kernel per layer per step
    assert fused["gemms_forward"] == layers * (T + 1)  # one input GEMM + T recurrent ones
    assert unrolled["launches_forward"] > fused["launches_forward"]
    assert fused["arena_bytes"] <= fused["unplanned_bytes"]
    assert result["columns"]["reference"]["kernels"] is None
    assert all(c["forward_ms"] > 0 and c["forward_backward_ms"] > 0
               for c in result["columns"].values())


def test_one_input_projection_gemm_per_layer():
    ex = _stack().simple_bind(backend=BACKEND, data=(T, N, IN))
    for layer in range(2):
        weight = f"arg:cmp_l{layer}_i2h_weight"
        gemms = [s for s in ex.program.steps_in("forward") if s.kind == "gemm"
                 and any(v.buffer == weight for v in s.inputs)]
        assert len(gemms) == 1
        assert gemms[0].outputs[0].rows == T * N  # all time steps in one product


def test_table_is_printed_once_with_every_row(result):
    text = result["printed"]
    assert text.strip() == result["table"].strip()
    for label in ["kernels", "launches / forward", "launches / backward", "GEMMs / forward",
                  "arena bytes", "unplanned bytes", "ms / forward", "ms / forward+backward",
                  "max|diff| grad cmp_l1_h2h_bias"]:
        assert label in text
    assert text.splitlines()[0].split() == ["fused", "unrolled", "reference"]


def test_compare_without_reference_and_bad_repeat():
    res = sym.compare(_stack((3,), 0.0), backend=BACKEND, reference=False, repeat=1, quiet=True,
                      data=(T, N, IN))
    assert set(res["columns"]) == {"fused", "unrolled"}
    with pytest.raises(ConfigError, match="repeat"):
        sym.compare(_stack((3,), 0.0), repeat=0, data=(T, N, IN))
