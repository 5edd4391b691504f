"""Checks shared by the tests of issue 12's features (cell clipping, projection, ...):
every backend agrees with the reference, gradients match central differences in float64 on
every backend, and an exported artifact reproduces the source executor."""
from __future__ import annotations

import numpy as np

import runtime
import symrnn as sym

# name -> (backend, optimize); "reference" first: it defines correct.
BACKENDS = {"reference": ("reference", False), "fused": ("cpu", True),
            "unrolled": ("cpu", False), "sim-fused": ("cuda-sim", True),
            "sim-unrolled": ("cuda-sim", False)}
# What check_backends_agree runs by default: cuda-sim's unrolled programs (one C++ kernel per
# op) are slow to build; the gradient checks run them.
AGREE = ("reference", "fused", "unrolled", "sim-fused")
TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-10}}
SEED, EPS = 7, 1e-6


def heads(parts) -> sym.Symbol:
    """Every output an RNNFactory.step(ret_typ='all') returned, as one Group."""
    return sym.Group([s for part in parts for s in part])


def random_params(ex, seed: int = 0, scale: float = 0.6, skip=()) -> dict:
    rng = np.random.default_rng(seed)
    return {n: (rng.standard_normal(v.shape) * scale).astype(v.dtype)
            for n, v in ex.arg_dict.items() if n not in skip}


def bind(symbol, backend: str, dtype: str = "float64", params=None, **shapes):
    where, optimize = BACKENDS[backend]
    ex = symbol.simple_bind(backend=where, optimize=optimize, dtype=dtype, **shapes)
    ex.copy_params_from(random_params(ex) if params is None else params)
    return ex


def run(ex, out_grads=None, is_train=True, **inputs):
    """Outputs and gradients of one forward (and backward, when `out_grads`) pass."""
    outs = [o.copy() for o in ex.forward(is_train=is_train, seed=SEED, **inputs)]
    if out_grads is None:
        return outs, {}
    ex.backward(out_grads)
    return outs, {k: v.copy() for k, v in ex.grad_dict.items()}


def check_backends_agree(symbol, dtype: str, inputs=None, backends=AGREE, **shapes):
    """Every backend's training outputs, gradients and inference outputs against the
    reference's, same arguments and seed. Returns the reference's (outputs, grads)."""
    inputs = inputs or {}
    ref = bind(symbol, "reference", dtype, **shapes)
    params = random_params(ref, skip=inputs)
    ref.copy_params_from(params)
    rng = np.random.default_rng(1)
    out_grads = [rng.standard_normal(o.shape).astype(dtype)
                 for o in ref.forward(is_train=False, **inputs)]
    want = run(ref, out_grads, **inputs)
    want_infer = run(ref, is_train=False, **inputs)[0]
    for name in backends:
        ex = bind(symbol, name, dtype, params, **shapes)
        outs, grads = run(ex, out_grads, **inputs)
        for k, (a, b) in enumerate(zip(outs, want[0])):
            np.testing.assert_allclose(a, b, err_msg=f"{name}: output {k}", **TOL[dtype])
        assert grads.keys() == want[1].keys(), name
        for arg, g in grads.items():
            np.testing.assert_allclose(g, want[1][arg], err_msg=f"{name}: d{arg}", **TOL[dtype])
        for k, (a, b) in enumerate(zip(run(ex, is_train=False, **inputs)[0], want_infer)):
            np.testing.assert_allclose(a, b, err_msg=f"{name}: infer {k}", **TOL[dtype])
    return want


def _head(ex, R, inputs) -> float:
    return sum(float(np.sum(o * r)) for o, r in
               zip(ex.forward(is_train=True, seed=SEED, **inputs), R))


def check_finite_differences(ex, inputs=None, skip=()):
    """Every gradient of `ex` (float64) along a random direction against central
    differences of the head sum_k <out_k, R_k>."""
    inputs = inputs or {}
    rng = np.random.default_rng(3)
    R = [rng.standard_normal(o.shape) for o in ex.forward(is_train=True, seed=SEED, **inputs)]
    ex.backward(R)
    grads = {k: v.copy() for k, v in ex.grad_dict.items() if k not in skip}
    assert grads
    for name, g in grads.items():
        assert np.any(g != 0), f"{name} got no gradient"
        v = rng.standard_normal(g.shape)
        x = ex.arg_dict[name]
        base = x.copy()
        x[:] = base + EPS * v
        up = _head(ex, R, inputs)
        x[:] = base - EPS * v
        down = _head(ex, R, inputs)
        x[:] = base
        np.testing.assert_allclose((up - down) / (2 * EPS), np.sum(g * v), rtol=1e-6,
                                   atol=1e-7, err_msg=name)


def check_export_roundtrip(ex, path, inputs=None):
    """`ex` exported and loaded with runtime alone: the same training outputs and gradients."""
    inputs = inputs or {}
    ex.export(path)
    loaded = runtime.load(path)
    rng = np.random.default_rng(2)
    R = [rng.standard_normal(o.shape).astype(o.dtype) for o in ex.forward(**inputs)]
    got, want = run(loaded, R, **inputs), run(ex, R, **inputs)
    for a, b in zip(got[0], want[0]):
        np.testing.assert_array_equal(a, b)
    for name in want[1]:
        np.testing.assert_array_equal(got[1][name], want[1][name], err_msg=name)
