"""A `Device` without a GPU, for testing the CUDA engine's host logic.

`RecordingDevice` keeps "device memory" as numpy byte arrays behind fake pointers (allocations
far apart, so that a pointer past the end of one lands in none), records every call in
`calls`, and carries each call out with numpy, checking it as the GPU would:

- `launch`: the grid and block within CUDA's limits; the arguments exactly those of
  runtime.compile_cache.kernel_args (numpy int64 for `long`, uintp for pointers); every
  operand window `(rows, cols, ld)` aligned and inside one allocation; outputs overlapping no
  other operand except the identical view (the GPU's threads would race). Then the kernel's
  C rendering (`Kernel.c_source`, compiled by runtime.compile_cache) is called with the host
  addresses that the fake pointers stand for. runtime.cuda.sim.SimDevice keeps these checks
  and runs the CUDA rendering instead.
- `gemm`, `geam`: the pointers and leading dimensions are read as column-major matrices,
  exactly as cuBLAS reads them (element `(i, j)` at `ptr + (i + j * ld) * itemsize`, with
  `ld >= max(1, rows)`), never as the row-major product the engine meant: what is tested is the
  engine's mapping. `beta == 0` does not read C, as in cuBLAS.
- graphs: calls between `begin_capture` and `end_capture` are recorded into the graph and not
  run; `launch_graph` runs them. A memcpy while capturing is an error, as on a GPU.

(A stand-in libcublas in C, for testing the ctypes binding of runtime.cuda.cublas without a
GPU, is test-only: tests/runtime/fake_cublas.c.)
"""
from __future__ import annotations

import bisect

import numpy as np

from runtime.compile_cache import kernel_args
from runtime.cuda.commands import PACK

MAX_THREADS, MAX_GRID_X, MAX_GRID_YZ = 1024, 2**31 - 1, 65535


class DeviceFault(RuntimeError):
    """What would be a crash, a race or a cuBLAS error on a GPU."""


class RecordingDevice:
    BASE = 0x7F00_0000_0000
    GAP = 1 << 24

    def __init__(self, load_kernels=None):
        self.calls: list = []
        self.graphs: list = []
        self._mem: dict = {}
        self._bases: list = []
        self._next = self.BASE
        self._kernels: dict = {}
        self._load = load_kernels
        self._capture = None

    # ---- memory -------------------------------------------------------------------------------
    def alloc(self, nbytes: int) -> int:
        base = self._next
        self._next += -(-nbytes // 256) * 256 + self.GAP
        self._mem[base] = np.full(nbytes, 0xFF, np.uint8)  # NaN as floats: unwritten shows
        bisect.insort(self._bases, base)
        self.calls.append(("alloc", nbytes, base))
        return base

    def free(self, ptr: int) -> None:
        if ptr not in self._mem:
            raise DeviceFault(f"free of {ptr:#x}, which is not an allocation")
        del self._mem[ptr]
        self._bases.remove(ptr)
        self.calls.append(("free", ptr))

    def bytes_at(self, ptr: int, nbytes: int) -> np.ndarray:
        """The `nbytes` at `ptr`, as a writable uint8 view; DeviceFault outside allocations."""
        i = bisect.bisect_right(self._bases, ptr) - 1
        base = self._bases[i] if i >= 0 else None
        if base is None or ptr - base + nbytes > self._mem[base].size:
            raise DeviceFault(f"{nbytes} bytes at {ptr:#x} are not inside one allocation")
        return self._mem[base][ptr - base:ptr - base + nbytes]

    def array_at(self, ptr: int, dtype, count: int) -> np.ndarray:
        return self.bytes_at(ptr, count * np.dtype(dtype).itemsize).view(dtype)

    def memcpy_htod(self, ptr: int, host: np.ndarray) -> None:
        self._no_capture("memcpy_htod")
        self.calls.append(("memcpy_htod", ptr, host.nbytes))
        self.bytes_at(ptr, host.nbytes)[:] = np.ascontiguousarray(host).reshape(-1).view(np.uint8)

    def memcpy_dtoh(self, host: np.ndarray, ptr: int) -> None:
        self._no_capture("memcpy_dtoh")
        if not host.flags.c_contiguous:
            raise DeviceFault("memcpy_dtoh into a non-contiguous host array")
        self.calls.append(("memcpy_dtoh", ptr, host.nbytes))
        host.reshape(-1).view(np.uint8)[:] = self.bytes_at(ptr, host.nbytes)

    # ---- work -----------------------------------------------------------------------------------
    def load_kernels(self, kernels: list) -> None:
        if self._load is None:
            from runtime.compile_cache import load_kernels as load  # needs a C compiler
        else:
            load = self._load
        fns = load(kernels) if kernels else {}
        self._kernels.update({k.name: (k, fns[k.name]) for k in kernels})
        self.calls.append(("load_kernels", tuple(k.name for k in kernels)))

    def launch(self, kernel: str, grid: tuple, block: tuple, args: tuple) -> None:
        self._call("launch", kernel, tuple(grid), tuple(block), tuple(args))

    def gemm(self, *args) -> None:
        self._call("gemm", *args)

    def geam(self, *args) -> None:
        self._call("geam", *args)

    def begin_capture(self) -> None:
        if self._capture is not None:
            raise DeviceFault("begin_capture while capturing")
        self._capture = []
        self.calls.append(("begin_capture",))

    def end_capture(self) -> int:
        if self._capture is None:
            raise DeviceFault("end_capture without begin_capture")
        self.graphs.append(tuple(self._capture))
        self._capture = None
        self.calls.append(("end_capture", len(self.graphs) - 1))
        return len(self.graphs) - 1

    def launch_graph(self, graph: int) -> None:
        self._no_capture("launch_graph")
        self.calls.append(("launch_graph", graph))
        for name, args in self.graphs[graph]:
            getattr(self, f"_do_{name}")(*args)

    def count(self, name: str) -> int:
        return sum(c[0] == name for c in self.calls)

    def _call(self, name: str, *args) -> None:
        self.calls.append((name, *args))
        if self._capture is not None:
            self._capture.append((name, args))
        else:
            getattr(self, f"_do_{name}")(*args)

    def _no_capture(self, what: str) -> None:
        if self._capture is not None:
            raise DeviceFault(f"{what} while a stream capture is under way")

    # ---- carrying calls out ---------------------------------------------------------------------
    def _do_launch(self, name: str, grid: tuple, block: tuple, args: tuple) -> None:
        kernel, fn, operands = self.checked_launch(name, grid, block, args)
        rows, cols, item = int(args[0]), int(args[1]), np.dtype(kernel.dtype).itemsize
        host = [rows, cols]
        for ptr, ld in operands:
            host += [self.bytes_at(ptr, ((rows - 1) * ld + cols) * item).ctypes.data, ld]
        fn(*host, *self.control(kernel, args))

    def checked_launch(self, name: str, grid: tuple, block: tuple, args: tuple) -> tuple:
        """(kernel, function, operands `[(ptr, ld)]`) of a launch that passes the GPU's
        checks: grid and block limits, argument types, aligned windows inside one allocation,
        no races between outputs and other operands."""
        if name not in self._kernels:
            raise DeviceFault(f"launch of {name}, which was not loaded")
        kernel, fn = self._kernels[name]
        if len(block) != 3 or min(block) < 1 or int(np.prod(block)) > MAX_THREADS:
            raise DeviceFault(f"{name}: invalid block {block}")
        if len(grid) != 3 or min(grid) < 1 or grid[0] > MAX_GRID_X or max(grid[1:]) > MAX_GRID_YZ:
            raise DeviceFault(f"{name}: invalid grid {grid}")
        params = kernel_args(kernel.n_in, kernel.n_out)
        if len(args) != len(params):
            raise DeviceFault(f"{name} takes {len(params)} arguments, given {len(args)}")
        for p, a in zip(params, args):
            if type(a) is not PACK[p.ctype]:
                raise DeviceFault(f"{name}: {p.name} must be {PACK[p.ctype].__name__}, given "
                                  f"{type(a).__name__}")
        rows, cols, item = int(args[0]), int(args[1]), np.dtype(kernel.dtype).itemsize
        operands = [(int(args[i]), int(args[i + 1])) for i in range(2, len(args) - 2, 2)]
        _check_races(name, operands, rows, cols, item, kernel.n_in)
        for ptr, ld in operands:
            if ptr % item:
                raise DeviceFault(f"{name}: pointer {ptr:#x} is not aligned to {item} bytes")
            self.bytes_at(ptr, ((rows - 1) * ld + cols) * item)  # inside one allocation
        return kernel, fn, operands

    def control(self, kernel, args: tuple) -> list:
        """Host addresses of a launch's control block and mask ids."""
        return [self.bytes_at(int(args[-2]), 16).ctypes.data,
                self.bytes_at(int(args[-1]), 4 * max(1, kernel.n_masks)).ctypes.data]

    def _do_gemm(self, dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        A = self._colmajor(a, (m, k) if transa == "N" else (k, m), lda, dtype, transa)
        B = self._colmajor(b, (k, n) if transb == "N" else (n, k), ldb, dtype, transb)
        C = self._colmajor(c, (m, n), ldc, dtype)
        out = _elements(c, n, m, ldc, C.itemsize)  # column j of C is "row" j at stride ldc
        for ptr, (cols, rows), ld in ((a, A.shape, lda), (b, B.shape, ldb)):
            if np.intersect1d(out, _elements(ptr, rows, cols, ld, C.itemsize)).size:
                raise DeviceFault("gemm: C overlaps an input")
        product = (A if transa == "N" else A.T) @ (B if transb == "N" else B.T)
        C[...] = alpha * product + (beta * C if beta else 0)

    def _do_geam(self, dtype, transa, transb, m, n, alpha, a, lda, beta, b, ldb, c, ldc):
        A = self._colmajor(a, (m, n) if transa == "N" else (n, m), lda, dtype, transa)
        C = self._colmajor(c, (m, n), ldc, dtype)
        result = alpha * (A if transa == "N" else A.T)
        if beta:
            B = self._colmajor(b, (m, n) if transb == "N" else (n, m), ldb, dtype, transb)
            result = result + beta * (B if transb == "N" else B.T)
        C[...] = result

    def _colmajor(self, ptr, shape, ld, dtype, op="N") -> np.ndarray:
        """The column-major `rows x cols` matrix cuBLAS sees at `ptr` with leading dim `ld`."""
        rows, cols = shape
        item = np.dtype(dtype).itemsize
        if op not in ("N", "T") or min(rows, cols) < 0 or ld < max(1, rows):
            raise DeviceFault(f"cuBLAS would refuse op={op} {rows}x{cols} with ld={ld}")
        if ptr % item:
            raise DeviceFault(f"pointer {ptr:#x} is not aligned to {item} bytes")
        nbytes = ((cols - 1) * ld + rows) * item if rows and cols else 0
        buf = self.bytes_at(ptr, nbytes) if nbytes else np.empty(0, np.uint8)
        return np.ndarray((rows, cols), dtype, buf, 0, (item, ld * item))


def _elements(ptr: int, rows: int, cols: int, ld: int, item: int) -> np.ndarray:
    """Byte addresses of the elements of a row-major window."""
    starts = ptr + np.arange(rows, dtype=np.int64)[:, None] * ld * item
    return np.unique(starts + np.arange(cols, dtype=np.int64)[None, :] * item)


def _check_races(name: str, operands: list, rows: int, cols: int, item: int,
                 n_in: int) -> None:
    """DeviceFault where an output shares an element with another operand (the identical
    view of an input excepted). Element sets are compared only where the byte spans meet."""
    spans = [(p, p + max(0, (rows - 1) * ld + cols) * item) for p, ld in operands]
    for o in range(n_in, len(operands)):
        for i in range(len(operands)):
            if i == o or (operands[i] == operands[o] and i < n_in):
                continue
            (po, ldo), (pi, ldi) = operands[o], operands[i]
            meet = spans[o][0] < spans[i][1] and spans[i][0] < spans[o][1]
            if meet and np.intersect1d(_elements(po, rows, cols, ldo, item),
                                       _elements(pi, rows, cols, ldi, item)).size:
                raise DeviceFault(f"{name}: output {o - n_in} overlaps operand {i}")

