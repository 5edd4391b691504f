"""How long the compiler takes: a 2-layer LSTM training program at T=100, N=64, I=H=512.

    python bench/compile_time.py

Prints `simple_bind`'s wall time and the seconds of each pass (`program.stats`). The goal
(DESIGN.md section 4) is well under two seconds for the passes.
"""
import time

import symrnn as sym


def main() -> None:
    rnn = sym.RNNFactory([512, 512], data_dim=512, typ="lstm", name="lstm")
    all_h, _, _, _ = rnn.step(sym.Variable("data"), seq_len=100)
    loss = sym.sum(all_h[-1] * all_h[-1])
    start = time.perf_counter()
    ex = loss.simple_bind(data=(100, 64, 512))
    total = time.perf_counter() - start
    passes = ex.engine.program.stats["compile_seconds"]
    print(f"simple_bind {total:.2f} s; passes + emit {sum(passes.values()):.2f} s")
    for name, seconds in passes.items():
        print(f"  {name:14s} {seconds:.3f} s")


if __name__ == "__main__":
    main()
