"""The CUDA engine: runs a Program on an NVIDIA GPU, kernels from the CUDA rendering, GEMMs
through cuBLAS, everything planned once at construction.

    >>> engine = CudaEngine(program)                        # doctest: +SKIP
    >>> ex = Executor(engine, grad_req="write")              # doctest: +SKIP

Memory. The arena buffers live in ONE device allocation (each buffer aligned to 256 bytes);
every argument and head-gradient buffer has a persistent allocation of its own; the control
block `[seed, is_train]` (2 x uint64) and all launches' mask ids (one uint32 table, each launch
pointing into it) are allocated once. Pointers are `base + offset * itemsize`, computed when
the engine is built: a forward pass allocates nothing on the device.

Transfers. The engine protocol passes numpy arrays, so arguments must reach the device:
`upload="always"` (the default) copies every argument host->device at each forward, which for
the T=100, N=64, I=H=512 LSTM is about 8 MB of weights and 13 MB of data per call;
`upload="changed"` keeps a host copy of what was uploaded and skips arguments whose values
did not change (parameters between evaluation batches), at the cost of that copy and one
comparison per argument. Outputs and gradients are copied device->host when returned.

Steps. `gemm` steps are one cuBLAS call each (runtime.cuda.commands.gemm_call maps the row-major
views onto column-major cuBLAS); `kernel` steps one launch each; `op` steps become cuBLAS
calls where runtime.cuda.commands.DEVICE_OPS covers them (stack, concat, sums over leading axes,
transpose, reshape), else they run on the host with runtime.library: their inputs are copied
to the host and their output back, which is slow but only used outside the time loop by the
programs the compiler emits for RNN stacks (losses, embeddings).

CUDA graphs (`graphs=True` or `SYMRNN_CUDA_GRAPHS=1`; off by default, because it has not yet
run on a GPU): each phase is cut into segments at host ops; a segment runs plainly the first
time (which loads modules and warms cuBLAS up), is captured into a graph the second time and
replayed from then on. The pointers a graph holds never change, and the seed is read from the
control block at run time, so graphs stay valid for the engine's life.

The device. Everything the engine asks of the GPU goes through a small interface, `Device`:
runtime.cuda.device.PyCudaDevice (PyCUDA + cuBLAS) on a GPU, runtime.cuda.recording.RecordingDevice
in the tests, which records each call and carries it out with numpy.
"""
from __future__ import annotations

import dataclasses
import os
import weakref
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from runtime.cuda.commands import DEVICE_OPS, Launch, Matrix, gemm_call, launch_args, launch_config
from runtime.cuda.loop import lower_loop
from runtime.layout import FLOATS, PHASES, OpCall, ProgramLayout, initial_contents
from runtime.program import Program, Step, View

ALIGN = 256  # bytes: cudaMalloc's alignment, kept for every buffer in the arena
UPLOADS = ("always", "changed")


class Device(Protocol):
    """What the engine needs from a GPU. Pointers are ints; `gemm`/`geam` are cuBLAS's
    column-major calls with transa/transb "N" or "T"."""

    def alloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def memcpy_htod(self, ptr: int, host: np.ndarray) -> None: ...
    def memcpy_dtoh(self, host: np.ndarray, ptr: int) -> None: ...
    def load_kernels(self, kernels: list) -> None: ...
    def launch(self, kernel: str, grid: tuple, block: tuple, args: tuple) -> None: ...
    def gemm(self, dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): ...
    def geam(self, dtype, transa, transb, m, n, alpha, a, lda, beta, b, ldb, c, ldc): ...
    def begin_capture(self) -> None: ...
    def end_capture(self): ...
    def launch_graph(self, graph) -> None: ...


@dataclass(frozen=True)
class HostOp(OpCall):
    """An `op` step run on the host: inputs copied down, `fn` applied, the output copied up."""

    def run(self, engine: CudaEngine) -> None:
        engine.run_host_op(self)


@dataclass
class Segment:
    """Device commands between two host ops; captured into a graph on its second run."""
    commands: list
    runs: int = 0
    graph: object = None

    def run(self, engine: CudaEngine) -> None:
        device = engine.device
        if engine.graphs and self.graph is None and self.runs >= 1:
            device.begin_capture()
            try:
                self.issue(device)
            finally:
                graph = device.end_capture()
            self.graph = graph
        if engine.graphs and self.graph is not None:
            device.launch_graph(self.graph)
        else:
            self.issue(device)
        self.runs += 1

    def issue(self, device) -> None:
        for command in self.commands:
            command.issue(device)


class CudaEngine:
    """An engine (see runtime.executor) for `program` on `device` (default: the first GPU,
    through PyCUDA; BackendUnavailable says what is missing where there is none)."""

    def __init__(self, program: Program, device: Device | None = None, graphs: bool | None = None,
                 upload: str = "always", device_ops: bool = True):
        if upload not in UPLOADS:
            raise ValueError(f"CudaEngine: 'upload' must be one of {UPLOADS}, given {upload!r}")
        if device is None:
            from runtime.cuda.device import default_device  # imports PyCUDA
            device = default_device()
        self.program, self.device, self.upload = program, device, upload
        self.layout = layout = ProgramLayout(program)
        self.graphs = _env_flag("SYMRNN_CUDA_GRAPHS") if graphs is None else bool(graphs)
        self.arg_specs, self.out_specs, self.wrt = layout.arg_specs, layout.out_specs, layout.wrt
        self.transfers = {"htod_bytes": 0, "dtoh_bytes": 0}
        self._owned: list = []
        self._finalizer = weakref.finalize(self, _free_all, device, self._owned)
        self.bases = self._allocate()
        self.ctl = self._alloc(16)
        self._ones: dict = {}
        self._shadow: dict = {}
        device.load_kernels([program.kernels[name] for name in layout.kernel_names()])
        self.masks = self._mask_table()
        self.phases = {p: _segments([c for s in layout.steps if s.phase == p
                                     for c in self._lower(s, device_ops)]) for p in PHASES}

    # ---- the engine protocol ------------------------------------------------------------------
    def forward(self, args: dict, is_train: bool, seed: int) -> list:
        self._upload_args(args)
        self._htod(self.ctl, np.array([int(seed) % 2**64, int(bool(is_train))], np.uint64))
        self._run("forward")
        return [np.ascontiguousarray(self._fetch(v)[1]).reshape(v.shape)
                for _, v in self.program.outputs]

    def backward(self, head_grads: list, on_device=None) -> dict:
        """The gradients, downloaded; `on_device(self)`, where given, runs between the
        backward's kernels and the download (symrnn.parallel.cuda sums them over ranks
        there)."""
        for index, name, _ in self.layout.head_grads:
            buf = self.program.buffers[name]
            self._htod(self.bases[name], np.ascontiguousarray(head_grads[index], buf.dtype)
                       .reshape(-1)[:buf.size])
        self._run("backward")
        if on_device is not None:
            on_device(self)
        return {n: np.ascontiguousarray(self._fetch(v)[1]).reshape(v.shape)
                for n, v in self.program.grads.items()}

    def summary(self) -> dict:
        """Per phase: how many launches, GEMMs, copies (geam), host ops and segments."""
        out = {}
        for phase, items in self.phases.items():
            count = {"Launch": 0, "Gemm": 0, "Geam": 0, "HostOp": 0, "Segment": 0}
            for item in items:
                count[type(item).__name__] += 1
                for c in getattr(item, "commands", ()):
                    for kind, n in getattr(c, "kinds", lambda c=c: [(type(c).__name__, 1)])():
                        count[kind] += n
            out[phase] = count
        return out

    # ---- memory -----------------------------------------------------------------------------
    def _alloc(self, nbytes: int) -> int:
        ptr = self.device.alloc(max(int(nbytes), 1))
        self._owned.append(ptr)
        return ptr

    def _allocate(self) -> dict:
        """Arena buffers at aligned offsets of one allocation, zeroed (NaN under
        SYMRNN_DEBUG, as on the CPU); one allocation per argument and head gradient."""
        arena = [b for b in self.program.buffers.values() if b.kind == "arena"]
        offsets, total = {}, 0
        for b in arena:
            offsets[b.name] = total
            total += -(-b.size * np.dtype(b.dtype).itemsize // ALIGN) * ALIGN
        base = self._alloc(total) if arena else 0
        bases = {name: base + off for name, off in offsets.items()}
        for b in arena:
            self._htod(bases[b.name], initial_contents(b.size, b.dtype))
        for b in self.program.buffers.values():
            if b.kind != "arena":
                bases[b.name] = self._alloc(b.size * np.dtype(b.dtype).itemsize)
        return bases

    def _mask_table(self) -> dict:
        """{mask ids: device pointer}: every launch's ids in one uint32 allocation."""
        ids = self.layout.mask_ids()
        table = np.array([i for t in ids for i in t], np.uint32)
        base = self._alloc(table.nbytes)
        self._htod(base, table)
        starts = np.cumsum([0] + [len(t) for t in ids])
        return {t: base + 4 * int(start) for t, start in zip(ids, starts)}

    def pointer(self, v: View) -> int:
        """The device address of the view's first element."""
        return self.bases[v.buffer] + v.offset * self.itemsize(v)

    def itemsize(self, v: View) -> int:
        return self.layout.itemsize(v)

    def dtype(self, v: View) -> str:
        return self.layout.dtype(v)

    def matrix(self, v: View, rows: int | None = None, cols: int | None = None) -> Matrix:
        rows, cols = v.rows if rows is None else rows, v.cols if cols is None else cols
        self.layout.check_view(v, rows, cols)
        return Matrix(self.pointer(v), rows, cols, v.ld)

    def ones(self, dtype: str, n: int) -> Matrix:
        """A `1 x n` row of ones on the device (sums as GEMMs), made once per size."""
        if (dtype, n) not in self._ones:
            ptr = self._alloc(n * np.dtype(dtype).itemsize)
            self._htod(ptr, np.ones(n, dtype))
            self._ones[dtype, n] = Matrix(ptr, 1, n, n)
        return self._ones[dtype, n]

    # ---- steps -> commands ------------------------------------------------------------------
    def _lower(self, step: Step, device_ops: bool) -> list:
        if step.kind == "loop":
            return lower_loop(self, step, device_ops)
        lower = {"gemm": self._gemm, "kernel": self._launch, "op": self._op}.get(step.kind)
        if lower is None:
            raise ValueError(f"program: step {step.name!r} has unknown kind {step.kind!r}")
        return lower(step, device_ops)

    def _gemm(self, step: Step, _=None) -> list:
        g = self.layout.gemm(step)
        return [gemm_call(self.dtype(g.c), self.matrix(g.a), self.matrix(g.b), self.matrix(g.c),
                          g.trans_a, g.trans_b)]

    def _launch(self, step: Step, _=None) -> list:
        launch = self.layout.launch(step)
        rows, cols = launch.rows, launch.cols
        if rows * cols == 0:
            return []
        operands = [(self.pointer(v), v.ld) for v in launch.views]
        grid, block = launch_config(rows, cols)
        args = launch_args(launch.kernel, rows, cols, operands, self.ctl, self.masks[launch.masks])
        return [Launch(launch.kernel.name, grid, block, args)]

    def _op(self, step: Step, device_ops: bool) -> list:
        op = self.layout.op(step)
        floats = {self.dtype(v) for v in [*op.inputs, op.output]}
        if device_ops and op.name in DEVICE_OPS and len(floats) == 1 and floats <= set(FLOATS):
            commands = DEVICE_OPS[op.name](dataclasses.replace(step, attrs=op.attrs), self)
            if commands is not None:
                return commands
        return [HostOp(op.name, op.fn, op.attrs, op.inputs, op.output)]

    # ---- running ------------------------------------------------------------------------------
    def _run(self, phase: str) -> None:
        for item in self.phases[phase]:
            item.run(self)

    def run_host_op(self, op: HostOp) -> None:
        args = [np.ascontiguousarray(self._fetch(v)[1]).reshape(v.shape) for v in op.inputs]
        out = op.output
        result = np.reshape(op.fn(op.attrs, *args), (out.rows, out.cols))
        if out.contiguous:
            self._htod(self.pointer(out), np.ascontiguousarray(result, self.dtype(out)))
        else:  # padded rows: read the span, write the window, put the span back
            flat, win = self._fetch(out)
            np.copyto(win, result, casting="unsafe")
            self._htod(self.pointer(out), flat)

    def _upload_args(self, args: dict) -> None:
        for name in self.layout.arg_of:
            buf, value = self.program.buffers[name], self.layout.arg_value(name, args)
            host = np.ascontiguousarray(value, buf.dtype).reshape(-1)
            if self.upload == "changed":
                old = self._shadow.get(name)
                if old is not None and np.array_equal(old, host):
                    continue
                self._shadow[name] = host.copy()
            self._htod(self.bases[name], host)

    def _htod(self, ptr: int, host: np.ndarray) -> None:
        if host.nbytes:
            self.device.memcpy_htod(ptr, host)
            self.transfers["htod_bytes"] += host.nbytes

    def _fetch(self, v: View) -> tuple:
        """(the downloaded span, the view's 2-D window over it)."""
        dtype, item = self.dtype(v), self.itemsize(v)
        span = (v.rows - 1) * v.ld + v.cols if v.rows and v.cols else 0
        flat = np.empty(span, dtype)
        if span:
            self.device.memcpy_dtoh(flat, self.pointer(v))
            self.transfers["dtoh_bytes"] += flat.nbytes
        return flat, np.ndarray((v.rows, v.cols), dtype, flat, 0, (v.ld * item, item))


def _segments(commands: list) -> list:
    """Runs of device commands as Segments, with the host ops between them."""
    out: list = []
    for c in commands:
        if isinstance(c, HostOp):
            out.append(c)
        elif out and isinstance(out[-1], Segment):
            out[-1].commands.append(c)
        else:
            out.append(Segment([c]))
    return out


def _free_all(device, pointers: list) -> None:
    for ptr in reversed(pointers):
        device.free(ptr)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0") not in ("", "0")
