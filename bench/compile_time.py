"""How long the compiler takes: a 2-layer LSTM training program at T=100, N=64, I=H=512.

    python bench/compile_time.py [--repeat 5]

Prints `simple_bind`'s wall time and the seconds of each pass (`program.stats`). The goal
(DESIGN.md section 4) is well under two seconds for the passes. With `--repeat`, binds that
many times in one process (kernels come from the cache after the first) and prints, per pass,
the fastest of the runs: the machine is shared, and the minimum is the least noisy statistic.
"""
import argparse
import time

import symrnn as sym


def bind_once(loss) -> tuple[float, dict]:
    start = time.perf_counter()
    ex = loss.simple_bind(data=(100, 64, 512))
    return time.perf_counter() - start, ex.engine.program.stats["compile_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="binds to run (default 1)")
    args = parser.parse_args()
    rnn = sym.RNNFactory([512, 512], data_dim=512, typ="lstm", name="lstm")
    all_h, _, _, _ = rnn.step(sym.Variable("data"), seq_len=100)
    loss = sym.sum(all_h[-1] * all_h[-1])
    runs = [bind_once(loss) for _ in range(max(1, args.repeat))]
    totals = [sum(passes.values()) for _, passes in runs]
    print(f"simple_bind {min(t for t, _ in runs):.2f} s; passes + emit {min(totals):.2f} s "
          f"(fastest of {len(runs)}; all: {', '.join(f'{t:.2f}' for t in totals)})")
    for name in runs[0][1]:
        print(f"  {name:14s} {min(p[name] for _, p in runs):.3f} s")


if __name__ == "__main__":
    main()
