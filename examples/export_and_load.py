"""Ship a trained network: export it to one zip and run it where only `runtime` is imported.

Builds a 2-layer LSTM (per-layer sizes, zoneout), trains it for a step on a toy regression
(predict the next input's first features), exports the executor (`ex.export(path)`: manifest,
symbol, training and inference programs, kernel sources, parameters), then starts a fresh
Python process that imports `runtime` alone, loads the zip and runs it: an inference forward,
a training forward with a fixed seed, and a backward. The parent compares every array with its
own executor's; they must be bit-identical.

    python examples/export_and_load.py            # T=50, N=32
    python examples/export_and_load.py --quick    # seconds
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import symrnn as sym

ROOT = Path(__file__).resolve().parents[1]

# What the fresh process runs: runtime only, and it checks that nothing else came in.
CHILD = """
import sys, numpy as np, runtime
folder = sys.argv[1]
ex = runtime.load(folder + "/model.zip")
x, head = np.load(folder + "/x.npy"), np.load(folder + "/head.npy")
out = {"infer": ex.forward(data=x)[0], "train": ex.forward(is_train=True, seed=11, data=x)[0]}
ex.backward(head)
out.update({"grad:" + n: g for n, g in ex.grad_dict.items()})
np.savez(folder + "/child.npz", **out)
leaked = [m for m in ("symrnn", "codegen") if m in sys.modules]
assert not leaked, f"runtime.load imported {leaked}"
print("child: loaded and ran with", sorted(m for m in ("runtime", "numpy") if m in sys.modules))
"""


def build(seq_len: int, data_dim: int, hidden: list[int]):
    rnn = sym.RNNFactory(num_hidden=hidden, data_dim=data_dim, typ="lstm", zoneout=0.1,
                         name="lstm")
    return rnn.step(sym.Variable("data"), seq_len=seq_len, ret_typ="out")[-1]


def train_one_step(ex, x: np.ndarray, lr: float = 0.1) -> float:
    """Mean squared error of each step's output against the next step's first features."""
    out = ex.forward(is_train=True, data=x)[0]
    target = np.zeros_like(out)
    width = min(out.shape[2], x.shape[2])
    target[:-1, :, :width] = x[1:, :, :width]
    loss = float(np.mean((out - target) ** 2))
    ex.backward(2 * (out - target) / out.size)
    sym.SGD(lr=lr).step(ex)
    return loss


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-T", "--seq-len", type=int, default=50)
    p.add_argument("-N", "--batch", type=int, default=32)
    p.add_argument("-I", "--input", type=int, default=64)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    p.add_argument("--out", help="where to write the zip (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", default=bool(os.environ.get("SYMRNN_QUICK")))
    args = p.parse_args(argv)
    if args.quick:
        args.seq_len, args.batch, args.input, args.hidden = 6, 4, 8, [16, 8]

    shape = (args.seq_len, args.batch, args.input)
    ex = sym.bind_model(build(args.seq_len, args.input, args.hidden), data=shape)
    sym.init_params(ex, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype("float32")
    loss = train_one_step(ex, x)
    print(f"trained one step: loss {loss:.5f}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = Path(args.out) if args.out else folder / "model.zip"
        manifest = ex.export(path)
        if path != folder / "model.zip":
            (folder / "model.zip").write_bytes(path.read_bytes())
        print(f"exported {path.name}: {path.stat().st_size} bytes, {len(manifest['members'])} "
              f"members, programs {sorted(manifest['programs'].values())}, "
              f"format {manifest['format']} v{manifest['format_version']}, producer "
              f"{manifest['producer']['version']}")
        head = rng.standard_normal(ex.outputs[0].shape).astype("float32")
        np.save(folder / "x.npy", x)
        np.save(folder / "head.npy", head)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        proc = subprocess.run([sys.executable, "-c", CHILD, str(folder)], check=False, env=env,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            sys.exit(f"the runtime-only process failed:\n{proc.stderr[-2000:]}")
        print(proc.stdout.strip())
        child = dict(np.load(folder / "child.npz"))

    mine = {"infer": ex.forward(data=x)[0], "train": ex.forward(is_train=True, seed=11, data=x)[0]}
    ex.backward(head)
    mine.update({"grad:" + n: g for n, g in ex.grad_dict.items()})
    same = {k: bool(np.array_equal(v, child[k])) for k, v in mine.items()}
    for k, ok in same.items():
        print(f"  {k:32s} {'bit-identical' if ok else 'DIFFERS'}")
    result = {"loss": loss, "arrays": len(same), "identical": all(same.values())}
    print(json.dumps(result))
    if not result["identical"]:
        sys.exit("export then load changed the numbers")
    return result


if __name__ == "__main__":
    main()
