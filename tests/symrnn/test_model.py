"""Model helpers: layers and the token-mean loss against numpy, initialization, sampling."""
import math

import numpy as np
import pytest

import symrnn as sym
from runtime.errors import ConfigError
from symrnn.data import CharVocab, split_holdout
from symrnn.model import bind_model, param_names, state_args

BACKEND = "cpu"  # the compiled default; "reference" runs the same tests on the interpreter


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("backend", [BACKEND, "reference"])
def test_embedding_dense_and_mean_loss_match_numpy(backend):
    data = sym.Variable("data", dtype="int32")
    label = sym.Variable("label", shape=(3, 2), dtype="int32")
    logits = sym.dense(sym.embedding(data, vocab=6, dim=4, name="emb"), 5, name="out")
    loss = sym.softmax_ce_mean(logits, label)
    ex = bind_model(loss, backend, data=(3, 2), label=(3, 2))
    assert set(ex.grad_dict) == {"emb_weight", "out_weight", "out_bias"}
    sym.init_params(ex, scale=0.5, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, (3, 2)), rng.integers(0, 5, (3, 2))
    got = ex.forward(is_train=True, data=x, label=y)[0]
    z = ex.arg_dict["emb_weight"][x] @ ex.arg_dict["out_weight"].T + ex.arg_dict["out_bias"]
    want = -np.take_along_axis(_log_softmax(z.astype(np.float64)), y[..., None], -1).mean()
    assert float(got) == pytest.approx(want, rel=1e-5)
    ex.backward()
    p = np.exp(_log_softmax(z.astype(np.float64)))
    p[np.arange(3)[:, None], np.arange(2)[None], y] -= 1
    np.testing.assert_allclose(ex.grad_dict["out_bias"], p.sum((0, 1)) / 6, rtol=1e-4,
                               atol=1e-6)


def test_softmax_ce_mean_needs_the_token_count():
    logits = sym.Variable("logits")
    with pytest.raises(ConfigError, match="num_tokens"):
        sym.softmax_ce_mean(logits, sym.Variable("label"))
    loss = sym.softmax_ce_mean(logits, sym.Variable("label"), num_tokens=6, name="l")
    assert loss.list_outputs() == ["l_output"]


def test_init_params_skips_data_labels_and_states_and_uses_fan_in():
    lm = sym.CharLM(vocab_size=9, embed_dim=3, num_hidden=[16, 4], name="m")
    net, links = lm.symbol(2, 5)
    assert sorted(state_args(net)) == sorted(links.values())
    assert not {"data", "label", *links.values()} & set(param_names(net, ["data", "label"]))
    ex, _ = lm.bind(2, 5, BACKEND)
    sym.init_params(ex, seed=0)
    for name in ["data", "label", *links.values()]:
        assert not ex.arg_dict[name].any(), name
    bounds = {"m_l0_i2h_weight": 1 / 4, "m_l0_h2h_bias": 1 / 4, "m_l1_i2h_weight": 1 / 2,
              "m_decoder_weight": 1 / 2, "m_decoder_bias": 1 / 2, "m_embed_weight": 1 / 3 ** .5}
    for name, bound in bounds.items():
        w = ex.arg_dict[name]
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound, name
    again, _ = lm.bind(2, 5, BACKEND)
    sym.init_params(again, seed=0)
    np.testing.assert_array_equal(again.arg_dict["m_l1_h2h_weight"],
                                  ex.arg_dict["m_l1_h2h_weight"])
    with pytest.raises(ConfigError, match="not an argument"):
        sym.init_params(ex, names=["nope"])


def test_sample_is_deterministic_and_uses_the_trained_params():
    vocab = CharVocab.from_text("abcde\n")
    lm = sym.CharLM(len(vocab), 4, [8], name="s")
    ex, _ = lm.bind(3, 1, BACKEND)
    sym.init_params(ex, seed=0)
    a = lm.sample(ex.arg_dict, vocab, prime="ab", length=12, seed=1, backend=BACKEND)
    assert len(a) == 14 and a.startswith("ab") and set(a) <= set(vocab.chars)
    assert a == lm.sample(ex.arg_dict, vocab, prime="ab", length=12, seed=1, backend=BACKEND)
    ex.arg_dict["s_decoder_bias"][...] = -50
    ex.arg_dict["s_decoder_bias"][vocab.index["e"]] = 50
    assert lm.sample(ex.arg_dict, vocab, prime="a", length=5, backend=BACKEND) == "aeeeee"
    with pytest.raises(ConfigError, match="prime"):
        lm.sample(ex.arg_dict, vocab, prime="", backend=BACKEND)


def test_char_vocab_and_holdout():
    vocab = CharVocab.from_text("hello")
    assert len(vocab) == 4 and vocab.decode(vocab.encode("hole")) == "hole"
    with pytest.raises(ConfigError, match="not in the vocabulary"):
        vocab.encode("z")
    train, valid = split_holdout(np.arange(100), 0.1)
    assert len(train) == 90 and valid[0] == 90
    assert math.isclose(len(valid) / 100, 0.1)
