"""emit: the planned graph -> a Program: steps, kernel sources from the kernel IR, stats.

Each fused group becomes a KernelIR; kernels with the same structure (a layer's step kernel
at every time step) are rendered and compiled once and launched with different views and
mask ids. A group's statements are first listed as plain tuples `(Load, dst, operand)`, ...:
their repr tells structures apart exactly as the KernelIR's key does, at a fraction of the
cost, so each structure is built into a KernelIR, hashed and rendered once.
"""
from __future__ import annotations

import math

import numpy as np

from codegen.graph import Graph, node, roots
from runtime.kernel_ir import Compute, KernelIR, Load, Reduce, Store
from runtime.program import Buffer, Program, Step
from runtime.render import kernel_from_ir

MASKED = ("dropout", "zoneout", "step_select", "step_zero")  # mask_id: a launch argument


def emit(g: Graph, output_names: list[str], dtype: str) -> Program:
    layout = g.graph["layout"]
    groups = g.graph.get("groups", {})
    out = set(roots(g))
    steps, kernels, names = [], {}, {}
    for unit, phase in g.graph["schedule"]:
        if unit in groups:
            step, ir = _kernel_step(g, unit, groups[unit], out, layout, phase, names)
            if ir is not None and ir.name not in kernels:
                kernels[ir.name] = kernel_from_ir(ir)
            steps.append(step)
        else:
            steps.append(_node_step(g, unit, layout, phase))
    heads = list(g.graph["outputs"])
    args = {nid: (node(g, nid).shape, node(g, nid).dtype) for nid in g
            if node(g, nid).op == "var" and node(g, nid).attr("kind") != "head_grad"}
    head_grads = g.graph.get("head_grads", {})
    program = Program(
        dtype=dtype, args=args,
        outputs=[(name, layout[h]) for name, h in zip(output_names, heads)],
        grads={a: layout[gid] for a, gid in g.graph.get("grads", {}).items()},
        head_grads=[(name, layout[head_grads[h]].buffer) for name, h in zip(output_names, heads)
                    if h in head_grads],
        buffers=_buffers(g, args, head_grads), steps=steps, kernels=kernels)
    program.stats = _stats(g, program)
    return program


def _kernel_step(g, unit, members, out, layout, phase, names):
    """The launch of a fused group, and its KernelIR if `names` ({structure: kernel name})
    has not seen the structure yet (else None)."""
    inside = set(members)
    loads, body, values, outs, masks = [], [], {}, [], []
    for nid in members:
        n = node(g, nid)
        for src in n.inputs:
            if src not in inside and src not in values:
                values[src] = len(values)
                body.append((Load, values[src], len(loads)))
                loads.append(src)
        attrs = dict(n.attrs)
        if n.op in MASKED:  # one slot per mask id: a mask the backward uses twice is drawn once
            mask_id = int(n.attr("mask_id"))
            if mask_id not in masks:
                masks.append(mask_id)
            attrs = {**({"p": attrs["p"]} if "p" in attrs else {}), "mask": masks.index(mask_id)}
        values[nid] = len(values)
        if n.op == "row_sum":
            body.append((Reduce, values[nid], "sum", values[n.inputs[0]]))
        else:
            body.append((Compute, values[nid], n.op, tuple([values[s] for s in n.inputs]),
                         tuple(sorted(attrs.items()))))
        if nid in layout and (nid in out or not inside.issuperset(g.users[nid])):
            body.append((Store, len(outs), values[nid]))
            outs.append(nid)
    last = node(g, members[-1])
    structure = (last.dtype, len(loads), len(outs), len(masks), body)
    key, ir = repr(structure), None
    if key not in names:
        ir = KernelIR(*structure[:4], tuple(kind(*fields) for kind, *fields in body))
        names[key] = ir.name
    step = Step("kernel", phase, unit, [layout[x] for x in loads], [layout[x] for x in outs],
                {"kernel": names[key], "rows": _rows(last.shape), "cols": _cols(last.shape),
                 "masks": tuple(masks)})
    return step, ir


def _node_step(g, nid, layout, phase) -> Step:
    n = node(g, nid)
    kind = "gemm" if n.op == "dot" else "op"
    attrs = dict(n.attrs)
    if kind == "gemm":
        attrs = {"trans_a": bool(attrs.get("transpose_a")),
                 "trans_b": bool(attrs.get("transpose_b"))}
    else:
        attrs["op"] = n.op
    return Step(kind, phase, nid, [layout[i] for i in n.inputs], [layout[nid]], attrs)


def _buffers(g, args, head_grads) -> dict:
    bufs = {b: Buffer(b, "arena", size, b.split(".", 1)[1])
            for b, size in g.graph["arena"].items()}
    for a, (shape, dtype) in args.items():
        bufs[f"arg:{a}"] = Buffer(f"arg:{a}", "arg", math.prod(shape), dtype)
    for var in head_grads.values():
        n = node(g, var)
        bufs[f"head_grad:{var}"] = Buffer(f"head_grad:{var}", "head_grad", math.prod(n.shape),
                                          n.dtype)
    return bufs


def _stats(g, p: Program) -> dict:
    stats = {"kernels": len(p.kernels), "arena_bytes": 0, "unplanned_bytes": 0, "flops": {}}
    for phase in ("forward", "backward"):
        steps = p.steps_in(phase)
        stats[f"launches_{phase}"] = sum(s.kind == "kernel" for s in steps)
        stats[f"gemms_{phase}"] = sum(s.kind == "gemm" for s in steps)
        stats[f"ops_{phase}"] = sum(s.kind == "op" for s in steps)
        stats["flops"][phase] = sum(_flops(s) for s in steps)
    for name, size in g.graph["arena"].items():
        item = np.dtype(name.split(".", 1)[1]).itemsize
        stats["arena_bytes"] += size * item
        stats["unplanned_bytes"] += g.graph["unplanned"].get(name, 0) * item
    return stats


def _flops(s: Step) -> int:
    if s.kind == "gemm":
        a = s.inputs[0]
        k = a.rows if s.attrs.get("trans_a") else a.cols
        out = s.outputs[0]
        return 2 * out.rows * out.cols * k
    if s.kind == "kernel":
        return s.attrs["rows"] * s.attrs["cols"] * len(s.outputs)
    return 0


def _rows(shape) -> int:
    return math.prod(shape[:-1]) if shape else 1


def _cols(shape) -> int:
    return shape[-1] if shape else 1
