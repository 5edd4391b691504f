"""The accuracy contract of the CPU kernels' inline float32 sigmoid and tanh (codegen.render,
README "Backends"), checked through the cpu backend against float64 numpy at the edges: large
|x|, the subnormal range, 0, NaN and +-Inf, on a vectorized run and on a short (scalar tail)
one, fused and unfused."""

import numpy as np
import pytest

import symrnn as sym

TINY = float(np.finfo(np.float32).tiny)  # 2**-126, the smallest normal float32
ULPS = {"sigmoid": 3, "tanh": 2}  # relative bound, in ulp of the float32 result
ABS = 2.0 ** -23  # absolute bound, both functions (their values lie in [-1, 1])
SIGMOID_NORMAL_FROM = -87.3  # sigmoid(x) >= TINY from here up
SIGMOID_ZERO_BELOW = -88.4  # e^-x overflows float32: sigmoid is 0 below this


def _cpu(x: np.ndarray, fuse=True):
    v = sym.Variable("x")
    heads = sym.Group([sym.sigmoid(v, name="s"), sym.tanh(v, name="t")])
    ex = heads.simple_bind(backend="cpu", grad_req="null", fuse=fuse, x=x.shape)
    s, t = ex.forward(x=x)
    return {"sigmoid": s, "tanh": t}


def _truth(x: np.ndarray) -> dict:
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return {"sigmoid": 1.0 / (1.0 + np.exp(-x64)), "tanh": np.tanh(x64)}


def _edges() -> np.ndarray:
    grid = [np.linspace(-100, 100, 40001), np.linspace(-105, -85, 8001),
            np.linspace(-1e-3, 1e-3, 401), np.linspace(8, 12, 401), np.linspace(-12, -8, 401)]
    points = [0.0, 1e-30, -1e-30, 1e-40, -1e-40, 2.0 ** -149, -88.8, -87.3, -88.4, 88.8,
              3e38, -3e38, np.finfo(np.float32).max, -np.finfo(np.float32).max]
    return np.concatenate(grid + [points]).astype(np.float32)


@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_error_bounds_on_finite_inputs(fn):
    x = _edges()
    got, ref = _cpu(x)[fn].astype(np.float64), _truth(x)[fn]
    err = np.abs(got - ref)
    assert err.max() <= ABS
    normal = np.abs(ref) >= TINY
    ulp = np.spacing(np.abs(ref[normal]).astype(np.float32)).astype(np.float64)
    assert (err[normal] / ulp).max() <= ULPS[fn]
    assert (err[~normal] < TINY).all()  # subnormal results: off by less than the smallest normal


def test_sigmoid_in_the_subnormal_range():
    x = np.linspace(-110, SIGMOID_NORMAL_FROM, 2001).astype(np.float32)
    got, ref = _cpu(x)["sigmoid"], _truth(x)["sigmoid"]
    assert (got >= 0).all() and (np.abs(got - ref) < TINY).all()
    assert (got[x < SIGMOID_ZERO_BELOW] == 0).all()  # e.g. 0 at -88.8, where the truth is 2.7e-39
    assert got[np.argmin(np.abs(x + 88.8))] == 0 and 2e-39 < 1 / (1 + np.exp(88.8)) < 3e-39
    assert (got[x >= -87.3] >= TINY).all()


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("size", [7, 20000])
def test_nan_inf_and_zero(fuse, size):
    x = np.zeros(size, np.float32)
    specials = {1: np.nan, 2: np.inf, 3: -np.inf, 4: 0.0, size - 1: np.nan, size - 2: -0.0}
    for i, v in specials.items():
        x[i] = v
    out = _cpu(x, fuse)
    s, t = out["sigmoid"], out["tanh"]
    assert np.isnan(s[[1, size - 1]]).all() and np.isnan(t[[1, size - 1]]).all()
    assert s[2] == 1 and s[3] == 0 and t[2] == 1 and t[3] == -1
    assert s[4] == 0.5 and s[size - 2] == 0.5 and t[4] == 0 and t[size - 2] == 0  # sign of 0 free
    assert np.isfinite(np.delete(s, [1, size - 1])).all()
