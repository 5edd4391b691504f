"""The Program: what the compiler hands an executor. Plain data, JSON plus kernel sources.

Each Kernel keeps the runtime.kernel_ir.KernelIR it was rendered from (`ir`; None for a
hand-written kernel, which runs but cannot be exported): artifacts carry kernels as IR.

Storage is a set of buffers: `arg` (bound to the executor's argument arrays at run time),
`head_grad` (the gradients given to backward), and `arena` (one allocation holding every
temporary, output and gradient at the offsets the memory planner chose). Every value a step
reads or writes is a `View`: a 2-D window `(rows, cols)` with row stride `ld` (elements;
0 repeats one row) at `offset` elements into a buffer; `shape` is the value's logical shape.

Steps, in order, each in phase "forward" or "backward":
- `gemm`: `out = op(a) @ op(b)` with `trans_a`/`trans_b`; `accumulate` adds into `out`.
- `kernel`: a fused elementwise kernel, `kernel` names a source in `kernels`, `rows`/`cols`
  the index space, `masks` the mask ids for this launch.
- `op`: a library op run from the op table (`op`, `attrs`): losses, embeddings, reductions,
  copies; outside the time loop.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from runtime.kernel_ir import ir_from_dict, ir_to_dict


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


@dataclass
class Step:
    kind: str  # "gemm" | "kernel" | "op"
    phase: str  # "forward" | "backward"
    name: str  # the graph node (or fused group) this step computes
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)


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
        return [s for s in self.steps if s.phase == phase]

    def to_json(self) -> str:
        d = asdict(replace(self, kernels={}))
        d["kernels"] = {n: {**asdict(replace(k, ir=None)), "ir": ir_to_dict(k.ir)}
                        for n, k in self.kernels.items()}
        return json.dumps(d, indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Program:
        d = json.loads(text)
        view = _view
        return Program(
            dtype=d["dtype"],
            args={k: (tuple(s), t) for k, (s, t) in d["args"].items()},
            outputs=[(n, view(v)) for n, v in d["outputs"]],
            grads={k: view(v) for k, v in d["grads"].items()},
            head_grads=[tuple(x) for x in d["head_grads"]],
            buffers={k: Buffer(**b) for k, b in d["buffers"].items()},
            steps=[Step(s["kind"], s["phase"], s["name"], [view(v) for v in s["inputs"]],
                        [view(v) for v in s["outputs"]], _tuples(s["attrs"]))
                   for s in d["steps"]],
            kernels={k: Kernel(**{**v, "ir": ir_from_dict(v.get("ir"))})
                     for k, v in d["kernels"].items()},
            stats=d["stats"],
        )


def _view(d: dict) -> View:
    return View(d["buffer"], d["offset"], d["rows"], d["cols"], d["ld"], tuple(d["shape"]))


def _tuples(v):
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v
