"""Compile C kernels with the system compiler, cache them on disk and in memory, load them.

One argument-descriptor list, `kernel_args(n_in, n_out)`, yields both the C parameter list
the renderer writes (`c_params`) and the ctypes signature `load_kernel` sets: the two cannot
drift apart. Pointers travel as plain addresses (`c_void_p` accepts ints), so an executor
passes `arena_base + offset * itemsize` without building ctypes objects per launch.

Flags. Transcendentals must vectorize (DESIGN.md section 5). What was found with GCC 12.2 and
glibc 2.36 on x86-64:

- glibc's `math-vector.h` declares the libmvec variants (`_ZGVdN8v_tanhf`, ...) only when
  `__FAST_MATH__` is defined, and GCC defines it only for the full `-ffast-math`:
  `-ffast-math -fno-finite-math-only` compiles `tanhf` as a scalar call inside the simd loop
  (`nm` shows no `_ZGV` symbol). The renderer's prelude therefore declares
  `#pragma omp declare simd notinbranch` itself when `SYMRNN_LIBMVEC` is defined; with it
  `nm` shows `_ZGVdN8v_tanhf` (`_ZGVeN16v_tanhf` with 512-bit vectors) and a tanh/sigmoid
  kernel over 64x2048 floats runs about 10-20x faster than the scalar `-O2` build.
- GCC 12 at -O3 follows each vectorized loop with a vectorized epilogue for the last few
  columns, which made up a third of a kernel's compile time; `SHORT_FLAGS` leaves it out (the
  remainder of a row runs scalar: the rows of an RNN are mostly multiples of the vector).
- GCC's tuning for AVX-512 CPUs prefers 256-bit vectors; `-mprefer-vector-width=512` made the
  same kernel about 2x faster again on the Cascade Lake development machine, where numpy's
  BLAS runs AVX-512 anyway. The probe drops it where the compiler does not know it.
- `-ffast-math` (and `-funsafe-math-optimizations`) make GCC < 13 link `crtfastmath.o` even
  into a shared object; loading it sets FTZ/DAZ for the whole process, and numpy then flushes
  denormals to zero (seen: `np.float32(1e-39) * 1 == 0` after `ctypes.CDLL`). So the flags
  spell out fast-math's parts instead, leaving out `-ffinite-math-only` so that NaN and Inf
  propagate (tested) and `-funsafe-math-optimizations` so that no FTZ startup code is linked.

The toolchain probe compiles one simd `tanhf` loop with `-Wl,-z,defs -lmvec` and falls back to
fewer flags if the compiler refuses; its answer is cached next to the kernels.

Cache key: sha256 of the source, the flags, the compiler's path and `--version`, and the host
CPU (model name and flags from /proc/cpuinfo, because of `-march=native`). Each entry on disk is
`KEY.so` with `KEY.sha256` (the `.so`'s SHA-256): a truncated or changed library fails the
check and is rebuilt, never loaded; `KEY.lock` serializes processes building the same entry.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from runtime.cache_entry import (
    checksum_path,
    compile_into,
    entry_problem,
    file_lock,
    file_sha,
    write_atomic,
)
from runtime.errors import BackendUnavailable, CompileError
from runtime.program import Kernel

FAST_FLAGS = (
    "-O3", "-march=native", "-fPIC", "-shared", "-fopenmp-simd",
    "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros",
    "-fassociative-math", "-freciprocal-math",
)
WIDE_FLAGS = ("-mprefer-vector-width=512",)
# No vectorized epilogue after a vectorized loop (the rest of a row runs scalar): a third of
# the kernels' compile time (the nine of a 2-layer LSTM: 0.95 s of CPU against 1.3, GCC 12).
SHORT_FLAGS = ("--param=vect-epilogues-nomask=0",)
PORTABLE_FLAGS = ("-O3", "-fPIC", "-shared")
MVEC_FLAGS = ("-DSYMRNN_LIBMVEC", "-lmvec", "-lm")
# Best first; the probe takes the first that this compiler accepts.
FLAG_LADDER = (
    FAST_FLAGS + WIDE_FLAGS + SHORT_FLAGS + MVEC_FLAGS,
    FAST_FLAGS + WIDE_FLAGS + MVEC_FLAGS,
    FAST_FLAGS + MVEC_FLAGS,
    FAST_FLAGS + ("-lm",),
    PORTABLE_FLAGS + ("-lm",),
)


@dataclass(frozen=True)
class Arg:
    """One kernel parameter: its C declaration (over the prelude's `real`) and ctypes type."""
    name: str
    c_type: str
    ctype: type


def kernel_args(n_in: int, n_out: int) -> list[Arg]:
    """The parameters of every elementwise kernel, in order:
    `rows, cols, (in_k, ld_in_k) * n_in, (out_k, ld_out_k) * n_out, ctl, masks`."""
    long, ptr = ctypes.c_long, ctypes.c_void_p
    args = [Arg("rows", "long", long), Arg("cols", "long", long)]
    for k in range(n_in):
        args += [Arg(f"in{k}", "const real*", ptr), Arg(f"ld_in{k}", "long", long)]
    for k in range(n_out):
        args += [Arg(f"out{k}", "real*", ptr), Arg(f"ld_out{k}", "long", long)]
    return args + [Arg("ctl", "const uint64_t*", ptr), Arg("masks", "const uint32_t*", ptr)]


def c_params(n_in: int, n_out: int) -> str:
    """`long rows, long cols, const real* in0, long ld_in0, ...` for the renderer."""
    return ", ".join(f"{a.c_type} {a.name}" for a in kernel_args(n_in, n_out))


@dataclass
class CacheInfo:
    compiles: int = 0
    disk_hits: int = 0
    memory_hits: int = 0


@dataclass(frozen=True)
class Toolchain:
    command: tuple  # the compiler command, e.g. ("/usr/bin/cc",)
    identity: str  # path, `--version` output and host CPU: what the binaries depend on
    flags: tuple  # the flags the probe settled on

    def key(self, source: str, flags: tuple) -> str:
        parts = (source, "\0".join(flags), self.identity)
        return hashlib.sha256("\0\0".join(parts).encode()).hexdigest()


_info = CacheInfo()
_libs: dict[str, ctypes.CDLL] = {}
_toolchains: dict[str, Toolchain] = {}
_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}


def cache_dir() -> Path:
    """`SYMRNN_CACHE_DIR`, else `~/.cache/symrnn` (or under `XDG_CACHE_HOME`)."""
    if os.environ.get("SYMRNN_CACHE_DIR"):
        return Path(os.environ["SYMRNN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symrnn"


def cache_info() -> CacheInfo:
    """Counters since the process started (or since `clear_memory_cache`)."""
    return CacheInfo(_info.compiles, _info.disk_hits, _info.memory_hits)


def clear_memory_cache() -> None:
    """Forget loaded libraries and zero the counters; the disk cache stays."""
    global _info
    with _lock:
        _libs.clear()
        _toolchains.clear()
        _info = CacheInfo()


def toolchain() -> Toolchain:
    """The C compiler (`CC`, else `cc`, else `gcc`) with its identity and probed flags."""
    cc = os.environ.get("CC", "")
    with _lock:
        if cc not in _toolchains:
            _toolchains[cc] = _find_toolchain(cc)
        return _toolchains[cc]


def load_kernel(kernel: Kernel, flags: tuple | None = None):
    """The compiled C function of `kernel`, with argtypes set; compiles at most once. Its
    `task` attribute is the address of `NAME_task` (codegen.render), or None.

    `flags` replaces the probed flags (benchmarks compare builds with it).
    """
    tc = toolchain()
    flags = tc.flags if flags is None else tuple(flags)
    key = tc.key(kernel.c_source, flags)
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        lib = _libs.get(key)
        if lib is not None:
            _count("memory_hits")
        else:
            lib = _libs[key] = _load_or_compile(tc, kernel.c_source, flags, key,
                                                what=f"kernel {kernel.name}")
    return _function(lib, kernel)


def _function(lib: ctypes.CDLL, kernel: Kernel):
    fn = getattr(lib, kernel.name)
    fn.argtypes = [a.ctype for a in kernel_args(kernel.n_in, kernel.n_out)]
    fn.restype = None
    task = getattr(lib, f"{kernel.name}_task", None)  # the rows of one pool task
    fn.task = ctypes.cast(task, ctypes.c_void_p).value if task is not None else None
    return fn


def load_kernels(kernels, flags: tuple | None = None) -> dict:
    """`{name: function}` for several kernels. Those rendered over the same prelude
    (runtime.render) that are not in memory are built together, BUNDLE at a time, as one
    library: one compiler run pays the process start and the prelude's parse once (for the
    nine kernels of a 2-layer LSTM, 0.6 s of CPU against 1.2 one by one). A bundle is
    cached under the hash of its joined source; each kernel in it is then a memory hit for
    `load_kernel`. The bundles (and any other kernel) compile in parallel."""
    kernels = list({k.name: k for k in kernels}.values())
    tc = toolchain()
    flags = tc.flags if flags is None else tuple(flags)
    jobs = [[k] for k in kernels]
    if len(kernels) > 1:
        jobs = _bundles([k for k in kernels if tc.key(k.c_source, flags) not in _libs])
        jobs += [[k] for k in kernels if tc.key(k.c_source, flags) in _libs]
    if len(jobs) < 2:  # no pool for one job (a loaded artifact's are often in memory)
        return {n: fn for job in jobs for n, fn in _load_job(job, flags).items()}
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        return {n: fn for found in pool.map(lambda j: _load_job(j, flags), jobs)
                for n, fn in found.items()}


BUNDLE = 16  # kernels in one library at most: larger sets still use every core


def _bundles(kernels: list) -> list:
    """`kernels` in lists: those that share their dtype's prelude in bundles, by name."""
    from runtime.render import CRenderer  # the renderer imports this module

    groups: dict = {}
    for k in sorted(kernels, key=lambda k: k.name):
        prelude = CRenderer().prelude(k.dtype) if k.dtype in ("float32", "float64") else None
        shared = prelude is not None and k.c_source.startswith(prelude)
        groups.setdefault(prelude if shared else k.name, []).append(k)
    return [g[i:i + BUNDLE] for g in groups.values() for i in range(0, len(g), BUNDLE)]


def _load_job(kernels: list, flags: tuple) -> dict:
    """`{name: function}` of one kernel, or of a bundle (see load_kernels)."""
    if len(kernels) == 1:
        return {kernels[0].name: load_kernel(kernels[0], flags)}
    from runtime.render import CRenderer

    prelude = CRenderer().prelude(kernels[0].dtype)
    source = prelude + "".join(k.c_source[len(prelude):] for k in kernels)
    tc = toolchain()
    key = tc.key(source, flags)
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        lib = _libs.get(key)
        if lib is None:
            what = f"kernels {', '.join(k.name for k in kernels)}"
            lib = _libs[key] = _load_or_compile(tc, source, flags, key, what)
    with _lock:
        for k in kernels:
            _libs.setdefault(tc.key(k.c_source, flags), lib)
    return {k.name: _function(lib, k) for k in kernels}


def _count(name: str) -> None:
    with _lock:
        setattr(_info, name, getattr(_info, name) + 1)


def load_library(source: str, what: str, flags: tuple | None = None) -> ctypes.CDLL:
    """The shared library built from C `source` (a runtime helper, not a kernel), cached like
    the kernels; `what` names it in errors."""
    tc = toolchain()
    flags = tc.flags if flags is None else tuple(flags)
    key = tc.key(source, flags)
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        if key not in _libs:
            _libs[key] = _load_or_compile(tc, source, flags, key, what)
        return _libs[key]


def _load_or_compile(tc: Toolchain, source: str, flags: tuple, key: str,
                     what: str) -> ctypes.CDLL:
    """The library of `key` from the disk cache, or compiled into it. An entry is its `.so`
    and a `.sha256` of the `.so`'s bytes; one that is truncated, changed or half-written is
    never loaded: it is rebuilt and reported once (a RuntimeWarning). A lock file serializes
    processes that want the same entry, so two compiling at once both succeed."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lib_path = folder / f"{key}.so"
    with file_lock(folder / f"{key}.lock"):
        problem = entry_problem(lib_path)
        if problem is None:
            try:
                lib = ctypes.CDLL(str(lib_path))
                _count("disk_hits")
                return lib
            except OSError as e:
                problem = f"cannot be loaded ({e})"
        if problem != "missing":
            _report(lib_path, problem)
        src_path = folder / f"{key}.c"
        write_atomic(src_path, source)
        compile_into(tc.command, src_path, lib_path, flags, what=what)
        write_atomic(checksum_path(lib_path), file_sha(lib_path))
        _count("compiles")
        return ctypes.CDLL(str(lib_path))


_reported: set = set()


def _report(lib_path: Path, problem: str) -> None:
    """One warning per entry and process."""
    with _lock:
        if lib_path in _reported:
            return
        _reported.add(lib_path)
    warnings.warn(f"kernel cache: {lib_path} {problem}; rebuilding it", RuntimeWarning,
                  stacklevel=4)


def _find_toolchain(cc: str) -> Toolchain:
    command = shlex.split(cc) or [shutil.which("cc") or shutil.which("gcc") or "cc"]
    path = shutil.which(command[0])
    if path is None:
        raise BackendUnavailable(
            f"backend 'cpu' needs a C compiler, but {command[0]!r} was not found "
            f"(set CC to one, or use backend='reference')")
    command[0] = path
    version = subprocess.run([*command, "--version"], capture_output=True, text=True,
                             check=False).stdout
    identity = "\0".join([shlex.join(command), version, _host_cpu()])
    tc = Toolchain(tuple(command), identity, ())
    return Toolchain(tc.command, identity, _probe_flags(tc))


def _host_cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU part")
    found = {ln.split(":")[0].strip(): ln for ln in lines if ln.startswith(wanted)}
    return "\n".join(sorted(found.values())) or platform.machine()


PROBE_SOURCE = """
#include <math.h>
#pragma omp declare simd notinbranch
float tanhf(float);
void symrnn_probe(long n, const float* x, float* y)
{
#pragma omp simd
    for (long i = 0; i < n; ++i) y[i] = tanhf(x[i]);
}
"""


def _probe_flags(tc: Toolchain) -> tuple:
    """The fastest flag set this compiler accepts; the answer is cached on disk."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"toolchain-{tc.key(PROBE_SOURCE, sum(FLAG_LADDER, ()))[:32]}.txt"
    if record.exists():
        return tuple(record.read_text().split())
    src = folder / f"probe-{os.getpid()}-{threading.get_ident()}.c"
    write_atomic(src, PROBE_SOURCE)
    out = src.with_suffix(".so")
    errors = []
    try:
        for flags in FLAG_LADDER:
            try:
                compile_into(tc.command, src, out, flags + ("-Wl,-z,defs",), what="toolchain probe")
            except CompileError as e:
                errors.append(str(e))
                continue
            write_atomic(record, " ".join(flags))
            return flags
    finally:
        for p in (src, out):
            p.unlink(missing_ok=True)
    raise BackendUnavailable(
        "backend 'cpu': the C compiler cannot build a shared library (use backend='reference'):"
        "\n" + "\n".join(errors))
