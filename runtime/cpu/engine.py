"""The CPU engine: runs a Program with compiled C kernels, numpy's BLAS and the library ops.

Everything a call needs is built once, at construction: the arena (one zeroed allocation per
arena buffer), a numpy view for every value a step touches, and for every step a callable with
its arguments bound (`functools.partial` over `np.matmul` with `out=`, over a ctypes kernel
with its pointers and row strides, or over a library op). `forward` then only writes the seed
into the persistent control block and calls the forward callables in order (a run of C ones
as one call: runtime.cpu.phase_plan): the time loop allocates nothing and builds no view.

What the program says (argument buffers, step attributes, launch shapes, the checks of all of
them, the NaN fill under SYMRNN_DEBUG) is read through runtime.layout.ProgramLayout, shared
with the CUDA engine. Argument buffers are the caller's arrays (the executor's `arg_dict`),
bound by data pointer. The steps that touch an argument
are rebuilt only when a different array arrives for it; one that cannot be bound (wrong dtype,
not C-contiguous) is copied into a staging array of the engine's own, which is bound once.
Head gradients are copied into their `head_grad` buffers; gradients are returned as views of
the arena, which the executor copies or adds.

GEMMs and threads (runtime.cpu.gemm, which chooses the implementation: SYMRNN_GEMM): per-step
products against one weight run against a copy of it packed once per phase, by the first of
them; the other products run once, through numpy's cblas split over the pool, or symrnn's
blocked GEMM packing their operands as they go into one scratch per dtype (`_big_scratch`;
runtime.cpu.packed_gemm.big_call). Products of one row (runtime.cpu.gemv.ENGINE_ROWS),
per-step ones included, read the weight in place and pack nothing (runtime.cpu.gemv: neither
a T=1 chunk of a stream nor a T-step program at N=1 packs its recurrent weight). With
symrnn's own GEMM each phase runs inside `runtime.cpu.blas.one_pool()`, which lends
OpenBLAS's thread count to these GEMMs and holds OpenBLAS itself to one thread, so that one
pool serves the program (OpenMP threads fighting OpenBLAS's made a forward 3x slower:
DESIGN.md, "What was measured on the CPU"). The
elementwise kernels (`omp simd` over columns) of PARALLEL_KERNEL elements or more split their
rows over the same pool (`NAME_task`), and so do the bias gradients' sums over all steps' rows
(packed_gemm.column_sum_call).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from functools import partial

import numpy as np

from runtime import assemble
from runtime.cpu import gemm, gemv, loop, loop_runner, packed_gemm, phase_plan
from runtime.cpu.blas import one_pool, thread_count
from runtime.cpu.packed_gemm import aligned, in_order, transposed
from runtime.errors import ConfigError
from runtime.layout import PHASES, ProgramLayout, body_kernels, initial_contents
from runtime.library import reduced_axes
from runtime.program import Program, Step, View

PARALLEL_KERNEL = 1 << 13  # elements; a smaller kernel runs on the calling thread alone
KERNEL_TASKS = 8  # row blocks of a larger one, claimed by the pool's threads


class CpuEngine:
    """An engine (see runtime.executor) for `program` on the CPU.

    >>> ex = Executor(CpuEngine(program), grad_req="write")     # doctest: +SKIP

    `load_kernels(kernels) -> {name: ctypes function}` defaults to runtime.compile_cache's.
    """

    def __init__(self, program: Program, load_kernels=None):
        self.program, self.layout = program, ProgramLayout(program)
        self.arg_specs, self.out_specs = self.layout.arg_specs, self.layout.out_specs
        self.wrt = self.layout.wrt
        self._ctl = np.zeros(2, np.uint64)  # [seed, is_train], read by every kernel
        self._given = dict.fromkeys(self.layout.arg_of)  # the caller's array per arg buffer
        # An argument buffer gets the caller's array at the first call, and the steps that
        # touch it are built then: a zeroed array of its own (T long for the data) would only
        # stand in until that call (one is made where an output or gradient views it).
        viewed = {v.buffer for _, v in program.outputs} | \
            {v.buffer for v in program.grads.values()} | {b for _, b, _ in self.layout.head_grads}
        self._flat = {b.name: initial_contents(b.size, b.dtype) for b in program.buffers.values()
                      if b.name not in self._given or b.name in viewed}
        self._staging: dict = {}
        self._steps = self.layout.steps
        self._users = self.layout.users()
        self._kernels = self._load_kernels(load_kernels)
        self._gemms = gemm.selected()
        # loops split by rows where they may (runtime.cpu.loop_rows), read once, as the GEMMs
        self.loop_rows = os.environ.get("SYMRNN_LOOP_ROWS", "1") != "0"
        self._threads = np.ones(1, np.intc)  # the GEMMs' thread count, set per phase
        self._pack_plan = self._packing_plan()
        self._packed: dict = {}  # group -> the implementation's packed operand
        self._big_scratch = self._packing_scratch()
        waiting = set().union(*(self._users.get(n, ()) for n in self._given
                                if n not in self._flat))
        for i in waiting:
            self._check(self._steps[i])
        self._calls = [None if i in waiting else self._build(i) for i in range(len(self._steps))]
        self._unbuilt = bool(waiting)  # some step waits for its argument (checked per run)
        self._backward_hooks: dict = {}
        self._bound = None  # args -> whether it holds the arrays bound: nothing to rebind
        self._refresh()
        self._head_grads = [(i, self._flat[b][:int(np.prod(shape, dtype=np.int64))]
                             .reshape(shape)) for i, b, shape in self.layout.head_grads]

    # ---- the engine protocol ------------------------------------------------------------------
    def forward(self, args: dict, is_train: bool, seed: int) -> list:
        self._bind_args(args)
        self._ctl[0] = int(seed) % 2**64
        self._ctl[1] = int(bool(is_train))
        self._run("forward")
        return [v.copy().reshape(s) for v, s in zip(self._out_views, self._out_shapes)]

    def backward(self, head_grads: list) -> dict:
        for index, dst in self._head_grads:
            np.copyto(dst, head_grads[index], casting="unsafe")
        self._run("backward")
        return {n: view if view.shape == shape else view.reshape(shape)
                for n, (view, shape) in self._grads.items()}

    def set_backward_hooks(self, hooks: dict) -> None:
        """`{i: hook}`: `hook(grad_views)` runs right after the `i`-th step of
        `program.steps_in('backward')`; `grad_views` is {argument: view of its gradient}.
        symrnn.parallel starts reducing a gradient the moment its last write is done."""
        self._backward_hooks = dict(hooks)
        self._refresh()

    def _run(self, phase: str) -> None:
        if self._unbuilt:  # run before any argument was bound: on zeros, as it was
            self._bind_placeholders()
        calls, pool = self._phase_runs[phase], self._gemms.own_pool
        if not pool or self._blas_free[phase]:  # no BLAS call in it: OpenBLAS as it is
            if pool:
                self._threads[0] = thread_count()
            for call in calls:
                call()
            return
        with one_pool() as threads:
            self._threads[0] = threads
            for call in calls:
                call()

    # ---- binding the caller's argument arrays ---------------------------------------------------
    def _bind_args(self, args: dict) -> None:
        if self._bound is not None and self._bound(args):
            return  # every argument the array bound last time (what _bind_arg checks first)
        changed = [n for n in self._given if self._bind_arg(n, args)]
        if changed:
            for i in sorted(set().union(*(self._users.get(n, ()) for n in changed))):
                self._calls[i] = self._build(i)
            self._unbuilt = None in self._calls
            self._refresh()
        self._bound = phase_plan.same_arrays({self.layout.arg_of[n]: a  # None: staged, copied
                                              for n, a in self._given.items()})  # every call

    def _bind_placeholders(self) -> None:
        for name in self._given:
            if name not in self._flat:
                buf = self.program.buffers[name]
                self._flat[name] = initial_contents(buf.size, buf.dtype)
        self._calls = [self._build(i) if c is None else c for i, c in enumerate(self._calls)]
        self._unbuilt = False
        self._refresh()

    def _bind_arg(self, name: str, args: dict) -> bool:
        """Binds buffer `name` to its argument's array (or a staged copy of it); True if its
        data pointer moved."""
        if args.get(self.layout.arg_of[name]) is self._given[name]:
            return False  # the array bound last time: same memory, nothing to rebuild
        buf, value = self.program.buffers[name], self.layout.arg_value(name, args)
        self._given[name] = value
        if value.dtype != np.dtype(buf.dtype) or not value.flags.c_contiguous:
            if name not in self._staging:
                self._staging[name] = np.empty(buf.size, buf.dtype)
            np.copyto(self._staging[name], value.reshape(-1), casting="unsafe")
            value, self._given[name] = self._staging[name], None  # copy again next call
        flat = value.reshape(-1)
        moved = name not in self._flat or _address(flat) != _address(self._flat[name])
        self._flat[name] = flat
        return moved

    # ---- views ----------------------------------------------------------------------------
    def _view(self, v: View) -> np.ndarray:
        """The 2-D window `v` over its buffer (row stride `ld`, 0 repeats one row)."""
        flat = self._flat[v.buffer]
        self.layout.check_view(v)
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
        self._out_shapes = [tuple(v.shape) for _, v in self.program.outputs]
        self._out_views = [self._nd_view(v) for _, v in self.program.outputs]
        self._grads = {n: (self._nd_view(v), tuple(v.shape))
                       for n, v in self.program.grads.items()}
        self._phase_calls = {p: [c for c, s in zip(self._calls, self._steps) if s.phase == p]
                             for p in PHASES}
        views, calls = {n: v for n, (v, _) in self._grads.items()}, self._phase_calls["backward"]
        running = self.layout.running_index("backward")
        for i, hook in self._backward_hooks.items():
            at = running[i] if i >= 0 else i  # a hook inside a loop runs after the loop
            calls[at] = partial(in_order, calls[at], partial(hook, views))
        own = self._gemms.own_pool  # the calls, fused where they can be: runtime.cpu.phase_plan
        self._phase_runs, self._blas_free = {}, {}
        for p, c in self._phase_calls.items():
            self._phase_runs[p], self._blas_free[p] = phase_plan.fused(c, self._threads, own)

    # ---- steps --------------------------------------------------------------------------------
    def _build(self, index: int):
        step = self._steps[index]
        if step.kind == "loop":
            return loop_runner.loop_call(self, index, step) or loop.loop_call(
                step, lambda body, k, j: self._build_step(
                    body, self._pack_plan.get((index, k, j)) or
                    (self._pack_plan.get((index, 1, j)) if k > 1 else None)))
        return self._build_step(step, self._pack_plan.get(index))

    def _check(self, step: Step) -> None:
        """What building `step` checks, for a step built later (runtime.layout's checks)."""
        check = {"gemm": self.layout.gemm, "kernel": self.layout.launch, "op": self.layout.op}
        for b in (step.body if step.kind == "loop" else [step]):
            if b.kind not in check:
                raise ValueError(f"program: step {b.name!r} has unknown kind {b.kind!r}")
            check[b.kind](b)

    def _build_step(self, step: Step, packing):
        if packing is not None:
            return self._packed_gemm(step, *packing)
        build = {"gemm": self._gemm, "kernel": self._kernel, "op": self._op}.get(step.kind)
        if build is None:
            raise ValueError(f"program: step {step.name!r} has unknown kind {step.kind!r}")
        return build(step)

    def _operands(self, step: Step):
        g = self.layout.gemm(step)
        a, b, c = self._view(g.a), self._view(g.b), self._view(g.c)
        return a.T if g.trans_a else a, b.T if g.trans_b else b, c

    def _gemm(self, step: Step):
        a, b, c = self._operands(step)
        small = gemv.engine_call(a, b, c, self._threads) if self._gemms.own_pool else None
        return small or self._gemms.product(a, b, c, self._threads,
                                             self._big_scratch.get(c.dtype.name))

    def _packed_gemm(self, step: Step, group, first: bool):
        """The step against its weight packed once per phase, by the group's first step."""
        a, b, c = self._operands(step)
        if group not in self._packed:
            self._packed[group] = self._gemms.packed(c.dtype.name, *b.shape, self._threads)
        pg = self._packed[group]
        call = pg.gemm_call(a, c)
        return partial(in_order, pg.pack_call(b), call) if first else call

    def _kernel(self, step: Step):
        launch = self.layout.launch(step)
        kernel, rows, cols = launch.kernel, launch.rows, launch.cols
        masks = np.asarray(launch.masks, np.uint32)
        args = [ctypes.c_long(rows), ctypes.c_long(cols)]
        for v in launch.views:
            span = View(v.buffer, v.offset, rows, cols, v.ld, v.shape)
            args += [ctypes.c_void_p(_address(self._view(span))), ctypes.c_long(v.ld)]
        args += [ctypes.c_void_p(self._ctl.ctypes.data), ctypes.c_void_p(masks.ctypes.data)]
        fn = self._kernels[kernel.name]
        if self._gemms.own_pool and getattr(fn, "task", None) and rows > 1 and \
                rows * cols >= PARALLEL_KERNEL:
            return self._split_kernel(fn.task, rows, cols, args, masks)
        call = partial(fn, *args)
        call.keep = masks  # the mask ids live as long as the call that points at them
        if getattr(fn, "task", None):  # its rows as one task, for runtime.cpu.phase_plan
            call.task_job = fn.task, phase_plan.task_words(rows, cols, rows, self._ctl, masks,
                                                           args)
        return call

    def _split_kernel(self, task: int, rows: int, cols: int, args: list, masks: np.ndarray):
        """The kernel's rows in up to KERNEL_TASKS blocks, shared by the pool's threads
        (`NAME_task`, codegen.render); the job is the kernel's arguments as 64-bit words."""
        per = -(-rows // min(rows, KERNEL_TASKS))
        words = phase_plan.task_words(rows, cols, per, self._ctl, masks, args)
        call = partial(packed_gemm.library().symrnn_parallel, task, words.ctypes.data,
                       -(-rows // per), self._threads.ctypes.data)
        call.keep = (masks, words)
        return call

    def _op(self, step: Step):
        op = self.layout.op(step)
        parts = assemble.copies(op.name, op.attrs, op.inputs, op.output)
        dtypes = {self._dtype_of(v) for v in [*op.inputs, op.output]}
        if parts is not None and len(dtypes) == 1:  # a stack or concat: copy each part not
            # stored in its window already (codegen's plan_memory) into the window
            return partial(in_order, *(partial(np.copyto, self._view(w), self._view(x))
                                        for x, w in parts))
        summed = self._column_sum(op) if op.name == "sum" and self._gemms.own_pool else None
        if summed is not None:
            return summed
        ins = [(self._nd_view(v), tuple(v.shape)) for v in op.inputs]
        return partial(_run_op, op.fn, op.attrs, ins, self._view(op.output))

    def _column_sum(self, op):
        """A sum over every axis but the last (a bias gradient over all steps' rows) as a
        threaded column sum (packed_gemm.column_sum_call), or None for any other sum."""
        v, shape = op.inputs[0], tuple(op.inputs[0].shape)
        if len(op.inputs) != 1 or len(shape) < 2 or v.cols != shape[-1] or \
                set(reduced_axes(op.attrs, len(shape))) != set(range(len(shape) - 1)):
            return None
        return packed_gemm.column_sum_call(self._view(v), self._view(op.output), self._threads)

    # ---- construction helpers ---------------------------------------------------------------
    def _load_kernels(self, load) -> dict:
        names = self.layout.kernel_names()
        if not names:
            return {}
        if load is None:
            from runtime.compile_cache import load_kernels as load  # needs a C compiler
        return load([self.program.kernels[n] for n in names])

    def _dtype_of(self, v: View) -> str:
        return self.layout.dtype(v)

    def _packing_plan(self) -> dict:
        """packed_gemm.plan's steps, where the GEMM implementation packs their dtype, keyed by
        step index, or (loop index, iteration, body step) (runtime.cpu.loop.planning_steps)."""
        flat, where = loop.planning_steps(self._steps)
        skip = partial(gemv.in_place, dtype_of=self._dtype_of) if self._gemms.own_pool else None
        return {(i if at is None else (i, *at)): found
                for f, found in packed_gemm.plan(flat, self._dtype_of, skip).items()
                for i, at in [where[f]] if self._gemms.packs(self._dtype_of(flat[f].inputs[1]))}

    def _packing_scratch(self) -> dict:
        """One scratch per dtype for the products that are not in the packing plan, which pack
        their operands block by block (packed_gemm.big_call) and run one at a time."""
        sizes: dict = {}
        flat, where = loop.planning_steps(self._steps)
        for s, (i, at) in zip(flat, where):
            if s.kind != "gemm" or (i if at is None else (i, *at)) in self._pack_plan:
                continue
            b = s.inputs[1]
            k, n = (b.cols, b.rows) if transposed(s, "b") else (b.rows, b.cols)
            dtype = self._dtype_of(b)
            size = self._gemms.scratch_size(k, n, dtype)
            if size:
                sizes[dtype] = max(sizes.get(dtype, 0), size)
        return {d: aligned(n, d) for d, n in sizes.items()}


def prepare(dtypes=(), program: Program | None = None) -> list:
    """Starts building, each in a thread of its own, what a CpuEngine loads at construction:
    the GEMM libraries for `dtypes` (runtime.cpu.packed_gemm) and the kernels that `program`
    launches, as the engine will ask for them (the same bundles: runtime.compile_cache), while
    the caller compiles. Returns the threads; a failure is left for the engine to report."""
    from runtime.compile_cache import load_kernels

    suffixes = [packed_gemm.SUFFIX[d] for d in dtypes if d in packed_gemm.SUFFIX]
    jobs = [partial(_prepare_gemms, suffixes)] if suffixes and _own_gemm() else []
    names = body_kernels(program.steps) if program is not None else []
    if names:
        jobs.append(partial(load_kernels, [program.kernels[n] for n in names]))
    threads = [threading.Thread(target=_quietly, args=(job,), daemon=True) for job in jobs]
    for t in threads:
        t.start()
    return threads


def _own_gemm() -> bool:
    """Whether the engine will run symrnn's own GEMMs (SYMRNN_GEMM; a bad value is the
    engine's to report): `blas` and `mkl` use nothing of runtime.cpu.packed_gemm's library."""
    try:
        return gemm.selected_name() == "packed"
    except ConfigError:
        return False


def _prepare_gemms(suffixes: list) -> None:
    packed_gemm.library().prepare(suffixes)


def _quietly(job) -> None:
    """`job()`; an error is dropped here: the engine meets it again and raises it."""
    with contextlib.suppress(Exception):
        job()


def _address(x: np.ndarray) -> int:
    return x.__array_interface__["data"][0]


def _run_op(fn, attrs, ins, out):
    args = [x if x.shape == shape else x.reshape(shape) for x, shape in ins]
    np.copyto(out, np.reshape(fn(attrs, *args), out.shape), casting="unsafe")

