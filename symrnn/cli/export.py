"""`symrnn export`: compile a stack and write it, with its parameters, as one artifact zip."""
from __future__ import annotations

import argparse

from runtime.errors import ConfigError
from symrnn.cli.common import (
    _check_writable,
    add_stack_args,
    load_npz,
    manifest_summary,
    positive,
    require,
    stack_symbol,
    writing,
)


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
    with writing("export", args.out):
        if args.format == "onnx":
            print(f"wrote {ex.export_onnx(args.out)} (ONNX opset 17)")
            return 0
        manifest = export(ex, args.out)
    print(manifest_summary(args.out, manifest))
    print(f"parameters: {len(params)} arrays, "
          f"{sum(int(np.prod(ex.arg_dict[n].shape)) for n in params):,} values "
          f"({'from ' + repr(args.params) if args.params else f'init_params, seed {args.seed}'})")
    return 0
