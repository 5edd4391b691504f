"""Cell clipping `cell_clip=c` (issue 12): the LSTM's cell state is clipped to [-c, c]
before its tanh and before it is carried; its gradient is zero where it clipped. Every
backend against the reference and central differences in float64, fused into the step
kernel, exported and loaded; bad values refused."""
import numpy as np
import pytest

import symrnn as sym
from codegen.testing import load_sibling
from runtime.errors import ConfigError

checks = load_sibling(__file__, "feature_checks.py")
T, N, I = 3, 2, 4
CLIP = 0.4


def stack(**kw):
    rnn = sym.RNNFactory([5, 3], I, cell_clip=CLIP, name="s", **kw)
    return checks.heads(rnn.step(sym.Variable("data"), seq_len=T))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kw", [{}, {"bidirectional": True, "recurrent_dropout": 0.3,
                                     "dropout": 0.2}],
                         ids=["plain", "bidir-masked"])
def test_backends_agree_and_clip_is_active(kw, dtype):
    outs, _ = checks.check_backends_agree(stack(**kw), dtype, data=(T, N, I))
    all_c = outs[2:4]  # all_h, all_c, last_h, last_c per layer
    assert all(np.abs(c).max() <= CLIP for c in all_c)
    assert any(np.isclose(np.abs(c), CLIP).any() for c in all_c)  # some entries clipped


@pytest.mark.parametrize("backend", list(checks.BACKENDS))
def test_gradients_match_central_differences(backend):
    ex = checks.bind(stack(zoneout=0.2), backend, data=(T, N, I))
    checks.check_finite_differences(ex)


@pytest.mark.parametrize("backend", list(checks.BACKENDS))
def test_gradient_is_zero_where_the_cell_clipped(backend):
    """One step, the final cell state's gradient to the initial one is f where c was not
    clipped and 0 where it was."""
    cell = sym.LSTMCell(6, prefix="c_", input_size=I, cell_clip=0.3)
    _, (_, c) = cell.unroll(1, sym.Variable("data"))
    ex = checks.bind(c, backend, data=(1, N, I))
    ex.copy_params_from({"c_init_c": np.full((N, 6), 0.5)})  # |f * 0.5 + i * g| often > 0.3
    outs, grads = checks.run(ex, [np.ones((N, 6))])
    clipped = np.isclose(np.abs(outs[0]), 0.3)
    assert clipped.any() and (~clipped).any()
    assert np.all(grads["c_init_c"][clipped] == 0)
    assert np.all(grads["c_init_c"][~clipped] != 0)


def stack_at(steps, clip):
    rnn = sym.RNNFactory([5, 3], I, cell_clip=clip, name="s")
    return rnn.step(sym.Variable("data"), seq_len=steps, ret_typ="out")[-1]


def test_fused_program_has_one_kernel_per_layer_per_step():
    """As many kernels as without clipping, whatever T: the clip fuses into the step kernel."""
    programs = {(steps, clip): checks.bind(stack_at(steps, clip), "fused",
                                           data=(steps, N, I)).program
                for steps in (3, 6) for clip in (None, CLIP)}
    for (steps, clip), program in programs.items():
        assert program.stats["launches_forward"] == 2 * steps
        assert len(program.kernels) == len(programs[3, None].kernels)
    ops = {s.op for k in programs[3, CLIP].kernels.values() for s in k.ir.body
           if hasattr(s, "op")}
    assert {"clip", "clip_grad"} <= ops


def test_export_then_load_reproduces_the_clipped_stack(tmp_path):
    ex = checks.bind(stack(zoneout=0.2), "fused", "float32", data=(T, N, I))
    checks.check_export_roundtrip(ex, tmp_path / "clip.zip")


@pytest.mark.parametrize("clip", [-1.0, 0, 0.0, float("nan"), "1", True])
def test_bad_clip_is_refused(clip):
    with pytest.raises(ConfigError, match="'cell_clip' must be a positive number"):
        sym.RNNFactory([4], 3, cell_clip=clip)
    with pytest.raises(ConfigError, match="'cell_clip'"):
        sym.LSTMCell(4, cell_clip=clip)


@pytest.mark.parametrize("typ", ["gru", "rnn_tanh"])
def test_clip_on_a_cell_without_cell_state_is_refused(typ):
    with pytest.raises(ConfigError, match="'cell_clip' is only for typ='lstm'.*given 1.0"):
        sym.RNNFactory([4], 3, typ=typ, cell_clip=1.0)
