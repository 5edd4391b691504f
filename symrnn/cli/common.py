"""What the subcommands share: argparse types, the stack options and symbol, reading
`.npz` and `.npy` files, checks of paths, the manifest summary."""
from __future__ import annotations

import argparse
import contextlib
import os
import re

from runtime.errors import ConfigError, SymRNNError


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
    p.add_argument("--weight-drop", type=rates, default=[0.0],
                   help="DropConnect on the recurrent weights, one rate or per layer")
    p.add_argument("--layer-norm", action="store_true", help="layer-normalized LSTM or GRU")
    if backend:
        p.add_argument("--backend", default="cpu", choices=BACKEND_CHOICES)
    p.add_argument("--seed", type=seed, default=0)


def stack_symbol(args, seq_len: int, data_dim: int):
    """The comparison's network: the stack's output sequence and its final states."""
    import symrnn as sym

    layers = len(args.hidden)
    layer_norm = {"layer_norm": True} if getattr(args, "layer_norm", False) else {}
    rnn = sym.RNNFactory(args.hidden, data_dim=data_dim, typ=args.typ,
                         zoneout=_per_layer(args.zoneout, layers, "zoneout"),
                         dropout=_per_layer(args.dropout, layers, "dropout"),
                         dropout_mode=args.dropout_mode, name=args.typ,
                         cell_clip=getattr(args, "cell_clip", None),
                         proj_size=getattr(args, "proj_size", 0),
                         weight_drop=_per_layer(getattr(args, "weight_drop", [0.0]), layers,
                                                "weight-drop"), **layer_norm)
    lengths = sym.Variable("lengths", dtype="int32") if getattr(args, "varlen", False) else None
    out = rnn.step(sym.Variable("data"), seq_len=seq_len, sequence_length=lengths)
    finals = out[2] + out[3] if args.typ == "lstm" else out[1]
    return sym.Group([out[0][-1], *finals])


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


def named_file(text: str) -> tuple[str, str]:
    name, eq, path = text.partition("=")
    if not eq or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, given {text!r}")
    return name, path


def seed(text: str) -> int:
    """An argparse type: a seed is a non-negative int."""
    value = int(text) if re.fullmatch(r"\s*\+?\d+\s*", text) else -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative int, given {text!r}")
    return value


@contextlib.contextmanager
def writing(where: str, path):
    """Turns an OSError while writing `path` into a one-line ConfigError."""
    try:
        yield
    except OSError as e:
        raise ConfigError(f"{where}: cannot write {str(path)!r}: "
                          f"{e.strerror or type(e).__name__}") from None


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
