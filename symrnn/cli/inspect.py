"""`symrnn inspect` (registered in `symrnn.cli.COMMANDS`).

    symrnn inspect lstm.zip                                       # the exported program
    symrnn inspect --hidden 256,128 -T 50 --dot g.dot --memory plan.svg

It prints a program's stats. `--dot` writes the compiler graph (after every pass) as
Graphviz DOT, written here from the compiler graph (no pydot): nodes labelled with op and
shape, each fused kernel a cluster. `--memory` draws the memory plan: schedule steps on x,
arena offset on y, one rectangle per stored value over its live range; with matplotlib when it
is installed, else as a hand-written SVG. For an artifact, stats come from its program and the
pictures from recompiling its `symbol.json` for the exported shapes.
"""
from __future__ import annotations

import argparse
import math
import os

from codegen.graph import node
from runtime.errors import ConfigError
from symrnn.cli.common import writing

STATS = [("kernels", "kernels"), ("launches / forward", "launches_forward"),
         ("launches / backward", "launches_backward"), ("GEMMs / forward", "gemms_forward"),
         ("GEMMs / backward", "gemms_backward"), ("library ops / forward", "ops_forward"),
         ("library ops / backward", "ops_backward")]


# ---- run ----------------------------------------------------------------------------------------


def configure_inspect(p: argparse.ArgumentParser) -> None:
    from symrnn.cli.common import add_stack_args, positive

    p.add_argument("model", nargs="?", metavar="MODEL.zip",
                   help="an exported artifact; without it, the stack the options describe")
    add_stack_args(p, backend=False)
    p.add_argument("-T", "--seq-len", type=positive, default=50)
    p.add_argument("-N", "--batch", type=positive, default=32)
    p.add_argument("-I", "--data-dim", type=positive, default=64, help="input size")
    p.add_argument("--inference", action="store_true",
                   help="the forward-only program (default: training, all gradients)")
    p.add_argument("--unrolled", action="store_true",
                   help="compile with optimize=False: the unrolled baseline")
    p.add_argument("--dot", metavar="FILE.dot", help="write the compiler graph as Graphviz DOT")
    p.add_argument("--memory", metavar="FILE.svg|.png", help="draw the memory plan")
    p.set_defaults(parser=p)


def run_inspect(args) -> int:
    from symrnn.cli.common import _check_writable

    for flag in ("dot", "memory"):
        if getattr(args, flag):
            _check_writable("inspect", getattr(args, flag))
    if args.memory:
        _picture_format(args.memory)
    if args.model:
        changed = [a for a in ("typ", "hidden", "zoneout", "dropout", "dropout_mode", "seq_len",
                               "batch", "data_dim", "unrolled")
                   if getattr(args, a) != args.parser.get_default(a)]
        if changed:
            raise ConfigError(f"inspect: give MODEL.zip or stack options, not both "
                              f"(--{changed[0].replace('_', '-')} was given with "
                              f"{args.model!r})")
        symbol, shapes, wrt, program = _from_artifact(args)
    else:
        from symrnn.cli.common import stack_symbol

        symbol = stack_symbol(args, args.seq_len, args.data_dim)
        shapes = {"data": (args.seq_len, args.batch, args.data_dim)}
        wrt = [] if args.inference else list(symbol.list_arguments())
        program = None
    graph = None
    if program is None or args.dot or args.memory:
        graph, compiled = compile_planned(symbol, shapes, wrt, not args.unrolled)
        program = program or compiled
    print(format_stats(program))
    if args.dot:
        with writing("inspect", args.dot), open(args.dot, "w") as f:
            f.write(to_dot(graph))
        print(f"wrote {args.dot}: {len(graph)} nodes, "
              f"{len(graph.graph.get('groups', {}))} fused kernels")
    if args.memory:
        with writing("inspect", args.memory):
            draw_memory(graph, args.memory)
        print(f"wrote {args.memory}: {len(graph.graph['liveness'])} buffers over "
              f"{len(graph.graph['schedule'])} steps")
    return 0


def _from_artifact(args):
    from runtime.artifact import read
    from runtime.program import Program
    from symrnn.cli.common import manifest_summary
    from symrnn.symbol import load_json

    if not os.path.exists(args.model):  # a folder: read() says it is one
        raise ConfigError(f"inspect: {args.model!r}: no such file")
    manifest, members = read(args.model)
    print(manifest_summary(args.model, manifest) + "\n")
    role = "infer" if args.inference and "infer" in manifest["programs"] else "train"
    program = Program.from_json(members[manifest["programs"][role]].decode())
    print(f"program: {manifest['programs'][role]}")
    symbol = load_json(members["symbol.json"].decode())
    shapes = {n: tuple(manifest["args"][n]["shape"]) for n in manifest["inputs"]}
    wrt = [] if role == "infer" else [n for n, r in manifest["grad_req"].items() if r != "null"]
    args.unrolled = program.stats.get("fused") is False  # recompile as it was exported
    return symbol, shapes, wrt, program


def compile_planned(symbol, shapes: dict, wrt: list, optimize: bool):
    """`(planned graph, Program)`, each pass timed in the Program's stats."""
    import codegen
    from symrnn.lower import lower_and_infer

    g, _ = lower_and_infer(symbol, shapes, None, "inspect")
    codegen.require_known(g, "inspect")
    floats = ("float32", "float64")
    wrt = tuple(a for a in wrt if a in g and codegen.node(g, a).dtype in floats)
    options = codegen.CompileOptions(wrt, tuple(symbol.list_outputs()), optimize)
    return codegen.compile(g, options, return_graph=True)


def format_stats(program) -> str:
    s = program.stats
    kind = "training" if s.get("launches_backward") or s.get("gemms_backward") else "inference"
    lines = [(f"{kind} program, {'fused' if s.get('fused', True) else 'unrolled'}, "
              f"{program.dtype}: {_step_count(program)}")]
    lines += [f"  {label:<26}{s[key]:>14,}" for label, key in STATS if key in s]
    arena, unplanned = s.get("arena_bytes", 0), s.get("unplanned_bytes", 0)
    saved = f" ({1 - arena / unplanned:.0%} saved)" if unplanned else ""
    lines.append(f"  {'arena bytes':<26}{arena:>14,}  vs {unplanned:,} unplanned{saved}")
    flops = s.get("flops", {})
    lines += [f"  {'FLOPs / ' + ph:<26}{flops[ph]:>14,}" for ph in ("forward", "backward")
              if ph in flops]
    seconds = s.get("compile_seconds", {})
    if seconds:
        from codegen import pass_names

        order = pass_names()
        names = sorted(seconds, key=lambda n: order.index(n) if n in order else len(order))
        lines.append(f"  compile seconds, {sum(seconds.values()):.3f} in all:")
        lines += [f"    {name:<24}{seconds[name]:>14.4f}" for name in names]
    return "\n".join(lines)


def _step_count(program) -> str:
    """`N steps`, and where the program has loops (codegen.roll), how many it runs."""
    loops = [st for st in program.steps if st.kind == "loop"]
    if not loops:
        return f"{len(program.steps)} steps"
    runs = sum(st.trips * len(st.body) if st.kind == "loop" else 1 for st in program.steps)
    return f"{runs} steps as run, {len(program.steps)} with {len(loops)} loops"


# ---- pictures ------------------------------------------------------------------------------------


def _q(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(g) -> str:
    """Graphviz DOT of a compiler graph: `op (shape)` nodes, a cluster per fused kernel."""
    def line(nid) -> str:
        n = node(g, nid)
        shape = "(" + ", ".join(map(str, n.shape or ())) + ")"
        style = ', shape=ellipse' if n.op == "var" else ""
        return f"{_q(nid)} [label={_q(f'{n.op} {shape}')}, tooltip={_q(nid)}{style}];"

    out = ["digraph symrnn {", "  rankdir=TB;", "  node [shape=box, fontsize=10];"]
    grouped = set()
    for i, (kernel, members) in enumerate(sorted(g.graph.get("groups", {}).items())):
        out += [f"  subgraph cluster_{i} {{", f"    label={_q(kernel)};",
                "    style=filled; color=lightgrey;"]
        out += [f"    {line(m)}" for m in members if m in g]
        out.append("  }")
        grouped.update(members)
    out += [f"  {line(n)}" for n in g if n not in grouped]
    out += [f"  {_q(a)} -> {_q(b)};" for a, b in g.edges]
    return "\n".join(out + ["}"]) + "\n"


def memory_rects(g) -> list[tuple]:
    """`(buffer, first step, last step, offset bytes, size bytes, name, phase)` per value."""
    layout, schedule = g.graph["layout"], g.graph["schedule"]
    rects = []
    for root, (start, end) in g.graph["liveness"].items():
        view, n = layout[root], node(g, root)
        item = 8 if view.buffer.endswith("64") else 4
        phase = schedule[start][1] if start < len(schedule) else "forward"
        rects.append((view.buffer, start, end, view.offset * item,
                      max(math.prod(n.shape), 1) * item, root, phase))
    return rects


def _picture_format(path: str) -> bool:
    """True to draw with matplotlib, False to write SVG by hand; a one-line error if neither."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".svg", ".png"):
        raise ConfigError(f"inspect: --memory {path!r}: give a .svg or .png path")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if ext == ".png":
            raise ConfigError(f"inspect: --memory {path!r}: a PNG needs matplotlib (pip "
                              f"install matplotlib); a .svg path needs nothing") from None
        return False
    return True


def draw_memory(g, path: str) -> None:
    rects, steps = memory_rects(g), len(g.graph["schedule"]) + 1
    if not _picture_format(path):
        with open(path, "w") as f:
            f.write(memory_svg(rects, steps))
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    buffers = sorted({r[0] for r in rects}) or ["arena"]
    fig, axes = plt.subplots(len(buffers), 1, figsize=(10, 4 * len(buffers)), squeeze=False)
    for ax, buf in zip(axes[:, 0], buffers):
        mine = [r for r in rects if r[0] == buf]
        for _, a, b, off, size, _, phase in mine:
            ax.add_patch(Rectangle((a, off / 1024), b + 1 - a, size / 1024, lw=0.3,
                                   ec="black", fc="tab:blue" if phase == "forward"
                                   else "tab:orange", alpha=0.7))
        ax.set_xlim(0, steps)
        ax.set_ylim(0, max([(r[3] + r[4]) / 1024 for r in mine] or [1]))
        ax.set_xlabel("schedule step (blue: written in forward, orange: in backward)")
        ax.set_ylabel("arena offset (KiB)")
        ax.set_title(f"{buf}: {len(mine)} values")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def memory_svg(rects: list, steps: int, width: int = 900, height: int = 420) -> str:
    """The memory plan as SVG text, written by hand: one panel per arena buffer."""
    buffers = sorted({r[0] for r in rects}) or ["arena"]
    left, top, panel = 70, 30, height + 70
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 20}" '
            f'height="{panel * len(buffers)}" font-family="sans-serif" font-size="12">')]
    for k, buf in enumerate(buffers):
        mine = [r for r in rects if r[0] == buf]
        y0, top_bytes = k * panel + top, max([r[3] + r[4] for r in mine] or [1])
        sx, sy = width / max(steps, 1), height / top_bytes
        out.append(f'<text x="{left}" y="{y0 - 10}">{_esc(buf)}: {len(mine)} values, '
                   f'{top_bytes:,} bytes</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{width}" height="{height}" '
                   f'fill="none" stroke="black"/>')
        for _, a, b, off, size, name, phase in mine:
            color = "#4c72b0" if phase == "forward" else "#dd8452"
            out.append(f'<rect x="{left + a * sx:.2f}" y="{y0 + height - (off + size) * sy:.2f}" '
                       f'width="{max((b + 1 - a) * sx, 0.5):.2f}" '
                       f'height="{max(size * sy, 0.5):.2f}" fill="{color}" fill-opacity="0.7" '
                       f'stroke="black" stroke-width="0.2"><title>{_esc(name)}: {size:,} bytes, '
                       f'steps {a}-{b}</title></rect>')
        out.append(f'<text x="{left + width / 2}" y="{y0 + height + 20}" text-anchor="middle">'
                   f'schedule step (0-{steps - 1}; blue: written in forward, orange: backward)'
                   f'</text>')
        out.append(f'<text x="{left - 8}" y="{y0 + height}" text-anchor="end">0</text>')
        out.append(f'<text x="{left - 8}" y="{y0 + 10}" text-anchor="end">'
                   f'{top_bytes / 1024:.0f} KiB</text>')
    return "\n".join(out + ["</svg>"]) + "\n"


def _esc(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
