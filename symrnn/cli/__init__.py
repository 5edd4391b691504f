"""The `symrnn` command: one module per subcommand (symrnn.cli.NAME), registered in
`COMMANDS`.

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

import os
import sys

from runtime.errors import SymRNNError
from symrnn.cli import bench, compare, demo, export, inspect, run, train
from symrnn.cli.common import (  # noqa: F401 (names the tests and tools use)
    ArgumentParser,
    _one_line,
    add_stack_args,
    positive,
    positive_float,
    rates,
    sizes,
    stack_symbol,
)

COMMANDS = {
    "demo": (demo.configure_demo, demo.run_demo,
             "compare fused and unrolled, train a character model, sample text"),
    "compare": (compare.configure_compare, compare.run_compare,
                "fused vs unrolled vs reference: differences, kernels, memory, time"),
    "export": (export.configure_export, export.run_export,
               "compile a stack and write it, with its parameters, as one artifact zip"),
    "run": (run.configure_run, run.run_run,
            "run an exported artifact on .npy inputs, writing .npy outputs"),
    "inspect": (inspect.configure_inspect, inspect.run_inspect,
                "program stats; the compiler graph as DOT; the memory plan as a picture"),
    "train": (train.configure_train, train.run_train,
              "train a character language model: progress, validation, checkpoints, mpiexec"),
    "bench": (bench.configure_bench, bench.run_bench,
              "the CPU benchmark (bench/run.py of a checkout) against PyTorch and others"),
}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="symrnn", description="symrnn: a compiler for stacked RNNs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (configure, run_command, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(run=run_command)
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



if __name__ == "__main__":
    sys.exit(main())
