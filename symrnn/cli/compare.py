"""`symrnn compare`: fused vs unrolled vs reference, differences, kernels, memory, time."""
from __future__ import annotations

import argparse
import sys

from symrnn.cli.common import add_stack_args, positive, stack_symbol


def configure_compare(p: argparse.ArgumentParser) -> None:
    add_stack_args(p)
    p.add_argument("-T", "--seq-len", type=positive, default=50)
    p.add_argument("-N", "--batch", type=positive, default=32)
    p.add_argument("-I", "--input", type=positive, default=64, help="input size")
    p.add_argument("--repeat", type=positive, default=5, help="timed runs (best is shown)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--no-reference", action="store_true",
                   help="skip the reference interpreter (slow at large sizes)")


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
