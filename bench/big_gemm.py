"""The products that run once per phase (runtime.cpu.packed_gemm's big_call), its two paths and
numpy's matmul side by side, float32, 2 threads by default:

    python bench/big_gemm.py [--rounds 7] [--threads 2] [--json out.json] [--steps gru1,lstm1]

- `split`: numpy's cblas split over the engine's pool, one single-threaded call per thread
  (the default path, `SYMRNN_BIG_GEMM` unset);
- `blocked`: symrnn's blocked GEMM on its own micro-kernel (`SYMRNN_BIG_GEMM=blocked`);
- `numpy`: `np.matmul` on OpenBLAS's own threads (the roof bench/run.py measures against).

Shapes of a 1-layer LSTM/GRU training step (T=100, N=64, H=512): the weight gradients
`dG^T @ X` (A stored transposed) at M = 4H, 3H, 2H, a product with M = 2H stored row-major,
the data gradients and an input projection (B stored transposed). The three take turns in
another order each round, in one process; after each numpy call a pause of SETTLE seconds
(untimed) lets OpenBLAS's idle threads, which spin for about 0.1 s, go to sleep before the
next call. Each cell: median GFLOP/s over wall time / over CPU time (the process's CPU seconds
divided by the threads: what a core gave, robust to other processes on a shared machine).

`--steps gru1,lstm1`: instead, whole training steps (forward + backward) of bench/run.py's
cases, one fused executor bound per path (the path is chosen when the program is bound) and
PyTorch's peer, taking turns in one process: median ms, and the paths' ratio per round.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from runtime.cpu import blas
from runtime.cpu.packed_gemm import aligned, big_call, scratch_size

SETTLE = 0.25


def shapes(r) -> dict:
    """name -> (a, b): op(A) and op(B) as the engine's views hold them."""
    def x(*shape):
        return r.standard_normal(shape).astype(np.float32)

    out = {f"weight gradient ({m}x6400)·(6400x512), A^T": (x(6400, m).T, x(6400, 512))
           for m in (2048, 1536, 1024)}
    out["(1024x6400)·(6400x512)"] = (x(1024, 6400), x(6400, 512))
    for k in (2048, 1536):
        out[f"data gradient (6400x{k})·({k}x512)"] = (x(6400, k), x(k, 512))
    out["input projection (6400x512)·(512x2048), B^T"] = (x(6400, 512), x(2048, 512).T)
    return out


def calls(a, b, c, threads) -> dict:
    """name -> callable, built the way the engine builds them."""
    k, n = b.shape
    out = {}
    for name, blocked in (("split", False), ("blocked", True)):
        out[name] = big_call(a, b, c, False, threads, aligned(scratch_size(k, n, "float32"),
                                                              "float32"), blocked)
    out["numpy"] = lambda: np.matmul(a, b, out=c)
    return out


def timed(name: str, call, n_threads: int) -> tuple:
    """(wall seconds, CPU seconds per thread) of one call."""
    def run():
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        return time.perf_counter() - wall, (time.process_time() - cpu) / n_threads
    if name == "numpy":
        with blas.blas_threads(n_threads):
            out = run()
        time.sleep(SETTLE)
        return out
    with blas.one_pool():
        return run()


def measure(rounds: int, n_threads: int) -> dict:
    r, threads = np.random.default_rng(0), np.full(1, n_threads, np.intc)
    table = {}
    for case, (a, b) in shapes(r).items():
        c = np.zeros((a.shape[0], b.shape[1]), np.float32)
        exact = a.astype(np.float64) @ b.astype(np.float64)
        runs = calls(a, b, c, threads)
        names = list(runs)
        for name in names:  # warm up, and check
            c[...] = np.nan
            timed(name, runs[name], n_threads)
            assert np.abs(c - exact).max() <= 1e-4 * np.abs(exact).max(), (case, name)
        times: dict = {n: [] for n in names}
        for i in range(rounds):
            for name in names[i % 3:] + names[:i % 3]:
                times[name].append(timed(name, runs[name], n_threads))
        flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
        table[case] = {n: {"wall_gflops": flops / statistics.median(t[0] for t in v) / 1e9,
                           "cpu_gflops": flops / statistics.median(t[1] for t in v) / 1e9,
                           "best_gflops": flops / min(t[0] for t in v) / 1e9}
                       for n, v in times.items()}
        row = table[case]
        print(f"| {case} | " + " | ".join(
            f"{row[n]['wall_gflops']:.0f} / {row[n]['cpu_gflops']:.0f}" for n in names) + " |",
            flush=True)
    return table


def measure_steps(cases: list, rounds: int) -> dict:
    """Training steps of bench/run.py's `cases`, each path's fused executor and the torch
    peer in turns (a pause of SETTLE s after the peer, whose threads spin too)."""
    import run as bench_run  # bench/run.py's cases
    from peers import TorchRNN, torch_or_none
    cfg = bench_run.parse([])
    torch, r, table = torch_or_none(), np.random.default_rng(0), {}
    for name in cases:
        spec = bench_run.case_spec(name, cfg)
        symbol = bench_run.build_symbol(spec, cfg)
        runs, args = {}, None
        grad = r.standard_normal((cfg.T, cfg.N, spec["sizes"][-1]), dtype=np.float32)
        for label, path in (("split", "blas"), ("blocked", "blocked")):
            os.environ["SYMRNN_BIG_GEMM"] = path
            ex = symbol.simple_bind(data=(cfg.T, cfg.N, cfg.I), backend="cpu", optimize=True)
            args = args or bench_run.random_args(ex, spec, cfg, r)
            ex.copy_params_from(args)
            runs[label] = bench_run.SymRunner(ex, grad).fwdbwd
        os.environ.pop("SYMRNN_BIG_GEMM")
        if torch is not None and not spec["zoneout"]:
            runs["torch"] = TorchRNN(torch, spec["typ"], len(spec["sizes"]), cfg.I,
                                     spec["sizes"][-1], args, spec["rnn_name"], args["data"],
                                     grad).fwdbwd
        names, ms = list(runs), {n: [] for n in runs}
        for fn in runs.values():
            fn()  # warm up
        for i in range(rounds):
            for n in names[i % len(names):] + names[:i % len(names)]:
                start = time.perf_counter()
                runs[n]()
                ms[n].append((time.perf_counter() - start) * 1e3)
                if n == "torch":
                    time.sleep(SETTLE)
        med = {n: statistics.median(v) for n, v in ms.items()}
        ratio = statistics.median(b / s for s, b in zip(ms["split"], ms["blocked"]))
        table[name] = {"median_ms": med, "blocked_over_split": ratio}
        print(f"| {name} | " + " | ".join(f"{med[n]:.0f}" for n in names) +
              f" | {ratio:.3f} |", flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--steps", help="cases of bench/run.py to time whole training steps of")
    args = parser.parse_args()
    load = os.getloadavg()
    if args.steps:
        print(f"fwd+bwd, {args.rounds} interleaved rounds, median ms; load {load[0]:.1f}\n")
        print("| case | split | blocked | torch | blocked/split |\n|---|---|---|---|---|")
        table = measure_steps(args.steps.split(","), args.rounds)
        print(f"\nload average {load[0]:.1f} -> {os.getloadavg()[0]:.1f}")
        return
    print(f"float32, {args.threads} threads, {args.rounds} interleaved rounds; GFLOP/s median "
          f"over wall / CPU time; load average {load[0]:.1f}\n")
    print("| product | split | blocked | numpy |\n|---|---|---|---|")
    table = measure(args.rounds, args.threads)
    after = os.getloadavg()
    print(f"\nload average {load[0]:.1f} -> {after[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"table": table, "loadavg_before": load, "loadavg_after": after,
                       "rounds": args.rounds, "threads": args.threads}, f, indent=1)


if __name__ == "__main__":
    main()
