"""What every engine reads from a Program, checked once: `ProgramLayout`.

    >>> layout = ProgramLayout(program)       # raises ValueError for a program no engine runs
    >>> launch = layout.launch(step)          # KernelLaunch: kernel, rows, cols, masks, views

The CPU and CUDA engines (runtime.cpu, runtime.cuda) build on it and keep only what differs
between devices: how memory is allocated, how a kernel is launched, how a GEMM is called.
Here, once for both:

- the argument, output and gradient specs the executor reads (`arg_specs`, `out_specs`,
  `wrt`), the steps in phase order (`steps`; a step in neither phase is refused);
- argument buffers (`arg_of`: a Buffer of kind "arg" named `arg:NAME`, or just `NAME`) and
  the check of the array the caller gives for one (`arg_value`), head-gradient buffers
  (`head_grads`);
- step attributes: gemm operands and transposes (`gemm`), kernel launch shapes, arity and
  dtypes (`launch`), library op calls (`op`), each view inside its buffer (`check_view`);
- the initial contents of a buffer (`initial_contents`: zeros, NaN under SYMRNN_DEBUG, so that
  a read before any write shows up in the results).

Each engine dispatches a step on its kind through a table of its own ({"gemm": ..,
"kernel": .., "op": ..}); a new step kind adds an entry there and, if it has attributes both
engines read, a method here. The full schema check of an untrusted program (types, ranges,
dataflow) is runtime.program_check's, which the artifact loader runs first.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from runtime.errors import BindError, ShapeError, fmt_shape
from runtime.library import LIBOPS
from runtime.program import Kernel, Program, Step, View, iteration

PHASES = ("forward", "backward")
FLOATS = ("float32", "float64")
GEMM_FLAGS = ("trans_a", "trans_b")  # a gemm step's attrs; any other would be ignored


@dataclass(frozen=True)
class GemmOperands:
    """`c = op(a) @ op(b)`, op transposing where `trans_a`/`trans_b`."""
    a: View
    b: View
    c: View
    trans_a: bool
    trans_b: bool


@dataclass(frozen=True)
class KernelLaunch:
    """A kernel over the index space `rows x cols`; `masks` its mask ids ((0,) for none)."""
    kernel: Kernel
    rows: int
    cols: int
    masks: tuple
    views: list  # the step's inputs, then its outputs


@dataclass(frozen=True)
class OpCall:
    """A library op (runtime.library.LIBOPS[name]) with its attributes."""
    name: str
    fn: object
    attrs: dict
    inputs: list
    output: View


class ProgramLayout:
    """The parts of `program` an engine reads, checked (ValueError: "program: ...")."""

    def __init__(self, program: Program):
        self.program = program
        self.arg_specs = {n: (tuple(s), d) for n, (s, d) in program.args.items()}
        self.out_specs = [(n, tuple(v.shape), self.dtype(v)) for n, v in program.outputs]
        self.wrt = list(program.grads)
        odd = [s.name for s in program.steps if s.phase not in PHASES]
        if odd:
            raise ValueError(f"program: steps {odd} are in neither phase {PHASES}")
        self.steps = [s for phase in PHASES for s in program.steps if s.phase == phase]
        self.arg_of = self._arg_buffers()
        self.head_grads = [self._head_grad(h, b) for h, b in program.head_grads]
        for s in self.steps:
            if s.kind == "loop":
                self._check_last_iteration(s)

    def dtype(self, v: View) -> str:
        return self.program.buffers[v.buffer].dtype

    def itemsize(self, v: View) -> int:
        return np.dtype(self.dtype(v)).itemsize

    def kernel_names(self, steps: list | None = None) -> list:
        """The kernels the steps launch (loop bodies included), sorted."""
        return body_kernels(self.steps if steps is None else steps)

    def mask_ids(self) -> list:
        """Every launch's mask ids (a loop body's at iteration 0), sorted, with (0,) (a launch
        without masks) among them."""
        ids = {tuple(s.attrs.get("masks", ())) or (0,) for s in body_steps(self.steps)
               if s.kind == "kernel"}
        return sorted(ids | {(0,)})

    def users(self) -> dict:
        """buffer name -> indices (in `steps`) of the steps that read or write it; a loop
        uses what its body does."""
        users: dict = {}
        for i, s in enumerate(self.steps):
            for b in body_steps([s]):
                for v in [*b.inputs, *b.outputs]:
                    users.setdefault(v.buffer, set()).add(i)
        return users

    def running_index(self, phase: str) -> list:
        """For each step of `program.steps_in(phase)` (loops expanded), the index among the
        phase's own steps (a loop's) that runs it."""
        found = []
        for i, s in enumerate(s for s in self.steps if s.phase == phase):
            found += [i] * (s.trips * len(s.body) if s.kind == "loop" else 1)
        return found

    # ---- buffers and views ------------------------------------------------------------------
    def check_view(self, v: View, rows: int | None = None, cols: int | None = None) -> None:
        """`v` (or its first `rows x cols`) lies inside its buffer."""
        rows, cols = v.rows if rows is None else rows, v.cols if cols is None else cols
        size = self.program.buffers[v.buffer].size
        if v.offset < 0 or (rows and cols and v.offset + (rows - 1) * v.ld + cols > size):
            raise ValueError(f"program: view {v} ({rows} x {cols}) reaches past buffer "
                             f"{v.buffer!r} ({size} elements)")

    def arg_value(self, buffer: str, args: dict) -> np.ndarray:
        """The caller's array for argument buffer `buffer`, checked: an array of its size."""
        arg, size = self.arg_of[buffer], self.program.buffers[buffer].size
        value = args.get(arg)
        if not isinstance(value, np.ndarray):
            raise BindError(f"forward: no array for argument {arg!r}")
        if value.size != size:
            raise ShapeError(f"forward: {arg!r} has shape {fmt_shape(value.shape)} "
                             f"({value.size} elements) but the program holds {size}")
        return value

    def _arg_buffers(self) -> dict:
        """argument buffer -> argument name."""
        found = {}
        for b in self.program.buffers.values():
            if b.kind not in ("arena", "arg", "head_grad"):
                raise ValueError(f"program: buffer {b.name!r} has unknown kind {b.kind!r}")
            if b.kind == "arg":
                name = b.name if b.name in self.arg_specs else b.name.removeprefix("arg:")
                if name not in self.arg_specs:
                    raise ValueError(f"program: argument buffer {b.name!r} names no argument "
                                     f"of {list(self.arg_specs)}")
                found[b.name] = name
        return found

    def _head_grad(self, head: str, buffer: str) -> tuple:
        """(index of the output, buffer, the output's shape)."""
        names = [n for n, _ in self.program.outputs]
        if head not in names:
            raise ValueError(f"program: head gradient for {head!r}, which is not an output "
                             f"{names}")
        index = names.index(head)
        return index, buffer, self.out_specs[index][1]

    # ---- steps ------------------------------------------------------------------------------
    def _check_last_iteration(self, loop: Step) -> None:
        """The engines build a loop's body for its first iterations and move it on from there
        (runtime.cpu.loop, runtime.cuda.loop); views move affinely, so the body at the last
        iteration inside its buffers bounds every iteration."""
        if not loop.body or len(loop.strides) != len(loop.body) or loop.trips < 1:
            raise ValueError(f"program: loop {loop.name!r} has {len(loop.body)} body steps, "
                             f"{len(loop.strides)} strides and {loop.trips} trips")
        check = {"gemm": self.gemm, "kernel": self.launch, "op": self.op}
        for b, d in zip(loop.body, loop.strides):
            if b.kind not in check:
                raise ValueError(f"program: loop {loop.name!r} runs a {b.kind!r} step")
            check[b.kind](iteration(b, d, loop.trips - 1))

    def gemm(self, step: Step) -> GemmOperands:
        a, b, c = step.inputs[0], step.inputs[1], step.outputs[0]
        dtypes = {self.dtype(v) for v in (a, b, c)}
        if len(dtypes) != 1 or not dtypes <= set(FLOATS):
            raise ValueError(f"program: gemm {step.name!r} operands must share a float dtype, "
                             f"given {sorted(dtypes)}")
        odd = sorted(set(step.attrs) - set(GEMM_FLAGS))
        if odd:  # e.g. `accumulate` or `transpose_a`: honoured by no engine, so refused
            raise ValueError(f"program: gemm {step.name!r} has attribute {odd[0]!r}; a gemm "
                             f"takes only {list(GEMM_FLAGS)}")
        ta, tb = bool(step.attrs.get("trans_a")), bool(step.attrs.get("trans_b"))
        (m, k), (k2, n) = _op_shape(a, ta), _op_shape(b, tb)
        if k != k2 or (c.rows, c.cols) != (m, n):
            raise ValueError(f"program: gemm {step.name!r} multiplies {(m, k)} by {(k2, n)} "
                             f"into {(c.rows, c.cols)}")
        for v in (a, b, c):
            self.check_view(v)
        return GemmOperands(a, b, c, ta, tb)

    def launch(self, step: Step) -> KernelLaunch:
        kernel = self.program.kernels[step.attrs["kernel"]]
        rows = int(step.attrs.get("rows", step.outputs[0].rows))
        cols = int(step.attrs.get("cols", step.outputs[0].cols))
        masks = tuple(step.attrs.get("masks", ()))
        counts = (len(step.inputs), len(step.outputs), len(masks))
        if counts != (kernel.n_in, kernel.n_out, kernel.n_masks):
            raise ValueError(f"program: step {step.name!r} gives kernel {kernel.name!r} "
                             f"(inputs, outputs, masks) {counts}, it takes "
                             f"{(kernel.n_in, kernel.n_out, kernel.n_masks)}")
        views = [*step.inputs, *step.outputs]
        dtypes = {self.dtype(v) for v in views}
        if dtypes != {kernel.dtype}:
            raise ValueError(f"program: step {step.name!r} passes {sorted(dtypes)} buffers to "
                             f"{kernel.dtype} kernel {kernel.name!r}")
        for v in views:
            self.check_view(v, rows, cols)
        return KernelLaunch(kernel, rows, cols, masks or (0,), views)

    def op(self, step: Step) -> OpCall:
        name = step.attrs.get("op")
        if name not in LIBOPS:
            raise ValueError(f"program: op step {step.name!r} runs {name!r}, which is not a "
                             f"library op {sorted(LIBOPS)}")
        if len(step.outputs) != 1:
            raise ValueError(f"program: op step {step.name!r} has {len(step.outputs)} outputs, "
                             f"an op step has one")
        for v in [*step.inputs, *step.outputs]:
            self.check_view(v)
        attrs = {k: v for k, v in step.attrs.items() if k != "op"}
        return OpCall(name, LIBOPS[name], attrs, list(step.inputs), step.outputs[0])


def body_kernels(steps: list) -> list:
    """The kernels that `steps` launch (loop bodies included), sorted."""
    return sorted({s.attrs["kernel"] for s in body_steps(steps) if s.kind == "kernel"})


def body_steps(steps: list) -> list:
    """Every non-loop step, with each loop's body (at iteration 0) in place of the loop."""
    return [b for s in steps for b in (s.body if s.kind == "loop" else [s])]


def initial_contents(size: int, dtype: str) -> np.ndarray:
    """A buffer's contents before any step runs: zeros; under SYMRNN_DEBUG float buffers
    start as NaN, so that a read before any write shows up in the results."""
    flat = np.zeros(size, dtype)
    if os.environ.get("SYMRNN_DEBUG", "0") not in ("", "0") and flat.dtype.kind == "f":
        flat.fill(np.nan)
    return flat


def _op_shape(v: View, transposed: bool) -> tuple:
    return (v.cols, v.rows) if transposed else (v.rows, v.cols)
