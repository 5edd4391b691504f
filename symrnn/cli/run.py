"""`symrnn run`: an exported artifact on `.npy` inputs, writing `.npy` outputs.

    symrnn run lstm.zip --input data=in.npy --out outputs/        # outputs/<output>.npy
"""
from __future__ import annotations

import argparse
import os
import re

from runtime.engines import ENGINES
from runtime.errors import ConfigError
from symrnn.cli.common import named_file, seed, writing


def configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", metavar="MODEL.zip",
                   help="an artifact written by `symrnn export` (required)")
    p.add_argument("--input", type=named_file, action="append", default=[],
                   metavar="NAME=FILE.npy", help="an input (or any argument) from a .npy file; "
                   "every input of the artifact is required; float arrays are cast")
    p.add_argument("--out", metavar="DIR", help="writes DIR/<output>.npy (required)")
    p.add_argument("--train", action="store_true",
                   help="training-mode forward: dropout and zoneout draw masks")
    p.add_argument("--seed", type=seed, default=None, help="the masks' seed (with --train)")
    p.add_argument("--backend", default="cpu", choices=list(ENGINES))


def run_run(args) -> int:
    import numpy as np

    import runtime
    from symrnn.cli.common import require

    require("run", {"MODEL.zip": args.model, "--out": args.out})
    if args.seed is not None and not args.train:
        raise ConfigError("run: --seed sets the masks of a training-mode forward; give --train")
    if not os.path.exists(args.model):  # a folder: runtime.load says it is one
        raise ConfigError(f"run: {args.model!r}: no such file")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ConfigError(f"run: --out {args.out!r} exists and is not a folder")
    ex = runtime.load(args.model, backend=args.backend)
    specs = ex.manifest["args"]
    inputs = {}
    for name, path in args.input:
        if name not in specs:
            raise ConfigError(f"run: --input {name!r} is not an argument of {args.model!r}; "
                              f"its inputs are {ex.input_names}")
        if name in inputs:
            raise ConfigError(f"run: --input {name!r} is given twice")
        inputs[name] = _load_input(name, path, specs[name])
    missing = [n for n in ex.input_names if n not in inputs]
    if missing:
        want = specs[missing[0]]
        raise ConfigError(f"run: input {missing[0]!r} is required, shape "
                          f"{tuple(want['shape'])} {want['dtype']}: give --input "
                          f"{missing[0]}=FILE.npy")
    outputs = ex.forward(is_train=args.train, seed=args.seed, **inputs)
    with writing("run", args.out):
        os.makedirs(args.out, exist_ok=True)
        for name, value in zip(ex.output_names, outputs):
            path = os.path.join(args.out, re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".npy")
            np.save(path, value, allow_pickle=False)
            print(f"{path}: {value.dtype} {value.shape}")
    return 0


def _load_input(name: str, path: str, spec: dict):
    import numpy as np

    try:
        value = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"run: input {name!r}: {path!r}: no such file") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"run: input {name!r}: {path!r} is not a .npy array that loads "
                          f"without pickle ({' '.join(str(e).split())})") from None
    if not isinstance(value, np.ndarray):  # an .npz archive
        raise ConfigError(f"run: input {name!r}: {path!r} is an .npz archive; give one .npy")
    shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
    if value.shape != shape:
        raise ConfigError(f"run: input {name!r} ({path}) has shape {value.shape} but the "
                          f"program expects {shape}")
    if value.dtype.kind == "f" and dtype.kind == "f":
        value = value.astype(dtype, copy=False)
    return value


# ---- inspect -----------------------------------------------------------------------------------
