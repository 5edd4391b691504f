"""How long the compiler takes: a 2-layer LSTM training program (N=64, I=H=512 by default).

    python bench/compile_time.py [--repeat 5]              # T=100: the passes, one by one
    python bench/compile_time.py --sweep [--hidden 512 --batch 64] [--lengths 100 1000 ...]
        [--typ gru] [--dropout 0.2] [--zoneout 0.1] [--bidirectional] [--warm]

Without `--sweep`: prints `simple_bind`'s wall time and the seconds of each pass
(`program.stats`) at T=100. The goal (DESIGN.md section 4) is well under two seconds for the
passes. With `--repeat`, binds that many times in one process (kernels come from the cache
after the first) and prints, per pass, the fastest of the runs: the machine is shared, and
the minimum is the least noisy statistic.

With `--sweep`: for each T (default 100, 1000, 5000, 100000), one fresh process per bind,
each with an empty kernel cache (a temporary SYMRNN_CACHE_DIR, so the C compiler runs), then
a second process on that warm cache (the kernels do not depend on T; the passes do):
building the symbol, `simple_bind` (fresh, with its CPU seconds in this process and in the C
compiler's; warm, with its CPU seconds: the other jobs on a shared machine disturb CPU time less
than wall time), the peak of Python's allocations during
the bind (tracemalloc, numpy's included, in a third process on the warm cache, as tracemalloc
slows the bind down) less the arena and the executor's argument and
gradient arrays ("other"), the arena, those arrays (the data and its gradient are T long),
the peak resident set (ru_maxrss, which counts only the pages touched), the Program's
top-level steps and loops, and the lengths it was extrapolated from (symrnn.lengths).
A bind past `--timeout` seconds is reported as such. `--typ`, `--dropout`, `--zoneout` and
`--bidirectional` choose the stack (RNNFactory's arguments); `--warm` shares one kernel cache
between the lengths, so that past the first the fresh bind compiles no kernel either.
Issue #19's goals: T=5000 under 2 s and T=100000 under 5 s, memory at bind independent of T
apart from the arena.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import symrnn as sym

LENGTHS = (100, 1000, 5000, 100000)
MEMORY = ("alloc_peak_less_arena_mib", "maxrss_mib")  # from a third process, under tracemalloc


def lstm_loss(seq_len: int, hidden: int, typ: str = "lstm", **stack):
    """The 2-layer stack's loss (`stack`: RNNFactory's dropout, zoneout, bidirectional)."""
    rnn = sym.RNNFactory([hidden, hidden], data_dim=hidden, typ=typ, name="lstm", **stack)
    all_h = rnn.step(sym.Variable("data"), seq_len=seq_len)[0]
    return sym.sum(all_h[-1] * all_h[-1])


def stack_options(args) -> dict:
    """The flags that choose the stack, as `lstm_loss`'s keywords."""
    return {"typ": args.typ, "dropout": args.dropout, "zoneout": args.zoneout,
            "bidirectional": args.bidirectional}


def stack_flags(args) -> list[str]:
    """The same flags, for a sweep's child."""
    return ["--typ", args.typ, "--dropout", str(args.dropout), "--zoneout", str(args.zoneout),
            *(["--bidirectional"] if args.bidirectional else [])]


def bind_once(loss, seq_len=100, batch=64, hidden=512) -> tuple[float, dict]:
    start = time.perf_counter()
    ex = loss.simple_bind(data=(seq_len, batch, hidden))
    return time.perf_counter() - start, ex.engine.program.stats["compile_seconds"]


def measure(seq_len: int, batch: int, hidden: int, stack: dict, memory: bool = False) -> dict:
    """One bind in this process: what `--sweep` prints for one length; with `memory`, under
    tracemalloc (which makes Python's allocations, and so the bind, 2-3x slower)."""
    if memory:
        tracemalloc.start()
    start = time.perf_counter()
    loss = lstm_loss(seq_len, hidden, **stack)
    built, cpu, cc = time.perf_counter(), time.process_time(), _children_cpu()
    ex = loss.simple_bind(data=(seq_len, batch, hidden))
    bound, cpu, cc = time.perf_counter(), time.process_time() - cpu, _children_cpu() - cc
    peak = tracemalloc.get_traced_memory()[1] if memory else 0
    tracemalloc.stop()
    program = ex.engine.program
    arena = sum(b.size * (4 if b.dtype == "float32" else 8)
                for b in program.buffers.values() if b.kind == "arena")
    arrays = sum(a.nbytes for d in (ex.arg_dict, ex.grad_dict) for a in d.values())
    return {"T": seq_len, "symbol_s": built - start, "bind_s": bound - built, "bind_cpu_s": cpu,
            "compiler_cpu_s": cc,
            "alloc_peak_less_arena_mib": (peak - arena - arrays) / 2**20,
            "arena_mib": arena / 2**20, "args_grads_mib": arrays / 2**20,
            "extrapolated_from": program.stats.get("extrapolated_from"),
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "steps": len(program.steps), "loops": sum(s.kind == "loop" for s in program.steps)}


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (the C compiler's runs)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def child(seq_len: int, args, cache: str, memory: bool = False) -> dict:
    env = {**os.environ, "SYMRNN_CACHE_DIR": cache}
    cmd = [sys.executable, __file__, "--one", str(seq_len), "--batch", str(args.batch),
           "--hidden", str(args.hidden), *stack_flags(args),
           *(["--memory"] if memory else [])]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"T": seq_len, "timeout": args.timeout}
    if done.returncode:
        return {"T": seq_len, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def sweep(args) -> None:
    print(f"2-layer {args.typ} training program, N={args.batch}, I=H={args.hidden}, "
          f"dropout={args.dropout}, zoneout={args.zoneout}, "
          f"bidirectional={args.bidirectional}")
    print(f"{'T':>7} {'symbol s':>9} {'bind s':>8} {'cpu s':>6} {'cc cpu s':>8} {'warm s':>8} "
          f"{'warm cpu s':>10} "
          f"{'other MiB':>10} "
          f"{'arena MiB':>10} {'args MiB':>9} {'maxrss MiB':>11} {'steps':>6} {'loops':>6} "
          f"sampled")
    rows = []
    shared = tempfile.TemporaryDirectory() if args.warm else None
    for seq_len in args.lengths:
        with tempfile.TemporaryDirectory() as own:
            cache = shared.name if shared else own  # --warm: one cache for every length
            fresh = child(seq_len, args, cache)
            warm = child(seq_len, args, cache) if "bind_s" in fresh else {}
            memory = child(seq_len, args, cache, memory=True) if "bind_s" in fresh else {}
        fresh.update({k: memory.get(k, float("nan")) for k in MEMORY})
        rows.append({**fresh, "warm_bind_s": warm.get("bind_s"),
                     "warm_bind_cpu_s": warm.get("bind_cpu_s")})
        if "bind_s" not in fresh:
            print(f"{seq_len:>7} {json.dumps(fresh)}")
            continue
        print(f"{seq_len:>7} {fresh['symbol_s']:>9.2f} {fresh['bind_s']:>8.2f} "
              f"{fresh['bind_cpu_s']:>6.2f} {fresh['compiler_cpu_s']:>8.2f} "
              f"{warm.get('bind_s', float('nan')):>8.2f} "
              f"{warm.get('bind_cpu_s', float('nan')):>10.2f} "
              f"{fresh['alloc_peak_less_arena_mib']:>10.1f} {fresh['arena_mib']:>10.1f} "
              f"{fresh['args_grads_mib']:>9.1f} {fresh['maxrss_mib']:>11.0f} "
              f"{fresh['steps']:>6} {fresh['loops']:>6} {fresh['extrapolated_from']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="binds to run (default 1)")
    parser.add_argument("--sweep", action="store_true", help="bind time and memory against T")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per bind")
    parser.add_argument("--json", help="also write the sweep's rows here")
    parser.add_argument("--typ", default="lstm", choices=["lstm", "gru", "rnn_tanh", "rnn_relu"])
    parser.add_argument("--dropout", type=float, default=0.0, help="per layer (default 0)")
    parser.add_argument("--zoneout", type=float, default=0.0, help="per layer (default 0)")
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--warm", action="store_true",
                        help="one kernel cache for the whole sweep: past the first length, "
                             "the fresh bind finds the kernels compiled")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a sweep's child
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.batch, args.hidden, stack_options(args),
                                 args.memory)))
        return
    if args.sweep:
        sweep(args)
        return
    loss = lstm_loss(100, args.hidden, **stack_options(args))
    runs = [bind_once(loss, 100, args.batch, args.hidden) for _ in range(max(1, args.repeat))]
    totals = [sum(passes.values()) for _, passes in runs]
    print(f"simple_bind {min(t for t, _ in runs):.2f} s; passes + emit {min(totals):.2f} s "
          f"(fastest of {len(runs)}; all: {', '.join(f'{t:.2f}' for t in totals)})")
    for name in runs[0][1]:
        print(f"  {name:14s} {min(p[name] for _, p in runs):.3f} s")


if __name__ == "__main__":
    main()
