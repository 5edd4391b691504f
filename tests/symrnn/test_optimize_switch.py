"""`optimize=False` compiles the unrolled baseline; `fuse`, its old name, still works."""
import numpy as np
import pytest

import symrnn as sym
from runtime.errors import BindError


def stack():
    rnn = sym.RNNFactory([6], data_dim=4, typ="gru", name="gru")
    out = rnn.step(sym.Variable("data"), seq_len=3, ret_typ="out")[-1]
    return sym.sum(out * out, name="loss")


@pytest.mark.parametrize("switch", [{"optimize": False}, {"fuse": False}])
def test_optimize_false_and_its_alias_compile_the_unrolled_program(switch):
    ex = stack().simple_bind(data=(3, 2, 4), **switch)
    optimized = stack().simple_bind(data=(3, 2, 4))
    assert ex.program.stats["fused"] is False and optimized.program.stats["fused"] is True
    assert ex.program.stats["launches_forward"] > optimized.program.stats["launches_forward"]


def test_fuse_true_is_optimize_true():
    stats = stack().simple_bind(data=(3, 2, 4), fuse=True).program.stats
    assert stats["fused"] is True


def test_bind_takes_the_new_name_and_the_alias():
    symbol = stack()
    args = {a: np.zeros(s, np.float32) for a, s in
            zip(symbol.list_arguments(), symbol.infer_shape(data=(3, 2, 4))[0])}
    assert symbol.bind("cpu", args, optimize=False).program.stats["fused"] is False
    assert symbol.bind("cpu", args, fuse=False).program.stats["fused"] is False


def test_both_names_disagreeing_are_refused():
    with pytest.raises(BindError, match="'fuse' is the old name of 'optimize'.*give one"):
        stack().simple_bind(data=(3, 2, 4), optimize=False, fuse=True)
