"""Running a program leaves the process's floating-point state as it was (issue 17).

Kernels are built with fast-math flags, which with some compilers link code that sets FTZ
and DAZ in MXCSR when the library loads; a kernel could also change the rounding mode. Both
are read before and after compiling, loading and running forward and backward programs:
MXCSR through a tiny compiled C helper (x86-64 only), the rounding mode via libm's
`fegetround`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
import shutil
import subprocess

import numpy as np
import pytest

import symrnn as sym

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
MXCSR_C = "unsigned symrnn_test_mxcsr(void) { return __builtin_ia32_stmxcsr(); }\n"
FTZ, DAZ = 1 << 15, 1 << 6


@pytest.fixture(scope="module")
def mxcsr(tmp_path_factory):
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("MXCSR is x86-64's")
    d = tmp_path_factory.mktemp("mxcsr")
    (d / "m.c").write_text(MXCSR_C)
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(d / "m.so"), str(d / "m.c")],
                   check=True)
    fn = ctypes.CDLL(str(d / "m.so")).symrnn_test_mxcsr
    fn.restype = ctypes.c_uint
    return fn


def fegetround():
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    return libm.fegetround()


def run_programs(typ: str, dtype: str, fuse: bool):
    rnn = sym.RNNFactory(num_hidden=[3, 2], data_dim=2, typ=typ, dropout=0.2, zoneout=0.1,
                         name=f"fp{typ}")
    parts = rnn.step(sym.Variable("data"), seq_len=3, ret_typ="all")
    ex = sym.Group([parts[0][-1], *parts[1]]).simple_bind(dtype=dtype, fuse=fuse,
                                                          data=(3, 2, 2))
    rng = np.random.default_rng(0)
    ex.copy_params_from({n: rng.standard_normal(v.shape).astype(dtype)
                         for n, v in ex.arg_dict.items()})
    outs = ex.forward(is_train=True)
    ex.backward([np.full(o.shape, 1e-39, dtype) for o in outs])  # subnormal head gradients
    ex.forward(is_train=False)


@needs_cc
@pytest.mark.parametrize("typ, dtype, fuse", [("lstm", "float32", True),
                                              ("gru", "float64", False)])
def test_fp_state_is_unchanged(mxcsr, typ, dtype, fuse):
    before = (mxcsr(), fegetround())
    run_programs(typ, dtype, fuse)
    after = (mxcsr(), fegetround())
    assert after[0] & (FTZ | DAZ) == before[0] & (FTZ | DAZ), f"MXCSR {before[0]:#x} -> " \
                                                              f"{after[0]:#x} (FTZ/DAZ)"
    assert after[0] & 0xFF80 == before[0] & 0xFF80, "MXCSR control bits changed"
    assert after[1] == before[1], "rounding mode changed"


@needs_cc
def test_subnormals_survive_in_numpy_after_a_program(mxcsr):
    run_programs("lstm", "float32", True)
    tiny = np.float32(1e-39)  # subnormal: flushed to zero if FTZ/DAZ were left on
    assert tiny * np.float32(1.0) != 0
