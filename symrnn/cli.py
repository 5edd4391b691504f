"""The `symrnn` command: one function per subcommand, registered in `COMMANDS`.

    symrnn demo                      # compare fused and unrolled, train a char LM, sample
    symrnn compare --hidden 512,256 --zoneout 0.1 -T 50
    symrnn export --hidden 256,128 -I 64 -T 50 -N 32 lstm.zip
    symrnn run lstm.zip --input data=in.npy --out outputs/
    symrnn inspect lstm.zip --dot graph.dot --memory memory.svg
    symrnn bench --quick             # bench/run.py, from a checkout of the repository
    mpiexec -n 2 symrnn train --steps 200 --checkpoint lm.zip   # data-parallel training

A subcommand is `(configure(parser), run(args) -> exit code, one-line help)`; add one by
adding an entry. User errors (bad arguments, SymRNNError) print one line on stderr and exit
non-zero; `SYMRNN_DEBUG=1` shows the traceback of an unexpected error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from runtime.errors import ConfigError, SymRNNError
from symrnn import cli_tools, cli_train


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ---- argument types -----------------------------------------------------------------------------

def sizes(text: str) -> list[int]:
    """'512,256' -> [512, 256]; every size a positive int."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive ints like 512,256, given "
                                         f"{text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, given {text!r}")
    return values


def rates(text: str) -> list[float]:
    """'0.1' or '0.1,0.2' -> rates in [0, 1), one for all layers or one per layer."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected rates like 0.1 or 0.1,0.2, given "
                                         f"{text!r}") from None
    if any(not 0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"rates must be in [0, 1), given {text!r}")
    return values


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive int, given {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, given {text!r}")
    return value


def _per_layer(values: list[float], layers: int, what: str) -> list[float]:
    if len(values) == 1:
        return values * layers
    if len(values) != layers:
        raise SymRNNError(f"--{what}: give one rate or one per layer ({layers}), given "
                          f"{len(values)}")
    return values


# ---- compare ------------------------------------------------------------------------------------

BACKEND_CHOICES = ["cpu", "reference", "cuda", "cuda-sim"]


def add_stack_args(p: argparse.ArgumentParser, hidden="256,128", zoneout="0.1",
                   backend: bool = True) -> None:
    """The stack's options (`stack_symbol` reads them); `--backend` unless `backend=False`."""
    p.add_argument("--typ", default="lstm", choices=["lstm", "gru", "rnn_tanh", "rnn_relu"])
    p.add_argument("--hidden", type=sizes, default=sizes(hidden),
                   help=f"per-layer hidden sizes (default {hidden})")
    p.add_argument("--zoneout", type=rates, default=rates(zoneout),
                   help=f"zoneout rate, one or per layer (default {zoneout})")
    p.add_argument("--dropout", type=rates, default=[0.0], help="dropout on layer outputs")
    p.add_argument("--dropout-mode", default="step", choices=["step", "sequence"])
    p.add_argument("--cell-clip", type=positive_float, default=None, help="LSTM cell clip")
    p.add_argument("--proj-size", type=int, default=0, help="LSTM projection size (0: none)")
    if backend:
        p.add_argument("--backend", default="cpu", choices=BACKEND_CHOICES)
    p.add_argument("--seed", type=cli_tools.seed, default=0)


def configure_compare(p: argparse.ArgumentParser) -> None:
    add_stack_args(p)
    p.add_argument("-T", "--seq-len", type=positive, default=50)
    p.add_argument("-N", "--batch", type=positive, default=32)
    p.add_argument("-I", "--input", type=positive, default=64, help="input size")
    p.add_argument("--repeat", type=positive, default=5, help="timed runs (best is shown)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--no-reference", action="store_true",
                   help="skip the reference interpreter (slow at large sizes)")


def stack_symbol(args, seq_len: int, data_dim: int):
    """The comparison's network: the stack's output sequence and its final states."""
    import symrnn as sym

    layers = len(args.hidden)
    rnn = sym.RNNFactory(args.hidden, data_dim=data_dim, typ=args.typ,
                         zoneout=_per_layer(args.zoneout, layers, "zoneout"),
                         dropout=_per_layer(args.dropout, layers, "dropout"),
                         dropout_mode=args.dropout_mode, name=args.typ,
                         cell_clip=getattr(args, "cell_clip", None),
                         proj_size=getattr(args, "proj_size", 0))
    out = rnn.step(sym.Variable("data"), seq_len=seq_len)
    finals = out[2] + out[3] if args.typ == "lstm" else out[1]
    return sym.Group([out[0][-1], *finals])


def run_compare(args) -> int:
    from symrnn.compare import compare

    net = stack_symbol(args, args.seq_len, args.input)
    print(f"{args.typ} {args.hidden}, zoneout {args.zoneout}, dropout {args.dropout}, "
          f"T={args.seq_len} N={args.batch} I={args.input}, backend {args.backend}, "
          f"{args.dtype}, training mode, seed {args.seed}\n")
    result = compare(net, backend=args.backend, seed=args.seed, repeat=args.repeat,
                     reference=not args.no_reference, dtype=args.dtype,
                     data=(args.seq_len, args.batch, args.input))
    tolerance = 1e-4 if args.dtype == "float32" else 1e-9
    if result["max_rel_diff"] > tolerance:
        print(f"symrnn compare: the programs disagree: relative difference "
              f"{result['max_rel_diff']:.3g} > {tolerance:g}", file=sys.stderr)
        return 1
    return 0


# ---- demo ---------------------------------------------------------------------------------------

def configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=positive_float, default=2.5,
                   help="training time budget in minutes (default 2.5)")
    p.add_argument("--backend", default="cpu", choices=BACKEND_CHOICES)
    p.add_argument("--seed", type=cli_tools.seed, default=0)
    p.add_argument("--sample-length", type=positive, default=300)


def run_demo(args) -> int:
    import symrnn as sym
    from symrnn.compare import compare
    from symrnn.data import CharVocab, pydoc_text, split_holdout

    print("1. A 2-layer LSTM [256, 128] with zoneout 0.1 (training mode), compiled fused and "
          "unrolled from one symbol; same weights, same seed.\n")
    net = stack_symbol(argparse.Namespace(hidden=[256, 128], zoneout=[0.1], dropout=[0.0],
                                          typ="lstm", dropout_mode="step"), 20, 64)
    compare(net, backend=args.backend, seed=args.seed, repeat=3, data=(20, 32, 64))

    text = pydoc_text()
    vocab = CharVocab.from_text(text)
    train_tokens, valid_tokens = split_holdout(vocab.encode(text), 0.1)
    print(f"\n2. A character language model on pydoc_data.topics ({len(text):,} characters, "
          f"vocabulary {len(vocab)}): LSTM [256], {args.minutes:g} minutes.\n")
    lm = sym.CharLM(len(vocab), 64, [256], name="lm")
    ex, links = lm.bind(64, 32, args.backend, seed=args.seed)
    vex, _ = lm.bind(64, 32, args.backend, train=False, head="loss")
    sym.init_params(ex, seed=args.seed)
    t0 = time.perf_counter()
    history = sym.train(ex, sym.batchify(train_tokens, 32), links, epochs=1000,
                        optimizer=sym.Adam(3e-3), clip=5.0, max_seconds=args.minutes * 60,
                        valid=(vex, sym.batchify(valid_tokens, 32)))
    print(f"held-out perplexity {history.last['valid_ppl']:.2f} after "
          f"{time.perf_counter() - t0:.0f} s\n\n3. Sampled text:\n")
    print(lm.sample(ex.arg_dict, vocab, prime="The ", length=args.sample_length,
                    seed=args.seed, backend=args.backend))
    return 0


# ---- export -------------------------------------------------------------------------------------

def configure_export(p: argparse.ArgumentParser) -> None:
    add_stack_args(p, backend=False)
    p.add_argument("-T", "--seq-len", type=positive, default=50)
    p.add_argument("-N", "--batch", type=positive, default=32)
    p.add_argument("-I", "--data-dim", type=positive, default=64, help="input size")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--params", metavar="FILE.npz",
                   help="parameter values (every weight and bias of the stack; initial states "
                        "optional); default: drawn as init_params draws them from --seed")
    p.add_argument("--grad-req", default="null", choices=["null", "write"],
                   help="'write' also exports the training program (default: inference only)")
    p.add_argument("--format", default="zip", choices=["zip", "onnx"],
                   help="'onnx': the inference forward as an ONNX model (needs the onnx extra)")
    p.add_argument("out", nargs="?", metavar="OUT.zip", help="the artifact to write (required)")


def run_export(args) -> int:
    import numpy as np

    from symrnn.export import export
    from symrnn.model import init_params, param_names

    require("export", {"OUT.zip": args.out})
    _check_writable("export", args.out)
    net = stack_symbol(args, args.seq_len, args.data_dim)
    data = (args.seq_len, args.batch, args.data_dim)
    params = param_names(net, ["data"])
    reqs = {n: (args.grad_req if n in params else "null") for n in net.list_arguments()}
    ex = net.simple_bind(backend="cpu", grad_req=reqs, dtype=args.dtype, seed=args.seed,
                         data=data)
    if args.params:
        given = load_npz("export", "--params", args.params)
        missing = [n for n in params if n not in given]
        if missing:
            raise ConfigError(f"export: --params {args.params!r} has no array for "
                              f"{missing[0]!r}; the parameters are {params}")
        ex.copy_params_from({n: v.astype(ex.arg_dict[n].dtype) if n in ex.arg_dict and
                             v.dtype.kind == ex.arg_dict[n].dtype.kind == "f" else v
                             for n, v in given.items()})
    else:
        init_params(ex, names=params, seed=args.seed)
    with cli_tools.writing("export", args.out):
        if args.format == "onnx":
            print(f"wrote {ex.export_onnx(args.out)} (ONNX opset 17)")
            return 0
        manifest = export(ex, args.out)
    print(manifest_summary(args.out, manifest))
    print(f"parameters: {len(params)} arrays, "
          f"{sum(int(np.prod(ex.arg_dict[n].shape)) for n in params):,} values "
          f"({'from ' + repr(args.params) if args.params else f'init_params, seed {args.seed}'})")
    return 0


def require(where: str, given: dict) -> None:
    """A one-line error naming the arguments (`given`: {name: value}) that are None.

    Required arguments are checked here rather than by argparse, whose check comes before
    the one for unknown options: `symrnn export --typo` should name the typo."""
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ConfigError(f"{where}: the following arguments are required: "
                          f"{', '.join(missing)}")


def load_npz(where: str, what: str, path: str) -> dict:
    """{name: array} of an .npz file, never unpickling; a one-line error otherwise."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            return {n: npz[n] for n in npz.files}
    except FileNotFoundError:
        raise ConfigError(f"{where}: {what} {path!r}: no such file") from None
    except (OSError, ValueError) as e:  # not an npz, or an array that needs pickle
        raise ConfigError(f"{where}: {what} {path!r} is not a readable .npz file without "
                          f"pickle ({_one_line(e)})") from None


def _check_writable(where: str, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"{where}: cannot write {path!r}: folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise ConfigError(f"{where}: cannot write {path!r}: it is a folder")


def manifest_summary(path, manifest: dict) -> str:
    """A few lines on an artifact: format, producer, inputs, outputs, programs, kernels."""
    def spec(name: str) -> str:
        a = manifest["args"][name]
        return f"{name} {tuple(a['shape'])} {a['dtype']}"

    kernels = {k for table in manifest["kernels"].values() for k in table}
    size = os.path.getsize(path) if os.path.exists(path) else 0
    lines = [
        (f"{path}: {manifest['format']} version {manifest['format_version']}, written by "
         f"symrnn {manifest['producer'].get('version')}, {size:,} bytes, "
         f"{len(manifest['members']) + 1} members"),
        (f"  programs: {', '.join(f'{r} ({m})' for r, m in manifest['programs'].items())}; "
         f"{len(kernels)} kernels (C and CUDA sources)"),
        f"  inputs:   {', '.join(spec(n) for n in manifest['inputs']) or '(none)'}",
        f"  params:   {len(manifest['params'])} arrays (every argument but the inputs)",
        "  outputs:  " + ", ".join(f"{o['name']} {tuple(o['shape'])}"
                                   for o in manifest["outputs"]),
    ]
    trained = sorted(n for n, r in manifest["grad_req"].items() if r != "null")
    lines.append(f"  gradients: {len(trained)} arguments" if trained else
                 "  gradients: none (inference only)")
    return "\n".join(lines)


# ---- bench --------------------------------------------------------------------------------------

def configure_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny shapes: checks that all runs")
    p.add_argument("--out", metavar="FILE.json", help="results path (the .md goes beside it)")
    p.add_argument("--cases", help="comma-separated cases (bench/run.py --help lists them)")


def bench_script() -> str | None:
    """bench/run.py of the checkout this package runs from (or of the working folder)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (here, os.getcwd()):
        path = os.path.join(root, "bench", "run.py")
        if os.path.isfile(path):
            return path
    return None


def run_bench(args) -> int:
    import subprocess

    script = bench_script()
    if script is None:
        raise ConfigError("bench: bench/run.py was not found next to the symrnn package or in "
                          "the working folder; the benchmark ships with the source repository, "
                          "not the installed package: run it from a checkout")
    argv = [sys.executable, script] + (["--quick"] if args.quick else [])
    argv += [a for k in ("out", "cases") if getattr(args, k)
             for a in (f"--{k}", getattr(args, k))]
    sys.stdout.flush()
    return subprocess.run(argv, check=False).returncode


# ---- the table and the entry point -----------------------------------------------------------

COMMANDS = {
    "demo": (configure_demo, run_demo,
             "compare fused and unrolled, train a character model, sample text"),
    "compare": (configure_compare, run_compare,
                "fused vs unrolled vs reference: differences, kernels, memory, time"),
    "export": (configure_export, run_export,
               "compile a stack and write it, with its parameters, as one artifact zip"),
    "run": (cli_tools.configure_run, cli_tools.run_run,
            "run an exported artifact on .npy inputs, writing .npy outputs"),
    "inspect": (cli_tools.configure_inspect, cli_tools.run_inspect,
                "program stats; the compiler graph as DOT; the memory plan as a picture"),
    "train": (cli_train.configure_train, cli_train.run_train,
              "train a character language model: progress, validation, checkpoints, mpiexec"),
    "bench": (configure_bench, run_bench,
              "the CPU benchmark (bench/run.py of a checkout) against PyTorch and others"),
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="symrnn", description="symrnn: a compiler for stacked RNNs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (configure, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SymRNNError as e:
        text = _one_line(e)  # "export: ..." from the library reads "symrnn export: error: ..."
        text = text[len(args.command) + 2:] if text.startswith(f"{args.command}: ") else text
        print(f"symrnn {args.command}: error: {text}", file=sys.stderr)
        return 2  # as argparse does for a bad argument
    except KeyboardInterrupt:
        print(f"symrnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `symrnn inspect | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # a bug, not a user error: one line unless debugging
        if os.environ.get("SYMRNN_DEBUG", "0") not in ("", "0"):
            raise
        print(f"symrnn {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
              f"(SYMRNN_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 1


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())
