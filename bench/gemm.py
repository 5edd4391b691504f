"""The CPU engine's GEMM implementations side by side (runtime.cpu.gemm), float32, one run:

    python bench/gemm.py [--repeats 7] [--json out.json]

At the shapes of a 1-layer LSTM, T=100, N=64, I=H=512 (DESIGN.md section 5):

- per step: 100 products `(64x512)·(512x2048)` against one weight, packed once (`symrnn`'s
  and MKL's packed GEMMs; numpy's BLAS packs on every call), the weight read transposed
  where it lies, as the engine reads `h2h_weight` (4H x H);
- all steps: the input projection `(6400x512)·(512x2048)` (weight transposed), the data
  gradient `(6400x2048)·(2048x512)`, and the weight gradient `(2048x6400)·(6400x512)` (left
  operand transposed: `dG^T @ X`).

Each implementation runs as the engine runs it: symrnn's inside `runtime.cpu.blas.one_pool()`
(OpenBLAS held to one thread, its thread count lent to symrnn's pool), numpy's and MKL's with
their own threads, as many (`--threads`, default OpenBLAS's count). The implementations take
turns, `--repeats` rounds, each round in another order; the table shows the median GFLOP/s (best
in brackets) and the load average, as the machine is shared. OpenBLAS's idle threads spin for
about 0.1 s after a threaded call (runtime.cpu.blas), taking a core from whatever runs next: each
implementation that runs its own threads is followed by a pause of `SETTLE` seconds, untimed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from runtime.cpu import blas, gemm
from runtime.cpu.packed_gemm import aligned
from runtime.errors import BackendUnavailable

T, N, I, H = 100, 64, 512, 512
G = 4 * H
DTYPE = "float32"
SETTLE = 0.25  # seconds after a run on OpenBLAS's (or MKL's) own threads, until they sleep


def shapes(r) -> dict:
    """name -> (a, b, c, products per sample, uses a packed weight)."""
    def x(*shape):
        return r.standard_normal(shape).astype(DTYPE)

    return {
        f"per step ({N}x{H})·({H}x{G}) x {T}, packed": (x(N, H), x(G, H).T, x(N, G), T, True),
        f"input projection ({T * N}x{I})·({I}x{G})": (x(T * N, I), x(G, I).T, x(T * N, G), 1,
                                                       False),
        f"data gradient ({T * N}x{G})·({G}x{H})": (x(T * N, G), x(G, H), x(T * N, H), 1, False),
        f"weight gradient ({G}x{T * N})·({T * N}x{H})": (x(T * N, G).T, x(T * N, H), x(G, H), 1,
                                                         False),
    }


def runner(impl, a, b, c, steps: int, packed: bool, threads: np.ndarray):
    """A callable running the case once (`steps` products), built as the engine builds it."""
    if packed and impl.packs(DTYPE):
        weight = impl.packed(DTYPE, *b.shape, threads)
        calls = [weight.gemm_call(a, c) for _ in range(steps)]
        pack = weight.pack_call(b)
        pack()  # once per phase: outside the timing, as in the engine's time loop
        return lambda: [call() for call in calls]
    size = impl.scratch_size(*b.shape, DTYPE)
    call = impl.product(a, b, c, threads, aligned(size, DTYPE) if size else None)
    return lambda: [call() for _ in range(steps)]


def timed(impl, run, threads: int) -> float:
    """Seconds of one run, inside the thread arrangement the engine uses for `impl`."""
    arrangement = blas.one_pool() if impl.own_pool else blas.blas_threads(threads)
    with arrangement:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start


def check(results: dict, exact: np.ndarray, name: str, c: np.ndarray) -> None:
    err = float(np.abs(c.astype(np.float64) - exact).max() / max(1.0, np.abs(exact).max()))
    results["max_rel_error"] = max(results.get("max_rel_error", 0.0), err)
    if err > 1e-4:
        raise AssertionError(f"{name}: relative error {err:.2e}")


def measure(names: list[str], repeats: int, n_threads: int | None) -> dict:
    r = np.random.default_rng(0)
    if n_threads is None:
        with blas.one_pool() as count:  # OpenBLAS's count: what the engine lends its pool
            n_threads = count
    threads = np.full(1, n_threads, np.intc)
    impls = {n: gemm.implementation(n) for n in names}
    if "mkl" in impls:
        from runtime.cpu.mkl_gemm import set_threads

        set_threads(n_threads)
    table: dict = {}
    for case, (a, b, c, steps, packed) in shapes(r).items():
        exact = a.astype(np.float64) @ b.astype(np.float64)
        flops = 2 * a.shape[0] * a.shape[1] * b.shape[1] * steps
        runs = {n: runner(impl, a, b, c, steps, packed, threads) for n, impl in impls.items()}
        seconds: dict = {n: [] for n in names}
        for n in names:  # warm up, and check the result
            c[...] = np.nan
            timed(impls[n], runs[n], n_threads)
            time.sleep(0 if impls[n].own_pool else SETTLE)
            check(table.setdefault(case, {}).setdefault(n, {}), exact, f"{n} {case}", c)
        for i in range(repeats):
            for n in names[i % len(names):] + names[:i % len(names)]:
                seconds[n].append(timed(impls[n], runs[n], n_threads))
                if not impls[n].own_pool:
                    time.sleep(SETTLE)
        for n in names:
            rates = [flops / s / 1e9 for s in seconds[n]]
            table[case][n].update(median_gflops=statistics.median(rates), best_gflops=max(rates),
                                  median_ms=statistics.median(seconds[n]) * 1e3)
    return {"threads": int(n_threads), "table": table}


def markdown(result: dict, names: list[str]) -> str:
    head = "| case | " + " | ".join(f"{n} GFLOP/s" for n in names) + " |"
    lines = [head, "|" + "---|" * (len(names) + 1)]
    for case, row in result["table"].items():
        best = max(names, key=lambda n: row[n]["median_gflops"])
        cells = [(f"**{row[n]['median_gflops']:.0f}**" if n == best else
                  f"{row[n]['median_gflops']:.0f}") + f" ({row[n]['best_gflops']:.0f})"
                 for n in names]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, help="threads of every implementation "
                        "(default: numpy's BLAS's count, which the engine lends its pool)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    names = ["packed", "blas", "mkl"]
    try:
        gemm.implementation("mkl")
    except BackendUnavailable as e:
        print(f"mkl skipped: {e}")
        names.remove("mkl")
    load = os.getloadavg()
    result = measure(names, args.repeats, args.threads)
    result.update(loadavg_before=load, loadavg_after=os.getloadavg(), repeats=args.repeats,
                  default=gemm.DEFAULT)
    print(f"float32, {result['threads']} threads, median GFLOP/s of {args.repeats} "
          f"interleaved rounds (best); load average {load[0]:.1f} -> "
          f"{result['loadavg_after'][0]:.1f}\n")
    print(markdown(result, names))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
