"""rematerialize: the backward recomputes a forward value one scalar op from a value it reads
anyway (the GRU's `1 - z` from `z`) instead of reading it back."""
import numpy as np

import symrnn as sym
from codegen import Builder
from codegen.graph import node, same_graph
from codegen.passes.rematerialize import rematerialize
from codegen.pipeline import CompileOptions, compile
from symrnn.lower import lower_and_infer


def mix(again: bool):
    """A forward `y = (1 - z) * x` and a gradient node that reads `1 - z` and `z`."""
    b = Builder()
    for v in ("z", "x", "g"):
        b.var(v, (2, 3), "float32")
    one_minus = b.add("rsub_scalar", ["z"], "1-z", scalar=1.0)
    b.add("mul", [one_minus, "x"], "y")
    read = b.add("rsub_scalar", ["z"], "1-z@backward", scalar=1.0) if again else one_minus
    b.add("mul", [b.add("mul", ["g", read], "g*(1-z)"), "z"], "dx")
    b.set_outputs(["y"])
    return b.g


def test_the_backward_reader_gets_its_own_copy():
    assert same_graph(rematerialize(mix(False)), mix(True))


def test_a_value_whose_input_the_backward_does_not_read_stays_stored():
    b = Builder()
    for v in ("z", "x", "g"):
        b.var(v, (2, 3), "float32")
    one_minus = b.add("rsub_scalar", ["z"], "1-z", scalar=1.0)
    b.add("mul", [one_minus, "x"], "y")
    b.add("mul", ["g", one_minus], "dx")
    b.set_outputs(["y"])
    assert rematerialize(b.g) is b.g


def test_a_gru_stores_no_one_minus_z_and_keeps_its_gradients():
    rnn = sym.RNNFactory(num_hidden=[6], data_dim=4, typ="gru", name="g")
    out = rnn.step(sym.Variable("data"), seq_len=3, ret_typ="out")[-1]
    shaped, _ = lower_and_infer(out, {"data": (3, 2, 4)}, "float64")
    wrt = tuple(a for a in out.list_arguments())
    g, _ = compile(shaped, CompileOptions(wrt=wrt), return_graph=True)
    stored = [n for n in g.graph["layout"] if n in g and node(g, n).op == "rsub_scalar"]
    assert not stored
    exs = [out.simple_bind(backend=b, dtype="float64", data=(3, 2, 4))
           for b in ("cpu", "reference")]
    rng = np.random.default_rng(0)
    args = {k: rng.normal(size=v.shape) * 0.5 for k, v in exs[0].arg_dict.items()}
    head = rng.normal(size=(3, 2, 6))
    for ex in exs:
        ex.copy_params_from(args)
        ex.forward(is_train=True)
        ex.backward(out_grads=[head])
    for name in args:
        np.testing.assert_allclose(exs[0].grad_dict[name], exs[1].grad_dict[name], rtol=1e-9,
                                   atol=1e-12, err_msg=name)
