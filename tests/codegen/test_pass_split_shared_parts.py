"""split_shared_parts: a computed value that is a part of two containers gets a copy for the
second; plan_memory then builds both in place (the GRU's gate gradients)."""
import numpy as np

import symrnn as sym
from codegen import Builder
from codegen.graph import same_graph
from codegen.passes.split_shared_parts import split_shared_parts


def two_concats(copied: bool):
    b = Builder()
    b.var("x", (2, 3), "float32")
    b.var("y", (2, 3), "float32")
    s = b.add("sigmoid", ["x"], "s")
    t = b.add("tanh", ["y"], "t")
    b.add("concat", [s, "y"], "a", axis=1)
    second = b.add("copy", [s], "s@b") if copied else s
    b.add("concat", [t, second, "x"], "b", axis=1)
    b.set_outputs(["a", "b"])
    return b.g


def test_the_second_container_gets_a_copy_of_a_shared_part():
    assert same_graph(split_shared_parts(two_concats(False)), two_concats(True))


def test_variables_and_unshared_parts_are_left_alone():
    b = Builder()
    b.var("x", (2, 3), "float32")
    s = b.add("sigmoid", ["x"], "s")
    b.add("concat", [s, "x"], "a", axis=1)
    b.add("concat", ["x", "x"], "b", axis=0)
    b.set_outputs(["a", "b"])
    assert split_shared_parts(b.g) is b.g


def gru_training(backend):
    rnn = sym.RNNFactory(num_hidden=[6], data_dim=4, typ="gru", name="g")
    out = rnn.step(sym.Variable("data"), seq_len=3, ret_typ="out")[-1]
    ex = out.simple_bind(backend=backend, dtype="float64", data=(3, 2, 4))
    rng = np.random.default_rng(0)
    for v in ex.arg_dict.values():
        v[:] = rng.normal(size=v.shape) * 0.5
    return ex


def test_a_gru_backward_copies_no_gate_gradient():
    cpu, ref = gru_training("cpu"), gru_training("reference")
    steps = [b for s in cpu.program.steps for b in (s.body if s.kind == "loop" else [s])]
    assert not [s for s in steps if s.kind == "op" and s.attrs["op"] == "concat"
                and s.attrs.get("axis") == 1]
    g = np.random.default_rng(1).normal(size=(3, 2, 6))
    for ex in (cpu, ref):
        ex.forward(is_train=True, seed=3)
        ex.backward(out_grads=[g])
    for name in ref.grad_dict:
        np.testing.assert_allclose(cpu.grad_dict[name], ref.grad_dict[name], rtol=1e-9,
                                   atol=1e-12, err_msg=name)
