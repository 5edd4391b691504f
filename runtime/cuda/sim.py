"""`backend='cuda-sim'`: the CUDA engine over a device that runs the emitted CUDA kernels on
the host, so that the CUDA rendering itself (its thread and block indexing, grid-stride
loops, in-place Philox draws, math) produces numbers without a GPU.

    >>> engine = sim_engine(program)          # runtime.cuda.CudaEngine on a SimDevice

`SimDevice` is runtime.cuda.recording.RecordingDevice (numpy memory behind fake pointers, every
call recorded and checked as a GPU would, GEMMs through its column-major cuBLAS stand-in,
CUDA graphs captured and replayed) with two changes:

- `load_kernels` compiles each kernel's `Kernel.cuda_source`, never its C rendering, as host
  C++ after the prelude `sim.h` (package data: `__global__`, `blockIdx`, the
  intrinsics, ...), cached by runtime.compile_cache like the C kernels. The prelude's text
  is put before the source, so it is part of the cache key. No fast-math flags: the host
  `expf`/`tanhf` are glibc's, which differ from nvcc's in the last bits only. A source using
  a construct that a thread-by-thread host run cannot honour (barriers, shared memory, warp
  shuffles, atomics, inline PTX) is refused with `SimUnsupported`.
- a launch calls the kernel once per thread of its whole grid, blocks and threads in a
  permuted order (`symrnn_sim_grid` in the prelude), on staged copies of its operand windows
  between guard bytes (GUARD_READ, GUARD_WRITTEN): a kernel that writes outside an output
  window (past its last column or row, or into the padding between rows), or into an input,
  is a `DeviceFault`, and one that reads outside a window reads NaN.
"""
from __future__ import annotations

import ctypes
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources

import numpy as np

from runtime.compile_cache import c_params, kernel_args, load_library
from runtime.cuda.recording import DeviceFault, RecordingDevice
from runtime.errors import CompileError
from runtime.program import Kernel

PRELUDE = "sim.h"
FLAGS = ("-x", "c++", "-std=c++17", "-O1", "-fPIC", "-shared", "-fno-exceptions", "-lm")
# Constructs with no faithful meaning when threads run one after another.
REFUSED = {
    "__syncthreads": "a block barrier", "__syncwarp": "a warp barrier",
    "__shared__": "shared memory", "__shfl": "a warp shuffle", "atomic": "an atomic",
    "__threadfence": "a memory fence", "cooperative_groups": "cooperative groups",
    "__ballot": "a warp vote", "asm": "inline PTX", "__ldg": "a read-only cache load",
}
GUARD = 256  # bytes around each staged window, beyond one row
# Guard bytes: NaN around what is only read (a read past the window poisons the result);
# around what is written a large finite number, so that a NaN written there shows.
GUARD_READ, GUARD_WRITTEN = 0xFF, 0x7F


class SimUnsupported(CompileError):
    """A CUDA kernel that the host simulation cannot run faithfully."""


def prelude() -> str:
    """The text of the prelude header shipped with the package."""
    return resources.files("runtime.cuda").joinpath(PRELUDE).read_text()


def refused_constructs(source: str) -> list:
    """The refused constructs that `source` uses, as `(word, what it is)`."""
    return [(w, what) for w, what in REFUSED.items()
            if re.search(rf"\b{w}\w*\b" if w != "asm" else r"\basm\s*(volatile\s*)?\(", source)]


def sim_source(kernel: Kernel) -> str:
    """The host C++ for `kernel`: the prelude, its CUDA source unchanged, and
    `NAME_sim_launch(dims, params...)`, which runs the kernel over the grid `dims[0:3]` of
    blocks `dims[3:6]`."""
    refused = refused_constructs(kernel.cuda_source)
    if refused:
        found = ", ".join(f"{w} ({what})" for w, what in refused)
        raise SimUnsupported(f"cuda-sim: kernel {kernel.name} uses {found}, which a host "
                             f"run cannot reproduce faithfully; it needs a GPU")
    names = ", ".join(a.name for a in kernel_args(kernel.n_in, kernel.n_out))
    launcher = (f'\nextern "C" void {kernel.name}_sim_launch(const unsigned int* dims, '
                f"{c_params(kernel.n_in, kernel.n_out)})\n{{\n"
                f"    symrnn_sim_grid(dim3(dims[0], dims[1], dims[2]), "
                f"dim3(dims[3], dims[4], dims[5]),\n"
                f"                    [&] {{ {kernel.name}({names}); }});\n}}\n")
    return (f"{prelude()}\n#line 1 \"{kernel.name}.cu\"\n{kernel.cuda_source}\n"
            f"#line 1 \"{kernel.name}_sim_launch\"{launcher}")


def load_sim_kernel(kernel: Kernel):
    """The compiled launcher of `kernel`'s CUDA rendering, argtypes set."""
    lib = load_library(sim_source(kernel), f"cuda-sim kernel {kernel.name}", FLAGS)
    fn = getattr(lib, f"{kernel.name}_sim_launch")
    fn.argtypes = [ctypes.c_void_p] + [a.ctype for a in kernel_args(kernel.n_in, kernel.n_out)]
    fn.restype = None
    return fn


@dataclass
class Staged:
    """A copy of one operand window's span, between guards, for one launch."""
    ptr: int
    ld: int
    span: np.ndarray  # the device bytes the window spans, rows padded to ld (a view)
    before: np.ndarray  # a copy of them before the launch
    buf: np.ndarray  # guard + span + guard
    written: bool = False

    @property
    def address(self) -> int:
        return self.buf.ctypes.data + self.guard

    @property
    def guard(self) -> int:
        return (self.buf.size - self.span.size) // 2

    def inside(self, item: int) -> np.ndarray:
        """The staged span after the launch, one row of `item` bytes per element."""
        return self.buf[self.guard:self.guard + self.span.size].reshape(-1, item)


class SimDevice(RecordingDevice):
    """runtime.cuda.Device that runs the CUDA rendering of each kernel on the host."""

    name = "cuda-sim (host)"

    def __init__(self):
        super().__init__(load_kernels=_load_all)

    def _do_launch(self, name: str, grid: tuple, block: tuple, args: tuple) -> None:
        kernel, fn, operands = self.checked_launch(name, grid, block, args)
        rows, cols = int(args[0]), int(args[1])
        item = np.dtype(kernel.dtype).itemsize
        staged = self._stage(operands, rows, cols, item, kernel.n_in)
        params = [rows, cols]
        for ptr, ld in operands:
            params += [staged[ptr, ld].address, ld]
        dims = np.array([*grid, *block], np.uint32)
        fn(dims.ctypes.data, *params, *self.control(kernel, args))
        for s in staged.values():
            _check_writes(name, s, rows, cols, item)
        for s in staged.values():  # windows only: the spans of interleaved windows overlap
            if s.written:
                window = _in_window(s.span.size // item, s.ld, cols)
                s.span.reshape(-1, item)[window] = s.inside(item)[window]

    def _stage(self, operands: list, rows: int, cols: int, item: int, n_in: int) -> dict:
        """{(ptr, ld): Staged}, one copy per distinct window (an output that is the same
        view as an input shares its copy, as on the GPU)."""
        written = set(operands[n_in:])
        staged = {}
        for ptr, ld in dict.fromkeys(operands):
            span = self.bytes_at(ptr, ((rows - 1) * ld + cols) * item)
            guard = -(-(GUARD + ld * item) // 64) * 64
            fill = GUARD_WRITTEN if (ptr, ld) in written else GUARD_READ
            buf = np.full(span.size + 2 * guard, fill, np.uint8)
            buf[guard:guard + span.size] = span
            staged[ptr, ld] = Staged(ptr, ld, span, span.copy(), buf, (ptr, ld) in written)
        return staged


def sim_engine(program, **options):
    """runtime.cuda.CudaEngine for `program` on a fresh SimDevice."""
    from runtime.cuda import CudaEngine

    return CudaEngine(program, device=SimDevice(), **options)


def _load_all(kernels: list) -> dict:
    kernels = list({k.name: k for k in kernels}.values())
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((k.name for k in kernels), pool.map(load_sim_kernel, kernels)))


def _check_writes(name: str, s: Staged, rows: int, cols: int, item: int) -> None:
    """DeviceFault where the kernel wrote a guard, the padding of an output's rows, or an
    input it does not also write."""
    g, n = s.guard, s.span.size
    fill = GUARD_WRITTEN if s.written else GUARD_READ
    if (s.buf[:g] != fill).any() or (s.buf[g + n:] != fill).any():
        raise DeviceFault(f"{name} wrote outside the {rows} x {cols} window at {s.ptr:#x} "
                          f"(ld {s.ld})")
    changed = (s.inside(item) != s.before.reshape(-1, item)).any(axis=1)
    if not s.written and changed.any():
        raise DeviceFault(f"{name} wrote into its input at {s.ptr:#x}")
    if (changed & ~_in_window(changed.size, s.ld, cols)).any():
        raise DeviceFault(f"{name} wrote into the padding between the rows of the "
                          f"{rows} x {cols} window at {s.ptr:#x} (ld {s.ld})")


def _in_window(n: int, ld: int, cols: int) -> np.ndarray:
    """Which of the `n` elements of a span with row stride `ld` are in the window."""
    if ld < cols:  # rows overlap (ld 0: one row read by every row)
        return np.ones(n, bool)
    return np.arange(n) % ld < cols
