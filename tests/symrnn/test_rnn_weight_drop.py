"""DropConnect `weight_drop=p` (issue 12, AWD-LSTM): in training one mask per forward on each
layer's h2h_weight, drawn from the counter-based RNG and applied once (not per step), the
gradient masked the same way; identity at inference. Every backend against the reference and
central differences in float64; equal to the plain stack run with the masked weight."""
import numpy as np
import pytest

import symrnn as sym
from codegen.testing import load_sibling
from runtime import rng
from runtime.errors import ConfigError
from symrnn.ops import mask_id

checks = load_sibling(__file__, "feature_checks.py")
T, N, I = 4, 2, 3
P = 0.4


def stack(typ="lstm", **kw):
    rnn = sym.RNNFactory([5, 3], I, typ=typ, name="s", **kw)
    return checks.heads(rnn.step(sym.Variable("data"), seq_len=T))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("typ", ["lstm", "gru"])
def test_backends_agree(typ, dtype):
    checks.check_backends_agree(stack(typ, weight_drop=P, zoneout=0.2, bidirectional=True),
                                dtype, data=(T, N, I))


@pytest.mark.parametrize("backend", list(checks.BACKENDS))
def test_gradients_match_central_differences(backend):
    ex = checks.bind(stack("lstm", weight_drop=[P, 0.3]), backend, data=(T, N, I))
    checks.check_finite_differences(ex)


@pytest.mark.parametrize("backend", ["reference", "fused", "sim-fused"])
@pytest.mark.parametrize("typ", ["lstm", "rnn_tanh"])
def test_equals_the_plain_stack_with_the_masked_weight(typ, backend):
    dropped = checks.bind(stack(typ, weight_drop=P), backend, data=(T, N, I))
    plain = checks.bind(stack(typ), backend, data=(T, N, I))
    params = checks.random_params(dropped)
    masks = {f"s_l{k}_h2h_weight": rng.dropout_mask(
        checks.SEED, mask_id(f"s_l{k}_h2h_weight_drop"), params[f"s_l{k}_h2h_weight"].shape,
        P, np.float64) for k in range(2)}
    assert all(0 < np.mean(m == 0) < 1 for m in masks.values())
    dropped.copy_params_from(params)
    plain.copy_params_from({n: v * masks.get(n, 1.0) for n, v in params.items()})
    R = [np.random.default_rng(5).standard_normal(o.shape) for o in plain.forward()]
    got, grads = checks.run(dropped, R)
    want, plain_grads = checks.run(plain, R)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for name, g in plain_grads.items():
        np.testing.assert_allclose(grads[name], g * masks.get(name, 1.0), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    # inference: the unregularized stack with the weights as they are
    plain.copy_params_from(params)
    for a, b in zip(dropped.forward(is_train=False), plain.forward(is_train=False)):
        np.testing.assert_array_equal(a, b)


def test_the_mask_is_applied_once_per_forward():
    """One small weight kernel per layer per forward, besides one step kernel per layer and
    step; the compiled code does not grow with T."""
    programs = {}
    for steps in (4, 8):
        rnn = sym.RNNFactory([5, 3], I, weight_drop=P, name="s")
        out = rnn.step(sym.Variable("data"), seq_len=steps, ret_typ="out")[-1]
        programs[steps] = checks.bind(out, "fused", data=(steps, N, I)).program
        assert programs[steps].stats["launches_forward"] == 2 * steps + 2
    assert set(programs[4].kernels) == set(programs[8].kernels)


def test_export_then_load(tmp_path):
    ex = checks.bind(stack("lstm", weight_drop=P), "fused", "float32", data=(T, N, I))
    checks.check_export_roundtrip(ex, tmp_path / "wd.zip")


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "0.2", [0.1]])
def test_bad_rates_are_refused(rate):
    with pytest.raises(ConfigError, match="'weight_drop"):
        sym.RNNFactory([4, 4], 3, weight_drop=rate)
    with pytest.raises(ConfigError, match="'weight_drop'"):
        sym.GRUCell(4, weight_drop=rate if not isinstance(rate, list) else -1)
