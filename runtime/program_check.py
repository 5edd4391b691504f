"""Checks a Program against its schema before anything is allocated for it.

`check_program(program)` is a pure function over the Program's fields: it raises
`ProgramInvalid` (a ValueError) naming the step and the field of the first problem, and
returns None for a program an engine can run without reading or writing outside a buffer:

- kinds, phases, ops and dtypes come from closed lists (gemm/kernel/op steps, the library ops
  of runtime.library, float32/float64 kernels and arena buffers);
- every count, size, offset and stride is an integer (never a bool or a float) in range, and
  every view lies inside its buffer: offset >= 0, rows and cols >= 1, `ld` 0 (one row
  repeated, read only) or >= cols, `offset + (rows - 1) * ld + cols <= size`, and its logical
  shape holds rows * cols elements; a kernel's views span the launch's (rows, cols);
- argument buffers hold exactly their argument, head-gradient buffers exactly their head, and
  an arena at least what its views reach and not much more (MAX_SLACK);
- a kernel launch gives its kernel the inputs, outputs and mask ids the kernel takes (and its
  IR, when it has one, the same counts, dtype and name); mask ids are uint32;
- gemm shapes agree: `op(a) @ op(b)` of (m, k) by (k, n) into (m, n);
- loop steps (runtime.program_loops): their body, trips and per-iteration strides;
- dataflow: no step reads an element that nothing wrote before it, and every output and
  gradient is written (`dataflow`).

The artifact loader runs it on every program it reads; the engines may run it on their own.
"""

# ruff: noqa: B023 (each message lambda is called, if at all, inside the loop that made it)
from __future__ import annotations

import math

from runtime.library import LIBOPS
from runtime.program import Kernel, Program, Step, View
from runtime.program_flow import ProgramInvalid, dataflow
from runtime.program_flow import check as _check
from runtime.program_loops import check_not_loop, loop_iterations

FLOATS = ("float32", "float64")
DTYPES = ("float32", "float64", "int32", "int64")
KINDS = ("arg", "head_grad", "arena")
PHASES = ("forward", "backward")
GEMM_ATTRS = ("trans_a", "trans_b")  # what the engines honour (runtime.layout.GEMM_FLAGS)
KERNEL_ATTRS = ("kernel", "rows", "cols", "masks")
MAX_ELEMENTS = 1 << 36  # of any one buffer: 256 GiB of float32
MAX_SLACK = 4096  # elements an arena may hold beyond what its views reach (alignment)


def check_program(program: Program, require_ir: bool = False) -> None:
    """Raises ProgramInvalid for the first field of `program` outside the schema (above);
    `require_ir`: every kernel must carry the KernelIR it was rendered from."""
    try:
        _check_fields(program, require_ir)
        dataflow(program)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:
        if isinstance(e, ProgramInvalid):
            raise
        raise ProgramInvalid(f"a field has the wrong type ({type(e).__name__}: {e})") from None


def _check_fields(p: Program, require_ir: bool) -> None:
    _check(p.dtype in FLOATS, lambda: f"field 'dtype' is {p.dtype!r}, expected one of {FLOATS}")
    _check(isinstance(p.args, dict), lambda: "field 'args' must be an object")
    for name, spec in p.args.items():
        _arg(name, spec)
    _check(isinstance(p.buffers, dict) and p.buffers,
           lambda: "field 'buffers' must be a non-empty object")
    for key, b in p.buffers.items():
        _buffer(p, key, b)
    _check(isinstance(p.kernels, dict), lambda: "field 'kernels' must be an object")
    for key, k in p.kernels.items():
        _kernel(key, k, require_ir)
    reach = dict.fromkeys(p.buffers, 0)
    _check(isinstance(p.steps, list), lambda: "field 'steps' must be a list")
    for i, s in enumerate(p.steps):
        _step(p, i, s, reach)
    _heads(p, reach)
    for name, b in p.buffers.items():
        _sizes(b, reach[name])


def _int(v, what: str, low: int = 0, high: int = MAX_ELEMENTS) -> int:
    _check(
        type(v) is int and low <= v <= high,
        lambda: f"{what} is {v!r}, expected an integer in [{low}, {high}]",
    )
    return v


def _shape(shape, what: str) -> int:
    _check(
        isinstance(shape, tuple) and len(shape) <= 8,
        lambda: f"{what} is {shape!r}, expected a shape of at most 8 dimensions",
    )
    for d in shape:
        _int(d, f"a dimension of {what}")
    size = math.prod(shape)
    _check(
        size <= MAX_ELEMENTS,
        lambda: f"{what} {shape} holds {size} elements, more than {MAX_ELEMENTS}",
    )
    return size


def _arg(name, spec) -> None:
    _check(
        isinstance(name, str) and isinstance(spec, tuple) and len(spec) == 2,
        lambda: f"field 'args' entry {name!r} must be [shape, dtype]",
    )
    _shape(spec[0], f"field 'args.{name}.shape'")
    _check(
        spec[1] in DTYPES,
        lambda: f"field 'args.{name}.dtype' is {spec[1]!r}, expected one of {DTYPES}",
    )


def _buffer(p: Program, key, b) -> None:
    what = f"buffer {key!r}"
    _check(getattr(b, "name", None) == key, lambda: f"{what}: field 'name' differs from its key")
    _check(b.kind in KINDS, lambda: f"{what}: field 'kind' is {b.kind!r}, expected one of {KINDS}")
    _int(b.size, f"{what}: field 'size'")
    _check(
        b.dtype in (FLOATS if b.kind != "arg" else DTYPES),
        lambda: f"{what}: field 'dtype' is {b.dtype!r}, not a dtype a {b.kind} buffer may have",
    )
    if b.kind == "arg":
        name = key if key in p.args else key.removeprefix("arg:")
        _check(name in p.args, lambda: f"{what} names no argument of the program")
        shape, dtype = p.args[name]
        _check(
            (b.size, b.dtype) == (math.prod(shape), dtype),
            lambda: (
                f"{what}: fields 'size', 'dtype' are {b.size}, {b.dtype}; argument {name!r} "
                f"is {shape} {dtype}"
            ),
        )


def _kernel(key, k, require_ir: bool) -> None:
    what = f"kernel {key!r}"
    _check(
        isinstance(k, Kernel) and k.name == key,
        lambda: f"{what}: field 'name' differs from its key",
    )
    for field in ("n_in", "n_out", "n_masks"):
        _int(getattr(k, field), f"{what}: field {field!r}", high=1 << 16)
    _check(
        k.dtype in FLOATS,
        lambda: f"{what}: field 'dtype' is {k.dtype!r}, expected one of {FLOATS}",
    )
    if k.ir is None:
        _check(not require_ir, lambda: f"{what} carries no kernel IR")
        return
    ir = k.ir
    _check(
        (ir.n_in, ir.n_out, ir.n_masks, ir.dtype) == (k.n_in, k.n_out, k.n_masks, k.dtype),
        lambda: (
            f"{what}: fields n_in, n_out, n_masks, dtype are "
            f"{(k.n_in, k.n_out, k.n_masks, k.dtype)}, its IR's "
            f"{(ir.n_in, ir.n_out, ir.n_masks, ir.dtype)}"
        ),
    )
    _check(ir.name == key, lambda: f"{what}: its IR hashes to the name {ir.name!r}")


def _view(p: Program, v, what: str, reach: dict, span=None, write=False) -> str:
    """Checks view `v` (over the launch's `span` (rows, cols) if given); returns its dtype.
    The common case (a good view) takes one expression; the field by field checks below run
    only to name what is wrong."""
    end = _good_view_end(p, v, span, write)
    if end is None:
        _view_fields(p, v, what, span, write)
        raise ProgramInvalid(f"{what} is not a valid view")  # not reached: the above raises
    reach[v.buffer] = max(reach[v.buffer], end)
    return p.buffers[v.buffer].dtype


def _good_view_end(p: Program, v, span, write: bool):
    """Where a well-formed view `v` ends, or None."""
    if type(v) is not View or type(v.buffer) is not str or v.buffer not in p.buffers:
        return None
    fields = (v.offset, v.ld, v.rows, v.cols)
    if any(type(x) is not int for x in fields) or type(v.shape) is not tuple or \
            any(type(d) is not int or d < 0 for d in v.shape) or len(v.shape) > 8:
        return None
    offset, ld, rows, cols = fields
    if not (0 <= offset <= MAX_ELEMENTS and 0 <= ld <= MAX_ELEMENTS and 1 <= rows <= MAX_ELEMENTS
            and 1 <= cols <= MAX_ELEMENTS and math.prod(v.shape) == rows * cols):
        return None
    rows, cols = span or (rows, cols)
    end = offset + (rows - 1) * ld + cols
    ld_ok = ld == 0 and not write or ld >= cols or rows == 1
    return end if ld_ok and end <= p.buffers[v.buffer].size else None


def _view_fields(p: Program, v, what: str, span, write: bool) -> None:
    _check(isinstance(v, View) and isinstance(v.buffer, str), lambda: f"{what} is not a view")
    _check(v.buffer in p.buffers, lambda: f"{what}: field 'buffer' is {v.buffer!r}, not a buffer")
    buf = p.buffers[v.buffer]
    offset, ld = _int(v.offset, f"{what}: field 'offset'"), _int(v.ld, f"{what}: field 'ld'")
    rows, cols = (
        _int(x, f"{what}: field {f!r}", 1) for f, x in (("rows", v.rows), ("cols", v.cols))
    )
    _check(
        _shape(v.shape, f"{what}: field 'shape'") == rows * cols,
        lambda: f"{what}: field 'shape' {v.shape} does not hold rows * cols = {rows * cols}",
    )
    rows, cols = span or (rows, cols)
    _check(
        ld == 0 and not write or ld >= cols or rows == 1,
        lambda: (
            f"{what}: field 'ld' is {ld}, expected {cols} (cols) or more"
            f"{'' if write else ', or 0'}"
        ),
    )
    end = offset + (rows - 1) * ld + cols
    _check(
        end <= buf.size,
        lambda: f"{what}: reaches element {end} of buffer {v.buffer!r}, which holds {buf.size}",
    )


def _step(p: Program, i: int, s, reach: dict) -> None:
    _check(isinstance(s, Step), lambda: f"step {i} is not a step")
    what = f"step {i} ({s.name!r})"
    _check(
        s.kind in ("gemm", "kernel", "op", "loop"),
        lambda: f"{what}: field 'kind' is {s.kind!r}, expected gemm, kernel, op or loop",
    )
    _check(
        s.phase in PHASES,
        lambda: f"{what}: field 'phase' is {s.phase!r}, expected one of {PHASES}",
    )
    if s.kind == "loop":  # each body step at the first and last iteration (program_loops)
        for where, b in loop_iterations(s, what):
            _kind_fields(p, b, where, reach)
        return
    check_not_loop(s, what)
    _kind_fields(p, s, what, reach)


def _kind_fields(p: Program, s: Step, what: str, reach: dict) -> None:
    _check(
        isinstance(s.inputs, list) and isinstance(s.outputs, list) and isinstance(s.attrs, dict),
        lambda: f"{what}: fields 'inputs', 'outputs' must be lists and 'attrs' an object",
    )
    {"gemm": _gemm, "kernel": _launch, "op": _op}[s.kind](p, s, what, reach)


def _gemm(p: Program, s: Step, what: str, reach: dict) -> None:
    _check(
        len(s.inputs) == 2 and len(s.outputs) == 1,
        lambda: (
            f"{what}: a gemm has 2 inputs and 1 output, given {len(s.inputs)} and {len(s.outputs)}"
        ),
    )
    odd = [k for k, v in s.attrs.items() if k not in GEMM_ATTRS or type(v) is not bool]
    _check(not odd, lambda: f"{what}: field 'attrs.{odd[0] if odd else ''}' is not a gemm flag")
    dtypes = {_view(p, v, f"{what} input {j}", reach) for j, v in enumerate(s.inputs)}
    dtypes.add(_view(p, s.outputs[0], f"{what} output 0", reach, write=True))
    _check(
        len(dtypes) == 1 and dtypes <= set(FLOATS), lambda: f"{what}: a gemm over {sorted(dtypes)}"
    )
    a, b, c = s.inputs[0], s.inputs[1], s.outputs[0]
    ta, tb = s.attrs.get("trans_a", False), s.attrs.get("trans_b", False)
    (m, k), (k2, n) = (
        (a.cols, a.rows) if ta else (a.rows, a.cols),
        (b.cols, b.rows) if tb else (b.rows, b.cols),
    )
    _check(
        k == k2 and (c.rows, c.cols) == (m, n),
        lambda: f"{what}: multiplies ({m}, {k}) by ({k2}, {n}) into ({c.rows}, {c.cols})",
    )


def _launch(p: Program, s: Step, what: str, reach: dict) -> None:
    odd = [k for k in s.attrs if k not in KERNEL_ATTRS]
    _check(not odd, lambda: f"{what}: field 'attrs.{odd[0] if odd else ''}' is not a launch field")
    name = s.attrs.get("kernel")
    _check(
        isinstance(name, str) and name in p.kernels,
        lambda: f"{what}: field 'attrs.kernel' is {name!r}, not a kernel of the program",
    )
    k = p.kernels[name]
    _check(s.outputs, lambda: f"{what}: a launch writes at least one output")
    rows = _int(s.attrs.get("rows", s.outputs[0].rows), f"{what}: field 'attrs.rows'", 1)
    cols = _int(s.attrs.get("cols", s.outputs[0].cols), f"{what}: field 'attrs.cols'", 1)
    masks = s.attrs.get("masks", ())
    _check(isinstance(masks, tuple), lambda: f"{what}: field 'attrs.masks' must be a list")
    for m in masks:
        _int(m, f"{what}: a mask id in field 'attrs.masks'", high=(1 << 32) - 1)
    counts = (len(s.inputs), len(s.outputs), len(masks))
    _check(
        counts == (k.n_in, k.n_out, k.n_masks),
        lambda: (
            f"{what}: gives kernel {name!r} "
            f"(inputs, outputs, masks) {counts}, it takes {(k.n_in, k.n_out, k.n_masks)}"
        ),
    )
    dtypes = {
        _view(p, v, f"{what} input {j}", reach, (rows, cols)) for j, v in enumerate(s.inputs)
    }
    dtypes |= {
        _view(p, v, f"{what} output {j}", reach, (rows, cols), write=True)
        for j, v in enumerate(s.outputs)
    }
    _check(
        dtypes == {k.dtype},
        lambda: f"{what}: passes {sorted(dtypes)} buffers to {k.dtype} kernel {name!r}",
    )


def _op(p: Program, s: Step, what: str, reach: dict) -> None:
    name = s.attrs.get("op")
    _check(
        isinstance(name, str) and name in LIBOPS,
        lambda: f"{what}: field 'attrs.op' is {name!r}, not a library op",
    )
    _check(len(s.outputs) == 1, lambda: f"{what}: an op step has 1 output, given {len(s.outputs)}")
    _plain(s.attrs, f"{what}: field 'attrs'", 0)
    for j, v in enumerate(s.inputs):
        _view(p, v, f"{what} input {j}", reach)
    _view(p, s.outputs[0], f"{what} output 0", reach, write=True)


def _plain(v, what: str, depth: int) -> None:
    """Op attributes: numbers, short strings, None, and shallow lists and objects of them."""
    _check(depth <= 4, lambda: f"{what} is nested too deeply")
    if isinstance(v, (tuple, list)):
        _check(len(v) <= 64, lambda: f"{what} has more than 64 items")
        for x in v:
            _plain(x, what, depth + 1)
    elif isinstance(v, dict):
        _check(
            len(v) <= 64 and all(isinstance(k, str) for k in v),
            lambda: f"{what} is not a small object",
        )
        for k, x in v.items():
            _plain(x, f"{what}.{k}", depth + 1)
    elif type(v) is int:
        _check(abs(v) <= MAX_ELEMENTS, lambda: f"{what} holds the integer {v}, out of range")
    else:
        _check(
            v is None or type(v) in (bool, float) or isinstance(v, str) and len(v) <= 256,
            lambda: f"{what} holds {type(v).__name__} {v!r}",
        )


def _heads(p: Program, reach: dict) -> None:
    _check(
        isinstance(p.outputs, list) and p.outputs,
        lambda: "field 'outputs' must be a non-empty list",
    )
    names = []
    for j, out in enumerate(p.outputs):
        _check(
            isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], str),
            lambda: f"output {j} must be [name, view]",
        )
        _view(p, out[1], f"output {j} ({out[0]!r})", reach, write=True)
        names.append(out[0])
    _check(isinstance(p.grads, dict), lambda: "field 'grads' must be an object")
    for name, v in p.grads.items():
        _check(name in p.args, lambda: f"field 'grads' names {name!r}, not an argument")
        _view(p, v, f"the gradient of {name!r}", reach, write=True)
    _check(isinstance(p.head_grads, list), lambda: "field 'head_grads' must be a list")
    for head, buffer in p.head_grads:
        _check(head in names, lambda: f"field 'head_grads' names {head!r}, not an output")
        b = p.buffers.get(buffer)
        _check(
            b is not None and b.kind == "head_grad",
            lambda: f"field 'head_grads' gives {head!r} buffer {buffer!r}, not a head_grad buffer",
        )
        size = math.prod(p.outputs[names.index(head)][1].shape)
        _check(
            b.size == size,
            lambda: f"buffer {buffer!r}: field 'size' is {b.size}, its head holds {size}",
        )


def _sizes(b, reach: int) -> None:
    if b.kind == "arena":
        _check(
            b.size <= reach + MAX_SLACK,
            lambda: (
                f"buffer {b.name!r}: field 'size' is {b.size}, but "
                f"its views reach only {reach} elements"
            ),
        )
