"""The kernel cache: memory hits, disk hits across processes, keys, and its errors.

Kernels here are written by hand against `c_params`, so that these tests need only `runtime`.
"""
import ctypes
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from runtime import compile_cache as cc
from runtime.errors import BackendUnavailable, CompileError
from runtime.program import Kernel

ROOT = Path(__file__).resolve().parents[2]


def scale_kernel(factor: float = 2.0, name: str = "symrnn_test_scale") -> Kernel:
    source = textwrap.dedent(f"""\
        #include <stdint.h>
        typedef float real;
        void {name}({cc.c_params(1, 1)})
        {{
            for (long r = 0; r < rows; ++r)
                for (long c = 0; c < cols; ++c)
                    out0[r * ld_out0 + c] = ({factor}f) * in0[r * ld_in0 + c];
        }}
        """)
    return Kernel(name, source, "", n_in=1, n_out=1, n_masks=0, dtype="float32")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMRNN_CACHE_DIR", str(tmp_path))
    cc.clear_memory_cache()
    yield tmp_path
    cc.clear_memory_cache()


def call(fn, x: np.ndarray) -> np.ndarray:
    """`fn` over x (ld from its row stride: 0 for a broadcast row) into a fresh array."""
    rows, cols = x.shape
    y = np.zeros((rows, cols), np.float32)
    fn(rows, cols, x.ctypes.data, x.strides[0] // x.itemsize, y.ctypes.data, cols, None, None)
    return y


def test_argument_descriptors_give_both_signatures():
    args = cc.kernel_args(2, 1)
    assert [a.name for a in args] == ["rows", "cols", "in0", "ld_in0", "in1", "ld_in1",
                                      "out0", "ld_out0", "ctl", "masks"]
    assert cc.c_params(2, 1).startswith("long rows, long cols, const real* in0, long ld_in0")
    assert cc.c_params(2, 1).endswith("const uint64_t* ctl, const uint32_t* masks")
    fn = cc.load_kernel(scale_kernel())
    assert fn.argtypes == [a.ctype for a in cc.kernel_args(1, 1)] and fn.restype is None


def test_second_load_is_a_memory_hit(cache):
    k = scale_kernel()
    fn = cc.load_kernel(k)
    assert cc.load_kernel(k) is not None
    assert cc.cache_info() == cc.CacheInfo(compiles=1, disk_hits=0, memory_hits=1)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(call(fn, x), 2 * x)
    row = np.broadcast_to(x[1], (3, 4))
    np.testing.assert_array_equal(call(fn, row), 2 * np.array(row))
    assert not list(cache.glob("*.tmp")), "temporary files left behind"


def test_fresh_process_is_a_disk_hit(cache):
    cc.load_kernel(scale_kernel())
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from tests.runtime.test_compile_cache import scale_kernel
        from runtime import compile_cache as cc
        cc.load_kernel(scale_kernel())
        i = cc.cache_info()
        print(i.compiles, i.disk_hits, i.memory_hits)
        """)
    env = {**os.environ, "SYMRNN_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", script, str(ROOT)], env=env,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "1", "0"]


def test_source_and_flags_change_the_key(cache):
    tc = cc.toolchain()
    k = scale_kernel()
    assert tc.key(k.c_source, tc.flags) != tc.key(scale_kernel(3.0).c_source, tc.flags)
    assert tc.key(k.c_source, tc.flags) != tc.key(k.c_source, ("-O2", "-fPIC", "-shared"))
    other_cpu = cc.Toolchain(tc.command, tc.identity + "another CPU", tc.flags)
    assert tc.key(k.c_source, tc.flags) != other_cpu.key(k.c_source, tc.flags)
    cc.load_kernel(k)
    cc.load_kernel(scale_kernel(3.0))
    fn = cc.load_kernel(k, flags=("-O1", "-fPIC", "-shared"))
    assert cc.cache_info().compiles == 3
    assert len(list(cache.glob("*.so"))) == 3
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(call(fn, x), 2 * x)


def test_identity_names_compiler_version_and_cpu():
    identity = cc.toolchain().identity
    assert cc.toolchain().command[0] in identity
    version = subprocess.run([*cc.toolchain().command, "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert version in identity
    if Path("/proc/cpuinfo").exists():
        assert "model name" in identity or "Features" in identity or "flags" in identity


def test_missing_compiler_names_the_reference_backend(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(BackendUnavailable, match="backend='reference'"):
        cc.load_kernel(scale_kernel())


def test_broken_source_raises_compile_error_with_stderr_and_path(cache):
    k = Kernel("broken", "void broken(void) { this is not C; }", "", 0, 0, 0, "float32")
    with pytest.raises(CompileError) as err:
        cc.load_kernel(k)
    message = str(err.value)
    assert "error" in message and "broken" in message
    src = next(p for p in message.split() if p.endswith(".c"))
    assert Path(src).read_text() == k.c_source
    assert not list(cache.glob("*.so")) and not list(cache.glob("*.tmp"))


def test_corrupt_library_on_disk_is_rebuilt(cache):
    # Planted before any load: a library this process has mapped must never be rewritten.
    k, tc = scale_kernel(), cc.toolchain()
    (cache / f"{tc.key(k.c_source, tc.flags)}.so").write_bytes(b"not an ELF file")
    with pytest.warns(RuntimeWarning, match="kernel cache"):
        fn = cc.load_kernel(k)
    assert cc.cache_info().compiles == 1
    np.testing.assert_array_equal(call(fn, np.ones((1, 2), np.float32)), [[2, 2]])


def built_entry(cache, factor: float) -> Path:
    """A cache entry for scale_kernel(factor), built but never loaded by this process."""
    k, tc = scale_kernel(factor, f"symrnn_test_built{int(factor)}"), cc.toolchain()
    lib = cache / f"{tc.key(k.c_source, tc.flags)}.so"
    src = lib.with_suffix(".c")
    src.write_text(k.c_source)
    cc.compile_into(tc.command, src, lib, tc.flags, what="test")
    lib.with_suffix(".sha256").write_text(cc.file_sha(lib))
    return lib


@pytest.mark.parametrize("fault", ["truncated", "checksum", "no checksum", "flipped byte"])
def test_a_faulty_cache_entry_is_rebuilt_reported_once_and_never_loaded(cache, fault):
    factor = 3.0 + ["truncated", "checksum", "no checksum", "flipped byte"].index(fault)
    lib = built_entry(cache, factor)
    data = lib.read_bytes()
    if fault == "truncated":
        lib.write_bytes(data[:len(data) // 2])
    elif fault == "checksum":
        lib.with_suffix(".sha256").write_text("0" * 64)
    elif fault == "no checksum":
        lib.with_suffix(".sha256").unlink()
    else:  # a byte that dlopen would not notice: the checksum does
        lib.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    k = scale_kernel(factor, f"symrnn_test_built{int(factor)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = cc.load_kernel(k)
        cc.clear_memory_cache()
        cc.load_kernel(k)  # the rebuilt entry: a disk hit, no second report
    assert len([w for w in caught if "kernel cache" in str(w.message)]) == 1
    assert str(lib) in str(caught[0].message)
    assert cc.cache_info().disk_hits == 1
    assert cc.entry_problem(lib) is None
    np.testing.assert_array_equal(call(fn, np.ones((1, 2), np.float32)), [[factor, factor]])


def test_two_processes_compiling_the_same_kernel_both_succeed(cache):
    script = textwrap.dedent("""
        import sys, warnings
        sys.path.insert(0, sys.argv[1])
        warnings.simplefilter("error")
        import numpy as np
        from tests.runtime.test_compile_cache import call, scale_kernel
        from runtime import compile_cache as cc
        fn = cc.load_kernel(scale_kernel(7.0, "symrnn_test_race"))
        print(call(fn, np.ones((1, 3), np.float32)).tolist(), cc.cache_info().compiles)
        """)
    env = {**os.environ, "SYMRNN_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(ROOT)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), [err[-2000:] for _, err, _ in results]
    assert [out.rsplit(" ", 1)[0] for out, _, _ in results] == ["[[7.0, 7.0, 7.0]]"] * 3
    assert sum(int(out.split()[-1]) for out, _, _ in results) == 1  # one built, two hit it
    assert len(list(cache.glob("*.so"))) == 1 and not list(cache.glob("*.tmp"))


def test_load_kernels_compiles_each_once():
    kernels = [scale_kernel(float(f), f"symrnn_test_scale{f}") for f in range(1, 5)]
    fns = cc.load_kernels(kernels + kernels[:2])
    assert sorted(fns) == sorted(k.name for k in kernels)
    assert cc.cache_info().compiles == 4
    x = np.ones((2, 2), np.float32)
    for f, k in enumerate(kernels, start=1):
        np.testing.assert_array_equal(call(fns[k.name], x), f * x)


def test_probed_flags_are_cached_and_keep_denormals(cache):
    """Fast-math startup code (crtfastmath.o) would set FTZ/DAZ for the whole process."""
    flags = cc.toolchain().flags
    assert list(cache.glob("toolchain-*.txt"))
    assert "-ffast-math" not in flags and "-funsafe-math-optimizations" not in flags
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        import numpy as np
        from tests.runtime.test_compile_cache import scale_kernel
        from runtime import compile_cache as cc
        cc.load_kernel(scale_kernel())
        print(float(np.float32(1e-39) * np.float32(1)))
        """)
    env = {**os.environ, "SYMRNN_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", script, str(ROOT)], env=env,
                          capture_output=True, text=True, check=True)
    assert float(done.stdout) > 0


def test_arguments_travel_as_addresses():
    fn = cc.load_kernel(scale_kernel())
    x = np.full((2, 5), 3.0, np.float32)
    y = np.zeros_like(x)
    fn(ctypes.c_long(2), 5, x.ctypes.data, 5, ctypes.c_void_p(y.ctypes.data), 5, 0, 0)
    np.testing.assert_array_equal(y, 6.0)
