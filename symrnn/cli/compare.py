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
    p.add_argument("--varlen", action="store_true",
                   help="variable-length batch: per-sample lengths in [0, T] drawn from the "
                        "seed, bound as the int32 input 'lengths' (sequence_length)")


def run_compare(args) -> int:
    import numpy as np

    from symrnn.compare import compare

    net = stack_symbol(args, args.seq_len, args.input)
    inputs, shapes = {}, {"data": (args.seq_len, args.batch, args.input)}
    if args.varlen:
        rng = np.random.default_rng(args.seed)
        inputs["lengths"] = rng.integers(0, args.seq_len + 1, args.batch).astype(np.int32)
        shapes["lengths"] = (args.batch,)
    print(f"{args.typ} {args.hidden}, zoneout {args.zoneout}, dropout {args.dropout}"
          f"{_features(args, inputs)}, T={args.seq_len} N={args.batch} I={args.input}, "
          f"backend {args.backend}, {args.dtype}, training mode, seed {args.seed}\n")
    result = compare(net, backend=args.backend, seed=args.seed, repeat=args.repeat,
                     reference=not args.no_reference, dtype=args.dtype, inputs=inputs,
                     **shapes)
    tolerance = 1e-4 if args.dtype == "float32" else 1e-9
    if result["max_rel_diff"] > tolerance:
        print(f"symrnn compare: the programs disagree: relative difference "
              f"{result['max_rel_diff']:.3g} > {tolerance:g}", file=sys.stderr)
        return 1
    return 0


def _features(args, inputs: dict) -> str:
    """Issue 12's options in force, as `, name value` items for the header line."""
    shown = {"proj_size": args.proj_size or None, "cell_clip": args.cell_clip,
             "weight_drop": args.weight_drop if any(args.weight_drop) else None,
             "layer_norm": True if args.layer_norm else None,
             "lengths": inputs["lengths"].tolist() if "lengths" in inputs else None}
    return "".join(f", {k} {v}" for k, v in shown.items() if v is not None)


# ---- demo ---------------------------------------------------------------------------------------
