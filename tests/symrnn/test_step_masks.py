"""The cells' per-step masks (symrnn.ops.step_mask_id): one stream per role and step, the
stream id moving by one per step, so that the rolled program of any length carries a stride
for it rather than a table (codegen.roll, codegen.extrapolate); streams drawn independently."""
import re

import numpy as np

import symrnn as sym
from runtime import rng
from symrnn.ops import STEP_IDS, mask_id, step_mask_id

T = 6


def _masked_nodes(**kw) -> list:
    rnn = sym.RNNFactory([4, 4], data_dim=3, name="m", **kw)
    outs = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")
    return [n for n in sym.Group(outs).topo_nodes() if n.op in ("dropout", "zoneout")]


def test_each_role_moves_by_one_stream_per_step():
    nodes = _masked_nodes(dropout=0.3, zoneout=0.2, bidirectional=True)
    by_role: dict = {}
    for n in nodes:
        t = int(re.search(r"_t(\d+)_", n.name).group(1))
        by_role.setdefault(re.sub(r"_t\d+_", "_", n.name), {})[t] = n.attrs["mask_id"]
    # per layer: output dropout; zoneout of h and c, in each direction
    assert len(by_role) == 2 * (1 + 2 * 2)
    for ids in by_role.values():
        assert len(ids) >= T - 1  # the last c of a direction is read by no output: not built
        assert len({i - t for t, i in ids.items()}) == 1  # base + t
    ids = [i for role in by_role.values() for i in role.values()]
    assert len(set(ids)) == len(ids)
    assert all(0 <= i < (1 << 32) - STEP_IDS + T for i in ids)


def test_a_cells_stream_is_its_role_and_step():
    (first, *_) = _masked_nodes(zoneout=0.2)
    assert first.name == "m_l0_t0_zoneout_h"
    assert first.attrs["mask_id"] == step_mask_id("m_l0_zoneout_h", 0)
    assert step_mask_id("m_l0_zoneout_h", 7) == step_mask_id("m_l0_zoneout_h", 0) + 7


def test_named_masks_still_hash_their_names():
    """Masks the user names (and a sequence's shared mask) are one stream each, as before."""
    nodes = _masked_nodes(dropout=0.3, dropout_mode="sequence")
    assert {n.attrs["mask_id"] for n in nodes} == {mask_id("m_l0_dropout_mask"),
                                                    mask_id("m_l1_dropout_mask")}


def test_neighbouring_streams_are_independent():
    """Streams one apart (the same role at steps t and t+1) and of two roles: each element
    is hit with probability p, and two streams' hits agree as independent draws would."""
    p, size = 0.5, 1 << 16
    base = step_mask_id("m_l0_zoneout_h", 0)
    streams = [base, base + 1, base + 2, step_mask_id("m_l0_zoneout_c", 0)]
    hits = [rng.random_bits(11, s, size) < rng.threshold(p) for s in streams]
    tol = 4 / np.sqrt(size)  # four standard deviations
    for h in hits:
        assert abs(h.mean() - p) < tol
    for a in range(len(hits)):
        for b in range(a + 1, len(hits)):
            assert abs((hits[a] & hits[b]).mean() - p * p) < tol
