"""Optimizers and clipping against hand computations; truncated BPTT carries states."""
import math

import numpy as np
import pytest

import symrnn as sym
from runtime.errors import ConfigError
from symrnn.optim import SGD, Adam, clip_global_norm
from symrnn.train import batchify, evaluate, train, windows

BACKEND = "cpu"  # the compiled default; "reference" runs the same tests on the interpreter


def test_sgd_plain_and_momentum_by_hand():
    p, g = {"w": np.array([1.0])}, {"w": np.array([1.0])}
    opt = SGD(lr=0.1, momentum=0.9)
    opt.update(p, g)  # v = 1, p = 1 - 0.1
    assert p["w"][0] == pytest.approx(0.9)
    opt.update(p, g)  # v = 0.9 * 1 + 1 = 1.9, p = 0.9 - 0.19
    assert p["w"][0] == pytest.approx(0.71)
    q = {"w": np.array([2.0])}
    SGD(lr=0.5).update(q, {"w": np.array([-1.0])})
    assert q["w"][0] == pytest.approx(2.5)


def test_adam_by_hand():
    p = {"w": np.array([1.0])}
    opt = Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    opt.update(p, {"w": np.array([1.0])})  # m_hat = 1, v_hat = 1: a step of exactly lr
    p1 = 1.0 - 0.01 * 1.0 / (1.0 + 1e-8)
    assert p["w"][0] == pytest.approx(p1, abs=1e-15)
    opt.update(p, {"w": np.array([-2.0])})
    m = 0.9 * 0.1 + 0.1 * -2.0  # -0.11
    v = 0.999 * 0.001 + 0.001 * 4.0  # 0.004999
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    assert p["w"][0] == pytest.approx(p1 - 0.01 * m_hat / (math.sqrt(v_hat) + 1e-8),
                                      abs=1e-12)


@pytest.mark.torch
def test_optimizers_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(5), rng.standard_normal((4, 5))
    for ours, theirs in [
        (SGD(0.1, momentum=0.9), lambda ps: torch.optim.SGD(ps, 0.1, momentum=0.9)),
        (Adam(0.01, (0.8, 0.99), 1e-6), lambda ps: torch.optim.Adam(ps, 0.01, (0.8, 0.99), 1e-6)),
    ]:
        p, tp = {"w": w0.copy()}, torch.tensor(w0.copy(), requires_grad=True)
        topt = theirs([tp])
        for g in grads:
            ours.update(p, {"w": g})
            tp.grad = torch.tensor(g)
            topt.step()
        np.testing.assert_allclose(p["w"], tp.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_clip_global_norm():
    grads = {"a": np.array([3.0], np.float32), "b": np.array([[4.0]], np.float32)}
    assert clip_global_norm(grads, 1.0) == pytest.approx(5.0)
    assert grads["a"][0] == pytest.approx(0.6, rel=1e-5)
    assert grads["b"][0, 0] == pytest.approx(0.8, rel=1e-5)
    small = [np.array([0.3, 0.4])]
    assert clip_global_norm(small, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(small[0], [0.3, 0.4])
    bad = [np.array([np.inf, 1.0])]
    assert not math.isfinite(clip_global_norm(bad, 1.0))
    with pytest.raises(ConfigError, match="max_norm"):
        clip_global_norm(small, -1.0)


def test_optimizer_arguments_are_checked():
    with pytest.raises(ConfigError, match="momentum"):
        SGD(0.1, momentum=1.5)
    with pytest.raises(ConfigError, match="betas"):
        Adam(betas=(0.9,))


def test_batchify_and_windows():
    stream = batchify(np.arange(20), 3)  # 6 rows, columns are contiguous slices
    assert stream.shape == (6, 3)
    np.testing.assert_array_equal(stream[:, 1], np.arange(6, 12))
    pairs = list(windows(stream, 2))
    assert len(pairs) == 2  # starts 0 and 2; start 4 would need a label at row 6
    np.testing.assert_array_equal(pairs[1][1], stream[3:5])


@pytest.fixture(scope="module")
def tiny_lm():
    lm = sym.CharLM(vocab_size=7, embed_dim=4, num_hidden=[5, 3], name="tiny")
    ex, links = lm.bind(4, 2, BACKEND)
    sym.init_params(ex, seed=3)
    stream = batchify(np.random.default_rng(1).integers(0, 7, 18), 2)  # 9 rows: 2 windows
    return lm, ex, links, stream


def _losses(ex, links, stream, state):
    params = {n: ex.arg_dict[n].copy() for n in ex.grad_dict}
    h = train(ex, stream, links, optimizer=SGD(lr=0.0), state=state, progress=False, log=None)
    assert all(np.array_equal(ex.arg_dict[n], v) for n, v in params.items())
    return h.losses


def test_remember_carries_states_and_equals_one_long_forward(tiny_lm):
    lm, ex, links, stream = tiny_lm
    remember = _losses(ex, links, stream, "remember")
    forget = _losses(ex, links, stream, "forget")
    assert len(remember) == 2 and remember[0] == pytest.approx(forget[0], rel=1e-6)
    assert abs(remember[1] - forget[1]) > 1e-4
    long_ex, _ = lm.bind(8, 2, BACKEND)
    long_ex.copy_params_from({n: ex.arg_dict[n] for n in ex.grad_dict})
    long_loss = long_ex.forward(data=stream[:8], label=stream[1:9])[0]
    assert float(long_loss) == pytest.approx(np.mean(remember), rel=1e-5)
    assert evaluate(ex, stream, links) == pytest.approx(np.mean(remember), rel=1e-5)


def test_training_lowers_the_loss_on_a_repeating_pattern():
    lm = sym.CharLM(vocab_size=4, embed_dim=4, num_hidden=[8], name="rep")
    ex, links = lm.bind(8, 4, BACKEND, seed=0)
    sym.init_params(ex, seed=0)
    stream = batchify(np.tile([0, 1, 2, 3, 2, 1], 60), 4)
    h = train(ex, stream, links, epochs=4, optimizer=Adam(0.03), clip=5.0, progress=False,
              log=None)
    assert h.epochs[-1]["loss"] < 0.5 * h.epochs[0]["loss"]
    assert h.last["ppl"] == pytest.approx(math.exp(h.last["loss"]))


def test_train_refuses_bad_arguments(tiny_lm):
    _, ex, links, stream = tiny_lm
    with pytest.raises(ConfigError, match="state"):
        train(ex, stream, links, state="keep", log=None)
    with pytest.raises(ConfigError, match="batchify"):
        train(ex, stream[:, 0], links, log=None)
    with pytest.raises(ConfigError, match="not an argument or output"):
        train(ex, stream, {"nope": "tiny_l0_init_h"}, log=None)


def test_plot_losses_needs_matplotlib_or_writes_the_curve(tmp_path):
    from symrnn.train import History, plot_losses

    h = History(epochs=[{"windows": 3, "valid_loss": 1.0}], losses=[2.0, 1.5, 1.2])
    path = tmp_path / "loss.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="matplotlib"):
            plot_losses(h, str(path))
        return
    plot_losses(h, str(path))
    assert path.stat().st_size > 0
