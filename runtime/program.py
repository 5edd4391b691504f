"""The Program: what the compiler hands an executor. Plain data, JSON plus kernel sources.

Each Kernel keeps the runtime.kernel_ir.KernelIR it was rendered from (`ir`; None for a
hand-written kernel, which runs but cannot be exported): artifacts carry kernels as IR.

Storage is a set of buffers: `arg` (bound to the executor's argument arrays at run time),
`head_grad` (the gradients given to backward), and `arena` (one allocation holding every
temporary, output and gradient at the offsets the memory planner chose). Every value a step
reads or writes is a `View`: a 2-D window `(rows, cols)` with row stride `ld` (elements;
0 repeats one row) at `offset` elements into a buffer; `shape` is the value's logical shape.

Steps, in order, each in phase "forward" or "backward":
- `gemm`: `out = op(a) @ op(b)` with `trans_a`/`trans_b` (its only attributes).
- `kernel`: a fused elementwise kernel, `kernel` names a source in `kernels`, `rows`/`cols`
  the index space, `masks` the mask ids for this launch.
- `op`: a library op run from the op table (`op`, `attrs`): losses, embeddings, reductions,
  copies; outside the time loop.
- `loop`: a rolled run of repeated steps (codegen.roll). `body` holds the steps of the first
  iteration (gemm, kernel or op steps, never a loop); `trips` (>= 1) is how many iterations
  run; `strides[j]` is a `LoopStride` for `body[j]`: iteration `k` runs `body[j]` with every
  input view's offset plus `k * strides[j].inputs[i]`, every output's plus
  `k * strides[j].outputs[i]`, its mask ids iteration 0's plus `k * strides[j].masks[i]` (a
cell's per-step masks: symrnn.ops.step_mask_id) or, for ids that follow no such rule (masks
named by the user hash their names), those of row `k` of `strides[j].mask_table` (`trips`
rows of `len(attrs["masks"])` ids, flattened);
and (cosmetic:
the unrolled view's step names) the `i`-th decimal number in its name plus
`k * strides[j].names[i]` (`names` empty: the name stays). Iterations
  run in order, the body in order within each. A loop has no inputs, outputs or attrs of its
  own. `unrolled(program)` expands every loop into the steps it stands for.

A validator checks, for a loop: `trips` an int >= 1; `body` non-empty, none of its steps a
loop; `len(strides) == len(body)`, and per body step the lengths of `inputs`, `outputs`
equal its numbers of inputs and outputs, `masks` empty or as long as `attrs["masks"]`,
`mask_table` empty or `trips * len(attrs["masks"])` ids, row 0 equal to `attrs["masks"]`,
not both `masks` and `mask_table`; `names` empty or one per number in the
name; the strides ints; the views
of the first and of the last iteration inside their buffers (views are affine in `k`, so
those two bound them all); the last iteration's mask ids within uint32.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace

from runtime.kernel_ir import ir_from_dict, ir_to_dict

_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class View:
    buffer: str
    offset: int
    rows: int
    cols: int
    ld: int
    shape: tuple

    @property
    def contiguous(self) -> bool:
        return self.ld == self.cols or self.rows == 1


@dataclass(frozen=True)
class Buffer:
    name: str
    kind: str  # "arg" | "head_grad" | "arena"
    size: int  # elements
    dtype: str


@dataclass(frozen=True)
class LoopStride:
    """Per-iteration offset (elements) of each input and output view of one body step, and
    the per-iteration increment of each of its mask ids."""

    inputs: tuple
    outputs: tuple
    masks: tuple = ()
    names: tuple = ()  # per decimal number in the body step's name, its per-iteration growth
    mask_table: tuple = ()  # the mask ids of every iteration, trips rows of len(masks)

    def masks_at(self, k: int, first: tuple) -> tuple:
        """The mask ids of iteration `k`, `first` being those of iteration 0."""
        if self.mask_table:
            n = len(first)
            return tuple(self.mask_table[k * n:(k + 1) * n])
        return tuple(m + k * d for m, d in zip(first, self.masks))


@dataclass
class Step:
    kind: str  # "gemm" | "kernel" | "op" | "loop"
    phase: str  # "forward" | "backward"
    name: str  # the graph node (or fused group) this step computes
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    body: list = field(default_factory=list)  # loop: the steps of iteration 0
    trips: int = 0  # loop: how many iterations
    strides: list = field(default_factory=list)  # loop: one LoopStride per body step


@dataclass
class Kernel:
    name: str
    c_source: str
    cuda_source: str
    n_in: int
    n_out: int
    n_masks: int
    dtype: str
    ir: object = None  # the runtime.kernel_ir.KernelIR both sources were rendered from


@dataclass
class Program:
    dtype: str
    args: dict  # name -> (shape, dtype)
    outputs: list  # [(name, View)] the heads, in order
    grads: dict  # argument -> View of its gradient
    head_grads: list  # [(head name, buffer name)]
    buffers: dict  # name -> Buffer
    steps: list  # [Step]
    kernels: dict  # name -> Kernel
    stats: dict = field(default_factory=dict)

    def steps_in(self, phase: str) -> list:
        """The steps of `phase` as they run, loops expanded (the unrolled view); engines
        walk `steps` itself."""
        return [s for s in unrolled_steps(self.steps) if s.phase == phase]

    def to_json(self) -> str:
        d = asdict(replace(self, kernels={}))
        d["kernels"] = {n: {**asdict(replace(k, ir=None)), "ir": ir_to_dict(k.ir)}
                        for n, k in self.kernels.items()}
        return json.dumps(d, indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Program:
        return Program.from_dict(json.loads(text))

    @staticmethod
    def from_dict(d: dict) -> Program:
        """The Program of `asdict(program)` (or of its JSON)."""
        view = _view
        return Program(
            dtype=d["dtype"],
            args={k: (tuple(s), t) for k, (s, t) in d["args"].items()},
            outputs=[(n, view(v)) for n, v in d["outputs"]],
            grads={k: view(v) for k, v in d["grads"].items()},
            head_grads=[tuple(x) for x in d["head_grads"]],
            buffers={k: Buffer(**b) for k, b in d["buffers"].items()},
            steps=[_step(s) for s in d["steps"]],
            kernels={k: Kernel(**{**v, "ir": ir_from_dict(v.get("ir"))})
                     for k, v in d["kernels"].items()},
            stats=d["stats"],
        )


def _step(s: dict) -> Step:
    return Step(s["kind"], s["phase"], s["name"], [_view(v) for v in s["inputs"]],
                [_view(v) for v in s["outputs"]], _tuples(s["attrs"]),
                [_step(b) for b in s.get("body", ())], int(s.get("trips", 0)),
                [LoopStride(tuple(x["inputs"]), tuple(x["outputs"]), tuple(x["masks"]),
                            tuple(x.get("names", ())), tuple(x.get("mask_table", ())))
                 for x in s.get("strides", ())])


def iteration(step: Step, stride: LoopStride, k: int) -> Step:
    """Body step `step` as it runs in iteration `k` of its loop."""
    def moved(views, by):
        return [replace(v, offset=v.offset + k * d) if d else v for v, d in zip(views, by)]

    attrs = step.attrs
    if stride.masks or stride.mask_table:
        attrs = {**attrs, "masks": stride.masks_at(k, attrs["masks"])}
    name = step.name
    if stride.names:
        grow = iter(stride.names)
        name = _NUMBER.sub(lambda m: str(int(m.group()) + k * next(grow)), name)
    return Step(step.kind, step.phase, name, moved(step.inputs, stride.inputs),
                moved(step.outputs, stride.outputs), attrs)


def unrolled_steps(steps: list) -> list:
    """`steps` with every loop expanded into the steps it runs, in order."""
    out = []
    for s in steps:
        if s.kind != "loop":
            out.append(s)
            continue
        for k in range(s.trips):
            out += [iteration(b, d, k) for b, d in zip(s.body, s.strides)]
    return out


def unrolled(program: Program) -> Program:
    """`program` with its loops expanded: the unrolled view that compare and inspect show."""
    if not any(s.kind == "loop" for s in program.steps):
        return program
    return replace(program, steps=unrolled_steps(program.steps))


def _view(d: dict) -> View:
    return View(d["buffer"], d["offset"], d["rows"], d["cols"], d["ld"], tuple(d["shape"]))


def _tuples(v):
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v
