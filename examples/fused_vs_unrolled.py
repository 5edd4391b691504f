"""What the compiler buys: the same symbol compiled fused and unrolled, side by side.

For each network below, `symrnn.compare` binds one symbol twice on the CPU (optimize=True and
optimize=False) and once on the reference interpreter, runs a training forward and backward
with the same weights and seed on each, and prints one table: the largest difference of every
output and gradient from the fused program, kernels, launches, GEMMs, memory and time.

    python examples/fused_vs_unrolled.py            # T=50, N=32: under a minute on 2 cores
    python examples/fused_vs_unrolled.py --quick    # seconds
"""
from __future__ import annotations

import argparse
import os

import symrnn as sym


def network(typ: str, hidden: list[int], zoneout: float, seq_len: int, data_dim: int):
    """The stack's output sequence and its final states, in one Group."""
    rnn = sym.RNNFactory(hidden, data_dim=data_dim, typ=typ, zoneout=zoneout, name=typ)
    out = rnn.step(sym.Variable("data"), seq_len=seq_len)
    finals = out[2] + out[3] if typ == "lstm" else out[1]
    return sym.Group([out[0][-1], *finals])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-T", "--seq-len", type=int, default=50)
    p.add_argument("-N", "--batch", type=int, default=32)
    p.add_argument("-I", "--input", type=int, default=128)
    p.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", default=bool(os.environ.get("SYMRNN_QUICK")))
    args = p.parse_args(argv)
    configs = [("lstm", [256, 128], 0.1), ("gru", [256], 0.0)]
    if args.quick:
        args.seq_len, args.batch, args.input = 6, 4, 8
        configs = [("lstm", [16, 8], 0.1), ("gru", [8], 0.0)]

    results = {}
    for typ, hidden, zoneout in configs:
        print(f"\n== {typ} {hidden}, zoneout {zoneout}, T={args.seq_len} N={args.batch} "
              f"I={args.input}, training mode ==\n")
        net = network(typ, hidden, zoneout, args.seq_len, args.input)
        res = sym.compare(net, backend=args.backend, seed=0, repeat=3,
                          data=(args.seq_len, args.batch, args.input))
        fused, unrolled = res["columns"]["fused"], res["columns"]["unrolled"]
        speedup = unrolled["forward_backward_ms"] / fused["forward_backward_ms"]
        print(f"\nfused: {fused['launches_forward']} kernel launches per forward instead of "
              f"{unrolled['launches_forward']} ({len(hidden)} layers x {args.seq_len} steps), "
              f"forward+backward {speedup:.1f}x faster; largest difference "
              f"{res['max_diff']:.2e}")
        results[f"{typ}{hidden}"] = res
    return results


if __name__ == "__main__":
    main()
