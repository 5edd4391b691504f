"""emit: a kernel draws each mask once, however many of its ops use it (the zoneout backward
applies the forward's mask to the state and to its gradient)."""
import numpy as np

import symrnn as sym

T, N, I = 3, 2, 4


def zoneout_lstm(backend):
    rnn = sym.RNNFactory(num_hidden=[5], data_dim=I, typ="lstm", zoneout=0.4, name="z")
    out = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="out")[-1]
    ex = out.simple_bind(backend=backend, dtype="float64", data=(T, N, I))
    rng = np.random.default_rng(0)
    for v in ex.arg_dict.values():
        v[:] = rng.normal(size=v.shape) * 0.5
    return ex


def kernel_steps(program):
    for s in program.steps:
        for b in (s.body if s.kind == "loop" else [s]):
            if b.kind == "kernel":
                yield b


def test_each_kernel_lists_a_mask_id_once():
    program = zoneout_lstm("cpu").program
    steps = list(kernel_steps(program))
    assert any(s.attrs["masks"] for s in steps if s.phase == "backward")
    for s in steps:
        masks = s.attrs["masks"]
        assert len(set(masks)) == len(masks), (s.name, masks)
        assert program.kernels[s.attrs["kernel"]].n_masks == len(masks)


def test_shared_mask_slots_keep_the_gradients():
    cpu, ref = zoneout_lstm("cpu"), zoneout_lstm("reference")
    g = np.random.default_rng(1).normal(size=(T, N, 5))
    for ex in (cpu, ref):
        ex.forward(is_train=True, seed=11)
        ex.backward(out_grads=[g])
    for name in ref.grad_dict:
        np.testing.assert_allclose(cpu.grad_dict[name], ref.grad_dict[name], rtol=1e-9,
                                   atol=1e-12, err_msg=name)
