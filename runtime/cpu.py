"""The CPU engine: runs a Program with compiled C kernels, numpy's BLAS and the library ops.

Everything a call needs is built once, at construction: the arena (one zeroed allocation per
arena buffer), a numpy view for every value a step touches, and for every step a callable with
its arguments bound (`functools.partial` over `np.matmul` with `out=`, over a ctypes kernel
with its pointers and row strides, or over a library op). `forward` then only writes the seed
into the persistent control block and calls the forward callables in order: the time loop
allocates nothing and builds no view.

Argument buffers (a `Buffer` of kind "arg" named `arg:NAME`, or just `NAME`) are the caller's
arrays (the executor's `arg_dict`), bound by data pointer. The steps that touch an argument
are rebuilt only when a different array arrives for it; one that cannot be bound (wrong dtype,
not C-contiguous) is copied into a staging array of the engine's own, which is bound once.
Head gradients are copied into their `head_grad` buffers; gradients are returned as views of
the arena, which the executor copies or adds.

Step attributes read: gemm `trans_a`, `trans_b` (or the dot op's `transpose_a`,
`transpose_b`), `accumulate` (`C += op(A) @ op(B)`);
kernel `kernel`, `rows`, `cols` (default: the first output's), `masks`; op `op` (a LIBOPS
name) and `attrs` (the op's attributes; without it, every other entry of the step's attrs).

GEMMs and threads (runtime.packed_gemm): per-step products against one weight run against a
copy of it packed once per phase, by the first of them; the other products pack their
operands as they go, into one scratch per dtype (`_big_scratch`). Each phase runs inside
`runtime.blas.one_pool()`, which lends OpenBLAS's thread count to these GEMMs and holds
OpenBLAS itself to one thread, so that one pool serves the program (OpenMP threads fighting
OpenBLAS's made a forward 3x slower: DESIGN.md, "What was measured on the CPU"). The
elementwise kernels (`omp simd` over columns) of PARALLEL_KERNEL elements or more split their
rows over the same pool (`NAME_task`).
`SYMRNN_PACKED_GEMM=0` runs every product through numpy instead, for comparison.
"""
from __future__ import annotations

import ctypes
import os
from functools import partial

import numpy as np

from runtime import assemble, cpu_loop, packed_gemm
from runtime.blas import one_pool
from runtime.errors import BindError, ShapeError, fmt_shape
from runtime.libops import LIBOPS
from runtime.packed_gemm import aligned, in_order, transposed
from runtime.program import Program, Step, View

PHASES = ("forward", "backward")
PARALLEL_KERNEL = 1 << 13  # elements; a smaller kernel runs on the calling thread alone
KERNEL_TASKS = 8  # row blocks of a larger one, claimed by the pool's threads


class CpuEngine:
    """An engine (see runtime.executor) for `program` on the CPU.

    >>> ex = Executor(CpuEngine(program), grad_req="write")     # doctest: +SKIP

    `load_kernels(kernels) -> {name: ctypes function}` defaults to runtime.compile_cache's.
    """

    def __init__(self, program: Program, load_kernels=None):
        self.program = program
        self.arg_specs = {n: (tuple(s), d) for n, (s, d) in program.args.items()}
        self.out_specs = [(n, tuple(v.shape), program.buffers[v.buffer].dtype)
                          for n, v in program.outputs]
        self.wrt = list(program.grads)
        odd = [s.name for s in program.steps if s.phase not in PHASES]
        if odd:
            raise ValueError(f"program: steps {odd} are in neither phase {PHASES}")
        self._ctl = np.zeros(2, np.uint64)  # [seed, is_train], read by every kernel
        self._flat = {b.name: _allocate(b.size, b.dtype) for b in program.buffers.values()}
        self._arg_of = self._arg_buffers()  # buffer -> argument name
        self._given = dict.fromkeys(self._arg_of)  # the caller's array bound per arg buffer
        self._staging: dict = {}
        self._steps = [s for phase in PHASES for s in program.steps if s.phase == phase]
        self._users = _users(self._steps)
        self._kernels = self._load_kernels(load_kernels)
        self._own_gemms = _own_gemms()
        self._threads = np.ones(1, np.intc)  # the GEMMs' thread count, set per phase
        self._pack_plan = self._plan_packing() if self._own_gemms else {}
        self._packed: dict = {}  # group -> PackedGemm
        self._scratch = self._accumulate_scratch()
        self._big_scratch = self._packing_scratch() if self._own_gemms else {}
        self._calls = [self._build(i) for i in range(len(self._steps))]
        self._refresh()
        self._head_grads = [self._head_grad_view(h, b) for h, b in program.head_grads]

    # ---- the engine protocol ------------------------------------------------------------------
    def forward(self, args: dict, is_train: bool, seed: int) -> list:
        self._bind_args(args)
        self._ctl[0] = int(seed) % 2**64
        self._ctl[1] = int(bool(is_train))
        self._run("forward")
        return [view.copy().reshape(shape) for view, shape in self._outputs]

    def backward(self, head_grads: list) -> dict:
        for index, dst in self._head_grads:
            np.copyto(dst, head_grads[index], casting="unsafe")
        self._run("backward")
        return {n: view if view.shape == shape else view.reshape(shape)
                for n, (view, shape) in self._grads.items()}

    def _run(self, phase: str) -> None:
        if not self._own_gemms:
            for call in self._phase_calls[phase]:
                call()
            return
        with one_pool() as threads:
            self._threads[0] = threads
            for call in self._phase_calls[phase]:
                call()

    # ---- binding the caller's argument arrays ---------------------------------------------------
    def _arg_buffers(self) -> dict:
        found = {}
        for b in self.program.buffers.values():
            if b.kind == "arg":
                name = b.name if b.name in self.arg_specs else b.name.removeprefix("arg:")
                if name not in self.arg_specs:
                    raise ValueError(f"program: argument buffer {b.name!r} names no argument "
                                     f"of {list(self.arg_specs)}")
                found[b.name] = name
        return found

    def _bind_args(self, args: dict) -> None:
        changed = [n for n in self._given if self._bind_arg(n, args)]
        if changed:
            for i in sorted(set().union(*(self._users.get(n, ()) for n in changed))):
                self._calls[i] = self._build(i)
            self._refresh()

    def _bind_arg(self, name: str, args: dict) -> bool:
        """Binds buffer `name` to its argument's array (or a staged copy of it); True if its
        data pointer moved."""
        arg = self._arg_of[name]
        value = args.get(arg)
        if value is self._given[name]:
            return False  # the array bound last time: same memory, nothing to rebuild
        buf = self.program.buffers[name]
        if not isinstance(value, np.ndarray):
            raise BindError(f"forward: no array for argument {arg!r}")
        if value.size != buf.size:
            raise ShapeError(f"forward: {arg!r} has shape {fmt_shape(value.shape)} "
                             f"({value.size} elements) but the program holds {buf.size}")
        self._given[name] = value
        if value.dtype != np.dtype(buf.dtype) or not value.flags.c_contiguous:
            if name not in self._staging:
                self._staging[name] = np.empty(buf.size, buf.dtype)
            np.copyto(self._staging[name], value.reshape(-1), casting="unsafe")
            value, self._given[name] = self._staging[name], None  # copy again next call
        flat = value.reshape(-1)
        moved = _address(flat) != _address(self._flat[name])
        self._flat[name] = flat
        return moved

    # ---- views ----------------------------------------------------------------------------
    def _view(self, v: View) -> np.ndarray:
        """The 2-D window `v` over its buffer (row stride `ld`, 0 repeats one row)."""
        flat = self._flat[v.buffer]
        if v.offset < 0 or v.offset + (v.rows - 1) * v.ld + v.cols > flat.size:
            raise ValueError(f"program: view {v} reaches past buffer {v.buffer!r} "
                             f"({flat.size} elements)")
        item = flat.itemsize
        return np.ndarray((v.rows, v.cols), flat.dtype, flat, v.offset * item,
                          (v.ld * item, item))

    def _nd_view(self, v: View):
        """`v` in its logical shape without a copy, or the 2-D view where that needs one."""
        x = self._view(v)
        y = x.reshape(v.shape)
        return y if np.may_share_memory(x, y) else x

    def _refresh(self) -> None:
        """The output and gradient views and the per-phase call lists, after a rebind."""
        self._outputs = [(self._view(v), tuple(v.shape)) for _, v in self.program.outputs]
        self._grads = {n: (self._nd_view(v), tuple(v.shape))
                       for n, v in self.program.grads.items()}
        self._phase_calls = {p: [c for c, s in zip(self._calls, self._steps) if s.phase == p]
                             for p in PHASES}

    def _head_grad_view(self, head: str, buffer: str):
        names = [n for n, _ in self.program.outputs]
        if head not in names:
            raise ValueError(f"program: head gradient for {head!r}, which is not an output "
                             f"{names}")
        shape = self.out_specs[names.index(head)][1]
        flat = self._flat[buffer]
        return names.index(head), flat[:int(np.prod(shape, dtype=np.int64))].reshape(shape)

    # ---- steps --------------------------------------------------------------------------------
    def _build(self, index: int):
        step = self._steps[index]
        if step.kind == "loop":
            return cpu_loop.loop_call(step, lambda body, k, j: self._build_step(
                body, self._pack_plan.get((index, k, j)) or
                (self._pack_plan.get((index, 1, j)) if k > 1 else None)))
        return self._build_step(step, self._pack_plan.get(index))

    def _build_step(self, step: Step, packing):
        if packing is not None:
            return self._packed_gemm(step, *packing)
        build = {"gemm": self._gemm, "kernel": self._kernel, "op": self._op}.get(step.kind)
        if build is None:
            raise ValueError(f"program: step {step.name!r} has unknown kind {step.kind!r}")
        return build(step)

    def _operands(self, step: Step):
        a, b = (self._view(v) for v in step.inputs[:2])
        c = self._view(step.outputs[0])
        a = a.T if transposed(step, "a") else a
        b = b.T if transposed(step, "b") else b
        if a.shape[1] != b.shape[0] or c.shape != (a.shape[0], b.shape[1]):
            raise ValueError(f"program: gemm {step.name!r} multiplies {a.shape} by {b.shape} "
                             f"into {c.shape}")
        return a, b, c

    def _gemm(self, step: Step):
        a, b, c = self._operands(step)
        accumulate = bool(step.attrs.get("accumulate"))
        call = packed_gemm.big_call(a, b, c, accumulate, self._threads,
                                    self._big_scratch.get(c.dtype.name))
        if call is not None:  # None without own gemms (no scratch), or for odd layouts
            return call
        if accumulate:
            scratch = self._scratch[c.dtype.str][:c.size].reshape(c.shape)
            return partial(_gemm_add, a, b, c, scratch)
        return partial(np.matmul, a, b, out=c)

    def _packed_gemm(self, step: Step, group, first: bool):
        """The step against its weight packed once per phase, by the group's first step."""
        a, b, c = self._operands(step)
        if group not in self._packed:
            self._packed[group] = packed_gemm.PackedGemm(c.dtype.name, *b.shape, self._threads)
        pg = self._packed[group]
        call = pg.gemm_call(a, c, bool(step.attrs.get("accumulate")))
        return partial(in_order, pg.pack_call(b), call) if first else call

    def _kernel(self, step: Step):
        kernel = self.program.kernels[step.attrs["kernel"]]
        rows = int(step.attrs.get("rows", step.outputs[0].rows))
        cols = int(step.attrs.get("cols", step.outputs[0].cols))
        masks = np.asarray(step.attrs.get("masks", ()) or (0,), np.uint32)
        views = [*step.inputs, *step.outputs]
        _check_kernel(step, kernel, {self.program.buffers[v.buffer].dtype for v in views})
        args = [ctypes.c_long(rows), ctypes.c_long(cols)]
        for v in views:
            span = View(v.buffer, v.offset, rows, cols, v.ld, v.shape)
            args += [ctypes.c_void_p(_address(self._view(span))), ctypes.c_long(v.ld)]
        args += [ctypes.c_void_p(self._ctl.ctypes.data), ctypes.c_void_p(masks.ctypes.data)]
        fn = self._kernels[kernel.name]
        if self._own_gemms and getattr(fn, "task", None) and rows > 1 and \
                rows * cols >= PARALLEL_KERNEL:
            return self._split_kernel(fn.task, rows, cols, args, masks)
        call = partial(fn, *args)
        call.keep = masks  # the mask ids live as long as the call that points at them
        return call

    def _split_kernel(self, task: int, rows: int, cols: int, args: list, masks: np.ndarray):
        """The kernel's rows in up to KERNEL_TASKS blocks, shared by the pool's threads
        (`NAME_task`, codegen.render); the job is the kernel's arguments as 64-bit words."""
        per = -(-rows // min(rows, KERNEL_TASKS))
        words = np.array([rows, cols, per, self._ctl.ctypes.data, masks.ctypes.data,
                          *(a.value for a in args[2:-2])], np.int64)
        call = partial(packed_gemm.library().symrnn_parallel, task, words.ctypes.data,
                       -(-rows // per), self._threads.ctypes.data)
        call.keep = (masks, words)
        return call

    def _op(self, step: Step):
        name = step.attrs.get("op")
        if name not in LIBOPS:
            raise ValueError(f"program: op step {step.name!r} runs {name!r}, which is not a "
                             f"library op {sorted(LIBOPS)}")
        if len(step.outputs) != 1:
            raise ValueError(f"program: op step {step.name!r} has {len(step.outputs)} outputs")
        attrs = step.attrs.get("attrs")
        if attrs is None:
            attrs = {k: v for k, v in step.attrs.items() if k != "op"}
        parts = assemble.copies(name, attrs, list(step.inputs), step.outputs[0])
        dtypes = {self._dtype_of(v) for v in [*step.inputs, *step.outputs]}
        if parts is not None and len(dtypes) == 1:  # a stack or concat: copy each part not
            # stored in its window already (codegen's plan_memory) into the window
            return partial(in_order, *(partial(np.copyto, self._view(w), self._view(x))
                                        for x, w in parts))
        ins = [(self._nd_view(v), tuple(v.shape)) for v in step.inputs]
        return partial(_run_op, LIBOPS[name], attrs, ins, self._view(step.outputs[0]))

    # ---- construction helpers ---------------------------------------------------------------
    def _load_kernels(self, load) -> dict:
        names = {s.attrs["kernel"] for s in cpu_loop.body_steps(self._steps)
                 if s.kind == "kernel"}
        if not names:
            return {}
        if load is None:
            from runtime.compile_cache import load_kernels as load  # needs a C compiler
        return load([self.program.kernels[n] for n in sorted(names)])

    def _plan_packing(self) -> dict:
        """packed_gemm's plan, keyed by step index, or (loop index, iteration, body step)."""
        flat, where = cpu_loop.planning_steps(self._steps)
        return {(i if at is None else (i, *at)): v
                for f, v in packed_gemm.plan(flat, self._dtype_of).items()
                for i, at in [where[f]]}

    def _dtype_of(self, v: View) -> str:
        return self.program.buffers[v.buffer].dtype

    def _packing_scratch(self) -> dict:
        """One scratch per dtype for the products that are not in the packing plan, which pack
        their operands block by block (packed_gemm.big_call) and run one at a time."""
        sizes: dict = {}
        flat, where = cpu_loop.planning_steps(self._steps)
        for s, (i, at) in zip(flat, where):
            if s.kind != "gemm" or (i if at is None else (i, *at)) in self._pack_plan:
                continue
            b = s.inputs[1]
            k, n = (b.cols, b.rows) if transposed(s, "b") else (b.rows, b.cols)
            dtype = self._dtype_of(b)
            if dtype in packed_gemm.SUFFIX:
                sizes[dtype] = max(sizes.get(dtype, 0), packed_gemm.scratch_size(k, n, dtype))
        return {d: aligned(n, d) for d, n in sizes.items()}

    def _accumulate_scratch(self) -> dict:
        """One scratch per dtype for `C += A @ B`: numpy's matmul has no beta, so the product
        lands here first and is added in place; accumulating steps run one at a time."""
        sizes: dict = {}
        for s in cpu_loop.body_steps(self._steps):
            if s.kind == "gemm" and s.attrs.get("accumulate"):
                out = s.outputs[0]
                key = np.dtype(self.program.buffers[out.buffer].dtype).str
                sizes[key] = max(sizes.get(key, 0), out.rows * out.cols)
        return {k: np.empty(n, k) for k, n in sizes.items()}


def _allocate(size: int, dtype: str) -> np.ndarray:
    """Zeroed; under SYMRNN_DEBUG float buffers start as NaN, so a read before any write
    shows up in the results."""
    flat = np.zeros(size, dtype)
    if os.environ.get("SYMRNN_DEBUG", "0") not in ("", "0") and flat.dtype.kind == "f":
        flat.fill(np.nan)
    return flat


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]


def _users(steps: list) -> dict:
    """buffer name -> indices of the steps that read or write it."""
    users: dict = {}
    for i, s in enumerate(steps):
        for b in s.body if s.kind == "loop" else [s]:
            for v in [*b.inputs, *b.outputs]:
                users.setdefault(v.buffer, set()).add(i)
    return users


def _check_kernel(step: Step, kernel, dtypes: set) -> None:
    counts = (len(step.inputs), len(step.outputs), len(step.attrs.get("masks", ())))
    if counts != (kernel.n_in, kernel.n_out, kernel.n_masks):
        raise ValueError(f"program: step {step.name!r} gives kernel {kernel.name!r} "
                         f"(inputs, outputs, masks) {counts}, it takes "
                         f"{(kernel.n_in, kernel.n_out, kernel.n_masks)}")
    if dtypes != {kernel.dtype}:
        raise ValueError(f"program: step {step.name!r} passes {sorted(dtypes)} buffers to "
                         f"{kernel.dtype} kernel {kernel.name!r}")


def _own_gemms() -> bool:
    return os.environ.get("SYMRNN_PACKED_GEMM", "1") not in ("", "0")


def _gemm_add(a, b, c, scratch):
    np.matmul(a, b, out=scratch)
    np.add(c, scratch, out=c)


def _run_op(fn, attrs, ins, out):
    args = [x if x.shape == shape else x.reshape(shape) for x, shape in ins]
    np.copyto(out, np.reshape(fn(attrs, *args), out.shape), casting="unsafe")

