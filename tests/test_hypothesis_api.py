"""The whole API under random stacks and random call sequences (issue 17), with hypothesis.

An example draws a stack (cell type, 1-2 layers of sizes 1-9, input size, direction, rates,
T 1-12, N 1-5, dtype), a `grad_req` (write, add or null), a compiled executor (`cpu`, fused
or unrolled) and a sequence of calls, made on it and on a `reference` executor of the same
symbol: forward (training or inference, new data or not), backward (new head gradients),
an in-place parameter update, reshape to another batch, export and `runtime.load`, and
calls that must be refused (wrong shapes, unknown names, backward before forward, a weight
retyped in place). After every call both executors agree (outputs, gradients, arguments); a
refused call raises a SymRNNError on both and changes nothing (arguments, gradients, outputs).

The run is bounded: the `symrnn-api` profile has a fixed number of examples (12, derandomized)
and no deadline (`SYMRNN_API_EXAMPLES=200` hunts longer, randomized); rates come from a small set and every program of a stack
reuses the kernels of the same structure, so few kernels are compiled. The examples database
(.hypothesis/) is not committed.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import runtime
import symrnn as sym
from codegen.testing import load_sibling

agree = load_sibling(__file__, "test_backends_agree.py")

HUNT = os.environ.get("SYMRNN_API_EXAMPLES")  # a longer, randomized hunt: e.g. 200
settings.register_profile(
    "symrnn-api", max_examples=int(HUNT or 12), deadline=None, derandomize=not HUNT,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RATE = st.sampled_from([0.0, 0.5])
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


@st.composite
def stacks(draw):
    layers = draw(st.integers(1, 2))
    return agree.Stack(
        typ=draw(st.sampled_from(agree.TYPES)),
        sizes=tuple(draw(st.lists(st.integers(1, 9), min_size=layers, max_size=layers))),
        data_dim=draw(st.integers(1, 4)), bidirectional=draw(st.booleans()),
        dropout=draw(RATE), recurrent_dropout=draw(RATE), zoneout=draw(RATE),
        T=draw(st.integers(1, 12)), N=draw(st.integers(1, 5)),
        dtype=draw(st.sampled_from(["float32", "float64"])),
    )


CALLS = st.one_of(
    st.tuples(st.just("forward"), st.booleans(), st.booleans(), st.integers(0, 3)),
    st.tuples(st.just("backward"), st.integers(0, 3)),
    st.tuples(st.just("backward"), st.integers(0, 3)),
    st.tuples(st.just("update"), st.integers(0, 3)),
    st.tuples(st.just("reshape"), st.integers(1, 5)),
    st.tuples(st.just("export"), st.integers(0, 3)),
    st.tuples(st.just("refused"), st.sampled_from(["data", "out_grads", "name", "reshape",
                                                      "retyped"])),
)


class Pair:
    """The executor under test and the reference, driven by the same calls."""

    def __init__(self, stack, grad_req, fuse, tmp_path):
        self.stack, self.tmp, self.dtype = stack, tmp_path, stack.dtype
        symbol = stack.symbol()
        self.ref = symbol.simple_bind(backend="reference", dtype=stack.dtype,
                                      grad_req=grad_req, **stack.shapes)
        self.ex = symbol.simple_bind(backend="cpu", fuse=fuse, dtype=stack.dtype,
                                     grad_req=grad_req, **stack.shapes)
        args = agree.random_args(self.ref)
        for ex in self.both:
            ex.copy_params_from({n: v * 0.6 for n, v in args.items()})

    @property
    def both(self):
        return (self.ref, self.ex)

    def forward(self, is_train, new_data, seed):
        inputs = {}
        if new_data:
            shape = self.ref.arg_dict["data"].shape
            inputs["data"] = np.random.default_rng(seed).standard_normal(shape).astype(
                self.dtype)
        for ex in self.both:
            ex.forward(is_train=is_train, seed=seed, **inputs)

    def backward(self, seed):
        if not self.ref.outputs:
            return self.refused("backward before forward", lambda ex: ex.backward(
                [np.ones(s, d) for _, s, d in ex.engine.out_specs]))
        heads = agree.random_out_grads(self.ref, seed)
        for ex in self.both:
            ex.backward(heads)

    def update(self, seed):
        step = np.random.default_rng(seed)
        for n in self.ref.arg_dict:
            if n.endswith("weight"):
                delta = (step.standard_normal(self.ref.arg_dict[n].shape) * 0.05)
                for ex in self.both:
                    ex.arg_dict[n] += delta.astype(self.dtype)

    def reshape(self, N):
        shape = (self.stack.T, N, self.stack.data_dim)
        if not hasattr(self.ex, "reshaper"):  # loaded from an artifact: no symbol to compile
            before = snapshot(self.ex)
            with pytest.raises(sym.BindError, match="reshape"):
                self.ex.reshape(data=shape)
            return assert_same_state(snapshot(self.ex), before, "reshape of a loaded one")
        old = self.both
        self.ref, self.ex = (ex.reshape(data=shape) for ex in old)
        for before, after in zip(old, self.both):
            for n, v in before.grad_dict.items():
                if after.arg_dict[n].shape == before.arg_dict[n].shape and n != "data":
                    assert after.arg_dict[n] is before.arg_dict[n], n
                    assert after.grad_dict[n] is v, n

    def export(self, seed):
        path = self.tmp / f"ex{seed}.zip"
        self.ex.export(path)
        loaded = runtime.load(path)
        for n, v in self.ex.arg_dict.items():
            np.testing.assert_array_equal(loaded.arg_dict[n], v, err_msg=n)
        for n, g in self.ex.grad_dict.items():
            np.copyto(loaded.grad_dict[n], g)
        self.ex = loaded
        self.forward(True, False, seed)  # a loaded executor starts without a forward

    def refused(self, what, call=None):
        calls = {
            "data": lambda ex: ex.forward(data=np.zeros((self.stack.T + 1, 1, 1), self.dtype)),
            "out_grads": lambda ex: ex.backward([np.ones((1, 2, 3, 4))]),
            "name": lambda ex: ex.forward(nope=np.zeros(1)),
            "reshape": lambda ex: ex.reshape(data=(self.stack.T + 3, 1, self.stack.data_dim)),
            "retyped": forward_with_a_weight_retyped_in_place,
        }
        call = call or calls[what]
        for ex in self.both:
            before = snapshot(ex)
            with pytest.raises(sym.SymRNNError):
                call(ex)
            assert_same_state(snapshot(ex), before, what)

    def check(self, when: str):
        ref, ex = self.both
        assert ex.grad_req == ref.grad_req
        if ref.outputs:
            for a, b in zip(ex.outputs, ref.outputs):
                agree.assert_close(a, b, self.dtype, f"{when}: output")
        assert sorted(ex.grad_dict) == sorted(ref.grad_dict)
        for n, g in ref.grad_dict.items():
            agree.assert_close(ex.grad_dict[n], g, self.dtype, f"{when}: gradient of {n!r}")
        for n, v in ref.arg_dict.items():
            agree.assert_close(ex.arg_dict[n], v, self.dtype, f"{when}: argument {n!r}")


def forward_with_a_weight_retyped_in_place(ex):
    """`w.dtype = int` keeps the array and its bytes: refused, then set back."""
    name = next(n for n in ex.arg_dict if n.endswith("weight"))
    w = ex.arg_dict[name]
    dtype = w.dtype
    w.dtype = np.int32 if dtype == np.float32 else np.int64
    try:
        ex.forward(is_train=True)
    finally:
        w.dtype = dtype


def snapshot(ex):
    return ({n: v.copy() for n, v in ex.arg_dict.items()},
            {n: v.copy() for n, v in ex.grad_dict.items()}, [o.copy() for o in ex.outputs])


def assert_same_state(after, before, what):
    for a, b in zip(after[:2], before[:2]):
        assert sorted(a) == sorted(b), what
        for n, v in b.items():
            np.testing.assert_array_equal(a[n], v, err_msg=f"refused {what}: {n!r} changed")
    for a, b in zip(after[2], before[2]):
        np.testing.assert_array_equal(a, b, err_msg=f"refused {what}: outputs changed")


@needs_cc
@settings(settings.get_profile("symrnn-api"))
@given(stack=stacks(), grad_req=st.sampled_from(["write", "add", "null"]), fuse=st.booleans(),
       calls=st.lists(CALLS, min_size=0, max_size=6))
def test_random_call_sequences_agree_with_the_reference(stack, grad_req, fuse, calls,
                                                        tmp_path_factory):
    note(f"stack={stack!r} grad_req={grad_req} fuse={fuse}")
    pair = Pair(stack, grad_req, fuse, tmp_path_factory.mktemp("api"))
    pair.check("after bind")
    # every sequence trains once first, so that each example checks gradients
    for k, (what, *args) in enumerate([("forward", True, True, 0), ("backward", 0), *calls]):
        event(what)
        getattr(pair, what)(*args)
        pair.check(f"call {k} {what}{tuple(args)}")
