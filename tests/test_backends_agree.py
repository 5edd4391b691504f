"""Fused, unrolled and reference executors agree (issue 3, first acceptance bullet).

One symbol, three executors: `reference` (codegen's numpy interpreter of the unfused graph),
`cpu` with `optimize=True` (the compiled, fused program) and `cpu` with `optimize=False` (the
unrolled baseline, one kernel per elementary op). They get identical random arguments (weights,
biases, initial states and data), the same head gradients and the same training seed, and
must agree on every output (the stack's output sequence and the final states) and on every
gradient, to float32: rtol 1e-4, atol 1e-5; float64: 1e-10.

Covered: LSTM, GRU, RNN tanh and relu; per-layer sizes [7, 5, 3]; bidirectional; dropout in
both modes ('step' and 'sequence'); recurrent dropout and zoneout in training mode (and their
inference form); `grad_req` 'write', 'add' (two passes: gradients double), 'null' (no
gradients at all) and a per-argument dict mixing the three. `tests/test_hypothesis_stacks.py`
draws further stacks from the helpers here.

Every program built here is recorded in the session (`record_program`), so that
`tests/test_emitted_cuda.py` compiles the CUDA rendering of the same kernels without building
them again.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

import symrnn as sym

TYPES = ("lstm", "gru", "rnn_tanh", "rnn_relu")
TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-10}}
# name -> (backend, fuse); "reference" first: it defines correct.
EXECUTORS = {"reference": ("reference", False), "fused": ("cpu", True),
             "unrolled": ("cpu", False)}
SEED = 7


@dataclass(frozen=True)
class Stack:
    """One RNNFactory stack and the shapes it is bound to."""
    typ: str
    sizes: tuple = (7, 5, 3)
    data_dim: int = 4
    bidirectional: bool = False
    dropout: object = 0.0  # a float or a tuple, one per layer
    dropout_mode: str = "step"
    recurrent_dropout: object = 0.0
    zoneout: object = 0.0
    T: int = 3
    N: int = 2
    dtype: str = "float64"
    heads: str = "final"  # "final": out + final states; "all": everything step() returns

    @property
    def label(self) -> str:
        """A canonical string for the stack (equal across module copies of this class)."""
        return repr(dataclasses.astuple(self))

    def factory(self) -> sym.RNNFactory:
        def rate(r):
            return list(r) if isinstance(r, tuple) else r

        return sym.RNNFactory(num_hidden=list(self.sizes), data_dim=self.data_dim, typ=self.typ,
                              dropout=rate(self.dropout), dropout_mode=self.dropout_mode,
                              recurrent_dropout=rate(self.recurrent_dropout),
                              zoneout=rate(self.zoneout), bidirectional=self.bidirectional,
                              name="rnn")

    def symbol(self) -> sym.Symbol:
        """The Group of the stack's output sequence and its final states (h, and c for the
        LSTM), or with heads='all' of every sequence and state `step` returns."""
        parts = self.factory().step(sym.Variable("data"), seq_len=self.T, ret_typ="all")
        if self.typ == "lstm":
            all_h, all_c, last_h, last_c = parts
        else:
            (all_h, last_h), all_c, last_c = parts, [], []
        if self.heads == "all":
            return sym.Group(all_h + all_c + last_h + last_c)
        return sym.Group([all_h[-1]] + last_h + last_c)

    @property
    def masked(self) -> bool:
        """Whether training draws any mask (dropout, recurrent dropout or zoneout)."""
        rates = (self.dropout, self.recurrent_dropout, self.zoneout)
        return any(any(r) if isinstance(r, tuple) else r for r in rates)

    @property
    def shapes(self) -> dict:
        return {"data": (self.T, self.N, self.data_dim)}


# ---- the session's record of programs, for tests/test_emitted_cuda.py --------------------------

def req_label(grad_req) -> str:
    return grad_req if isinstance(grad_req, str) else repr(sorted(grad_req.items()))


def program_key(stack: Stack, grad_req, fused: bool) -> str:
    return f"{stack.label}|{req_label(grad_req)}|{'fused' if fused else 'unrolled'}"


def session_programs(config) -> dict:
    """{program_key: Program} for every program built in this pytest session."""
    programs = getattr(config, "_symrnn_programs", None)
    if programs is None:
        programs = config._symrnn_programs = {}
    return programs


def record_program(config, stack: Stack, grad_req, fused: bool, program) -> None:
    if config is not None and program is not None:
        session_programs(config)[program_key(stack, grad_req, fused)] = program


# ---- binding and running -------------------------------------------------------------------------

def mixed_grad_req(symbol: sym.Symbol) -> dict:
    """A per-argument dict using all three requests, on every kind of argument."""
    def req(name: str) -> str:
        for suffix, r in (("i2h_weight", "write"), ("h2h_weight", "add"), ("i2h_bias", "null"),
                          ("h2h_bias", "write"), ("init_h", "add"), ("init_c", "null")):
            if name.endswith(suffix):
                return r
        return "add"  # data

    return {n: req(n) for n in symbol.list_arguments()}


def bind_all(stack: Stack, grad_req="write", config=None, symbol=None) -> dict:
    """{executor name: Executor} for the same symbol, bound three ways."""
    symbol = stack.symbol() if symbol is None else symbol
    exs = {}
    for name, (backend, fuse) in EXECUTORS.items():
        exs[name] = symbol.simple_bind(backend=backend, optimize=fuse, dtype=stack.dtype,
                                       grad_req=grad_req, **stack.shapes)
        if backend == "cpu":
            record_program(config, stack, grad_req, fuse, exs[name].program)
    return exs


def random_args(ex, seed: int = 0) -> dict:
    """Random values for every argument, states included (zeros would hide state bugs)."""
    rng = np.random.default_rng(seed)
    return {n: (rng.standard_normal(v.shape) * 0.5).astype(v.dtype)
            for n, v in ex.arg_dict.items()}


def random_out_grads(ex, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(o.shape).astype(o.dtype) for o in ex.outputs]


def assert_close(actual, expected, dtype: str, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}"
    np.testing.assert_allclose(actual, expected, err_msg=what, **TOL[dtype])


def assert_outputs_agree(exs: dict, dtype: str, when: str = "") -> None:
    ref = exs["reference"]
    names = ref.output_names
    for name, ex in exs.items():
        assert ex.output_names == names
        for head, a, b in zip(names, ex.outputs, ref.outputs):
            assert_close(a, b, dtype, f"{when}{name} vs reference: output {head!r}")
            assert np.isfinite(a).all(), f"{when}{name}: output {head!r} is not finite"


def assert_grads_agree(exs: dict, dtype: str, when: str = "") -> None:
    ref = exs["reference"]
    for name, ex in exs.items():
        assert sorted(ex.grad_dict) == sorted(ref.grad_dict), f"{when}{name}: gradients"
        for arg in ref.grad_dict:
            assert_close(ex.grad_dict[arg], ref.grad_dict[arg], dtype,
                         f"{when}{name} vs reference: gradient of {arg!r}")


def check_stack(stack: Stack, grad_req="write", config=None, seeds=(SEED, SEED),
                new_out_grads: bool = False, symbol=None, masks_visible: bool = False) -> dict:
    """Binds the three executors with identical arguments, runs one training forward and
    backward pass per seed in `seeds`, and checks after each that outputs and gradients
    agree. With one seed and one set of head gradients for all passes, it also checks what
    `grad_req` did: 'write' gradients equal the first pass's, 'add' twice them (two passes),
    'null' arguments have none. Ends with an inference forward (dropout the identity,
    zoneout its expectation); with `masks_visible` (stacks large enough that some mask surely
    hits), training outputs must differ from inference ones. Returns the executors."""
    symbol = stack.symbol() if symbol is None else symbol
    exs = bind_all(stack, grad_req, config, symbol)
    reqs = exs["reference"].grad_req
    params = random_args(exs["reference"])
    for ex in exs.values():
        ex.copy_params_from(params)
        assert ex.grad_req == reqs
        assert sorted(ex.grad_dict) == sorted(n for n, r in reqs.items() if r != "null")
    out_grads, firsts = None, {}
    for k, seed in enumerate(seeds):
        for ex in exs.values():
            ex.forward(is_train=True, seed=seed)
        assert_outputs_agree(exs, stack.dtype, f"pass {k}: ")
        if out_grads is None or new_out_grads:
            out_grads = random_out_grads(exs["reference"], seed=k + 1)
        for ex in exs.values():
            ex.backward(out_grads=out_grads)
        assert_grads_agree(exs, stack.dtype, f"pass {k}: ")
        if k == 0:
            firsts = {n: {a: g.copy() for a, g in ex.grad_dict.items()} for n, ex in exs.items()}
    if len(set(seeds)) == 1 and not new_out_grads:
        for name, ex in exs.items():
            for arg, g in ex.grad_dict.items():
                factor = len(seeds) if reqs[arg] == "add" else 1
                np.testing.assert_allclose(
                    g, factor * firsts[name][arg], rtol=1e-6, atol=0,
                    err_msg=f"{name}: grad_req {reqs[arg]!r} of {arg!r} after {len(seeds)} passes")
    trained = [o.copy() for o in exs["reference"].outputs]
    for ex in exs.values():
        ex.forward(is_train=False)
    assert_outputs_agree(exs, stack.dtype, "inference: ")
    if masks_visible:  # the masks were drawn: training differs from inference
        assert stack.masked
        assert any(not np.allclose(a, b) for a, b in zip(trained, exs["reference"].outputs))
    return exs


# ---- the parametrized stacks ------------------------------------------------------------------

RATES = {"dropout": 0.3, "recurrent_dropout": 0.2, "zoneout": 0.25}


def full_stack(typ: str, **kw) -> Stack:
    """[7, 5, 3], bidirectional, every kind of mask on."""
    return Stack(typ, (7, 5, 3), bidirectional=True, **RATES, **kw)


def grad_req_of(spec: str, symbol: sym.Symbol):
    """'write' | 'add' | 'null' as given; 'mixed': the per-argument dict of all three."""
    return mixed_grad_req(symbol) if spec == "mixed" else spec


@dataclass(frozen=True)
class Case:
    stack: Stack
    grad_req: str  # 'write' | 'add' | 'null' | 'mixed'
    seeds: tuple = (SEED, SEED)
    new_out_grads: bool = False


def cases() -> dict:
    """{test id: Case}, per cell type:

    - bidirectional [7, 5, 3], dropout per step, recurrent dropout and zoneout, float64,
      'write', two passes with different seeds and head gradients;
    - the same with one dropout mask per sequence, float32, a per-argument dict of 'write',
      'add' and 'null', two identical passes ('add' doubles, 'write' does not);
    - one direction [7, 5, 3], every mask on, float32, 'add' (two identical passes: doubles)
      and 'null' (a forward-only program, no gradients).
    """
    out = {}
    for typ in TYPES:
        out[f"{typ}-bidir-step-float64-write"] = Case(
            full_stack(typ, dropout_mode="step", dtype="float64"), "write",
            seeds=(SEED, SEED + 1), new_out_grads=True)
        out[f"{typ}-bidir-sequence-float32-mixed"] = Case(
            full_stack(typ, dropout_mode="sequence", dtype="float32"), "mixed")
        for req in ("add", "null"):
            out[f"{typ}-float32-{req}"] = Case(Stack(typ, (7, 5, 3), **RATES, dtype="float32"),
                                               req)
    return out


CASES = cases()


@pytest.mark.parametrize("case_id", list(CASES))
def test_stack_agrees(case_id, pytestconfig):
    case = CASES[case_id]
    symbol = case.stack.symbol()
    exs = check_stack(case.stack, grad_req_of(case.grad_req, symbol), pytestconfig,
                      seeds=case.seeds, new_out_grads=case.new_out_grads, symbol=symbol,
                      masks_visible=True)
    args = set(symbol.list_arguments())
    got = set(exs["fused"].grad_dict)
    if case.grad_req in ("write", "add"):
        assert got == args
    elif case.grad_req == "null":
        assert got == set()
        assert exs["fused"].program.stats["launches_backward"] == 0
        assert exs["unrolled"].program.stats["launches_backward"] == 0
    else:
        assert got == {a for a, r in mixed_grad_req(symbol).items() if r != "null"}
