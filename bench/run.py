"""symrnn on the CPU against the unrolled program, the reference interpreter and PyTorch CPU.

    python bench/run.py                       # T=100, N=64, I=H=512, every case (minutes)
    python bench/run.py --quick               # tiny shapes (T=5, N=4, I=H=16), seconds
    python bench/run.py --out bench/results/cpu-2025-01-01.json --cases lstm1,zoneout

One process, one run, one machine: for every case the fused CPU program (`optimize=True`), the
unrolled one (`optimize=False`), the reference executor and the PyTorch peer are built with the
same random weights, checked against each other once, then timed: each implementation in a
block of its own (warm-up, then back-to-back runs), in two passes in opposite orders (see
`blocked`); the median is reported, with the minimum and every sample in the JSON. Forward is `forward(is_train=False)` (PyTorch: `torch.no_grad()`);
forward+backward is `forward(is_train=True)` then `backward(out_grads=...)` (PyTorch:
`output.backward(grad)`), with gradients for every argument (data, weights, initial states).

Cases: `lstm1`, `lstm2`, `gru1`, `gru2` (`nn.LSTM` / `nn.GRU` peers) and `zoneout` (an LSTM
stack `[H, H/2]` with zoneout 0.1 against an `nn.LSTMCell` loop doing the same zoneout).
Also measured: numpy's single-precision GEMM rate (the roof) and, per fused program, where
the time goes, step kind by step kind (`breakdown`).

The machine's environment sets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which hold numpy's
OpenBLAS to older kernels: this script removes both and re-executes itself before numpy is
imported (unless --keep-blas-env), and records which BLAS kernel ran (threadpoolctl).

Writes `<out>.json` (every time in ms, every ratio) and `<out>.md` (the table), prints the
table and the issue's speed goals as PASS/FAIL lines. Nothing here asserts a time.
"""
from __future__ import annotations

import os
import sys

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
from machine import REMOVED_MARK as _REMOVED_MARK


def _clean_environment() -> None:
    """Re-executes this script without BLAS_ENV if any is set (numpy not yet imported)."""
    if "--keep-blas-env" in sys.argv or not any(v in os.environ for v in BLAS_ENV):
        return
    import json

    removed = {v: os.environ[v] for v in BLAS_ENV if v in os.environ}
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    env[_REMOVED_MARK] = json.dumps(removed)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


if __name__ == "__main__":
    _clean_environment()


import argparse
import contextlib
import datetime
import json
import statistics
import time
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from breakdown import SymRunner, breakdown, cpu_engines, program_flops, timed
from features import FEATURES, feature_goals, feature_lines, run_features, select
from infer import SETTLE, apply_bounds, inference_lines, run_inference
from machine import _threadpools, loadavg, machine_info
from peers import TorchRNN, TorchZoneoutLoop, torch_or_none
from report import (
    breakdown_lines,
    evaluate_goals,
    goal_lines,
    ratios,
    roof_lines,
    table,
)

import symrnn as sym

IMPLS = ("fused", "unrolled", "reference", "torch")
ALL_CASES = ("lstm1", "lstm2", "gru1", "gru2", "zoneout", "infer")  # infer: bench/infer.py
FEATURE_NAMES = ("features", *FEATURES)  # bench/features.py; `-name` leaves one out
ZONEOUT = 0.1
CHECK_ATOL = 1e-3  # float32 outputs, fused against every other implementation


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- environment ---------------------------------------------------------------------------
def summary(samples: list) -> dict | None:
    if not samples:
        return None
    return {"median_ms": statistics.median(samples), "min_ms": min(samples),
            "samples_ms": [round(s, 4) for s in samples]}


def blocked(runners: dict, repeats: dict, warmup: dict) -> dict:
    """{impl: summary}. Each implementation runs in a block of its own (warm-up, then timed
    runs back to back), in two passes, A B C D then D C B A, half the repeats each, so that a
    drift in the machine's load cancels to first order.

    Not interleaved run by run: numpy's OpenBLAS threads and PyTorch's OpenMP threads share the
    cores, and on a loaded machine the first call after the other library ran waits for the
    scheduler to wake its sleeping worker threads: a 0.6 ms PyTorch call took 300 ms right
    after a numpy GEMM (load average 9 on 2 cores). Blocks measure each library in its steady
    state, as a user running only that library sees it."""
    order = list(runners)
    samples = defaultdict(list)
    for pass_no, names in enumerate((order, order[::-1])):
        for name in names:
            n = repeats[name] // 2 + (repeats[name] % 2 if pass_no == 0 else 0)
            if n <= 0:
                continue
            fn = runners[name]
            for _ in range(warmup[name]):
                fn()
            samples[name] += [timed(fn) for _ in range(n)]
    return {name: summary(samples[name]) for name in runners}


# ---- the GEMM roof -------------------------------------------------------------------------------
def gemm_rate(m: int, k: int, n: int, repeats: int, threads: int | None = None,
              count: int = 1) -> dict:
    """numpy float32 `(m x k) @ (k x n)` (`count` times per sample), GFLOP/s from the median."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)

    def run():
        for _ in range(count):
            np.matmul(a, b, out=c)

    def measure():
        run()
        return [timed(run) for _ in range(repeats)]

    if threads is None:
        samples = measure()
    else:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return {"error": "threadpoolctl is not installed"}
        with threadpool_limits(limits=threads, user_api="blas"):
            samples = measure()
    flops = 2.0 * m * k * n * count
    med = statistics.median(samples)
    return {"shape": [m, k, n], "count": count, "threads": threads, "flops": flops,
            "median_ms": med, "min_ms": min(samples), "samples_ms": samples,
            "gflops": flops / (med / 1e3) / 1e9, "gflops_best": flops / (min(samples) / 1e3) / 1e9}


def roof_runner(size: int):
    """numpy's float32 `size`-cube GEMM as a runner timed beside a case's implementations, in
    the same blocks (`blocked`) and under the same threads: the roof of that case's window,
    by the same statistic (the median), for its fractions of the roof. `.flops` per call."""
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    c = np.empty((size, size), np.float32)

    def run():
        np.matmul(a, b, out=c)

    run.flops = 2.0 * size ** 3
    return run


def measure_roof(cfg) -> dict:
    """The roof under each thread setting: numpy's rate on a square GEMM and on the input
    projection `(T*N x I)·(I x 4H)`, the larger of the two; also the `T` per-step recurrent
    products `(N x H)·(H x 4H)` of one LSTM layer, the least the fused forward spends in BLAS
    (at the default threads and at one thread)."""
    T, N, I, H = cfg.T, cfg.N, cfg.I, cfg.H
    sq, reps = cfg.roof_size, cfg.roof_repeats
    rates, roofs = {}, {}
    for setting in cfg.thread_settings:
        label = threads_label(setting)
        sfx = "" if label == "default" else f"_{label}thread"
        threads = None if setting == "default" else int(setting)
        rates[f"square_{sq}{sfx}"] = gemm_rate(sq, sq, sq, reps, threads=threads)
        rates[f"input_projection{sfx}"] = gemm_rate(T * N, I, 4 * H, reps, threads=threads)
        roofs[label] = max(rates[f"square_{sq}{sfx}"].get("gflops", 0),
                           rates[f"input_projection{sfx}"].get("gflops", 0))
    rates["recurrent_steps"] = gemm_rate(N, H, 4 * H, reps, count=T)
    rates["recurrent_steps_1thread"] = gemm_rate(N, H, 4 * H, reps, threads=1, count=T)
    first = threads_label(cfg.thread_settings[0])
    return {"roof_gflops": roofs[first], "roof_gflops_by_threads": roofs, "rates": rates}


# ---- symrnn ----------------------------------------------------------------------------------
def case_spec(name: str, cfg) -> dict:
    H = cfg.H
    specs = {
        "lstm1": {"typ": "lstm", "sizes": [H], "zoneout": 0.0},
        "lstm2": {"typ": "lstm", "sizes": [H, H], "zoneout": 0.0},
        "gru1": {"typ": "gru", "sizes": [H], "zoneout": 0.0},
        "gru2": {"typ": "gru", "sizes": [H, H], "zoneout": 0.0},
        "zoneout": {"typ": "lstm", "sizes": [H, max(1, H // 2)], "zoneout": ZONEOUT},
    }
    spec = specs[name]
    spec["name"] = name
    spec["rnn_name"] = spec["typ"]
    spec["peer"] = (f"nn.LSTMCell loop, zoneout {ZONEOUT:g}" if spec["zoneout"]
                    else {"lstm": "nn.LSTM", "gru": "nn.GRU"}[spec["typ"]])
    return spec


def build_symbol(spec, cfg):
    rnn = sym.RNNFactory(num_hidden=spec["sizes"], data_dim=cfg.I, typ=spec["typ"],
                         zoneout=spec["zoneout"], name=spec["rnn_name"])
    return rnn.step(sym.Variable("data"), seq_len=cfg.T, ret_typ="out")[-1]


def random_args(ex, spec, cfg, rng) -> dict:
    """PyTorch's initialisation, U(-1/sqrt(H_l), 1/sqrt(H_l)); zero initial states; N(0,1)
    data."""
    args = {}
    for name, arr in ex.arg_dict.items():
        if name == "data":
            args[name] = rng.standard_normal(arr.shape, dtype=np.float32)
        elif name.endswith(("_init_h", "_init_c")):
            args[name] = np.zeros(arr.shape, np.float32)
        else:
            layer = int(name[len(spec["rnn_name"]) + 2:].split("_", 1)[0])
            bound = 1.0 / np.sqrt(spec["sizes"][layer])
            args[name] = rng.uniform(-bound, bound, arr.shape).astype(np.float32)
    return args


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# ---- where the time goes -----------------------------------------------------------------------
def run_case(name: str, cfg, torch, rng) -> dict:
    spec = case_spec(name, cfg)
    T, N, I = cfg.T, cfg.N, cfg.I
    H_out = spec["sizes"][-1]
    res = {"case": name, "typ": spec["typ"], "sizes": spec["sizes"], "zoneout": spec["zoneout"],
           "T": T, "N": N, "I": I, "peer": spec["peer"] if torch else None,
           "load_before": loadavg()}
    log(f"[{name}] {spec['typ']} {spec['sizes']} zoneout={spec['zoneout']} T={T} N={N} I={I}")
    symbol = build_symbol(spec, cfg)
    impls = ["fused", "unrolled"] + (["reference"] if cfg.ref_repeats > 0 else [])
    exs, bind_s = {}, {}
    for impl in impls:
        kw = {"reference": {"backend": "reference"},
              "fused": {"backend": "cpu", "optimize": True},
              "unrolled": {"backend": "cpu", "optimize": False}}[impl]
        t0 = time.perf_counter()
        exs[impl] = symbol.simple_bind(data=(T, N, I), **kw)
        bind_s[impl] = time.perf_counter() - t0
        log(f"  bind {impl}: {bind_s[impl]:.2f} s")
    res["bind_seconds"] = bind_s
    args = random_args(exs["fused"], spec, cfg, rng)
    grad = rng.standard_normal((T, N, H_out), dtype=np.float32)
    runners = {}
    for impl, ex in exs.items():
        ex.copy_params_from(args)
        runners[impl] = SymRunner(ex, grad)
    if torch is not None:
        if spec["zoneout"]:
            runners["torch"] = TorchZoneoutLoop(torch, spec["sizes"], I, spec["zoneout"], args,
                                                spec["rnn_name"], args["data"], grad)
        else:
            runners["torch"] = TorchRNN(torch, spec["typ"], len(spec["sizes"]), I, H_out,
                                        args, spec["rnn_name"], args["data"], grad)

    # correctness, once, before timing (inference outputs: deterministic, zoneout included);
    # the first inference forward also builds the forward-only program where there is one
    outs, first_s = {}, {}
    for impl, r in runners.items():
        t0 = time.perf_counter()
        outs[impl] = r.output()
        first_s[impl] = time.perf_counter() - t0
    res["first_inference_forward_seconds"] = first_s
    res["flops"] = program_flops(exs["fused"])
    res["program_stats"] = {}
    for impl in ("fused", "unrolled"):
        for mode, eng in (cpu_engines(exs[impl]) or {}).items():
            res["program_stats"][f"{impl}_{mode}"] = {
                k: v for k, v in eng.program.stats.items() if k != "compile_seconds"}
    checks = {}
    for impl, out in outs.items():
        if impl != "fused":
            d = max_abs(outs["fused"], out)
            checks[f"fused_vs_{impl}_output_max_abs_diff"] = d
            checks[f"fused_vs_{impl}_output_ok"] = bool(d < CHECK_ATOL)
    if "torch" in runners and not spec["zoneout"]:
        # training without dropout/zoneout is deterministic: compare gradients too
        runners["fused"].fwdbwd()
        runners["torch"].fwdbwd()
        ours = exs["fused"].grad_dict
        theirs = runners["torch"].grads()
        rn = spec["rnn_name"]
        pairs = {"data": ("data", "data")}
        for l in range(len(spec["sizes"])):
            for w in ("i2h_weight", "h2h_weight"):
                pairs[f"l{l}_{w}"] = (f"{rn}_l{l}_{w}", f"l{l}_{w}")
        gd = {}
        for key, (o, t) in pairs.items():
            scale = max(1.0, float(np.max(np.abs(theirs[t]))))
            gd[key] = max_abs(ours[o], theirs[t]) / scale
        checks["fused_vs_torch_grad_max_rel_diff"] = gd
        checks["fused_vs_torch_grad_ok"] = bool(max(gd.values()) < CHECK_ATOL)
    res["checks"] = checks
    log("  checks: " + ", ".join(f"{k}={v:.2e}" for k, v in checks.items()
                                 if isinstance(v, float)))

    repeats = {impl: (cfg.ref_repeats if impl == "reference" else cfg.repeats)
               for impl in runners}
    warmup = {impl: (0 if impl == "reference" else cfg.warmup) for impl in runners}
    res["timings"] = {}
    first = None
    for setting in cfg.thread_settings:
        label = threads_label(setting)
        with thread_limit(setting, torch) as threads:
            # the slow reference runs under the first setting only; later settings reuse it
            names = [k for k in runners if k != "reference" or first is None]
            t = {"threads": threads, "load_before": loadavg()}
            roof_fn = roof_runner(cfg.roof_size)
            t["roof"] = {}
            for mode in ("fwd", "fwdbwd"):
                fns = {impl: getattr(runners[impl], mode) for impl in names}
                fns["roof"] = roof_fn  # the roof in the same blocks, under the same threads
                t[mode] = blocked(fns, {**repeats, "roof": cfg.repeats},
                                  {**warmup, "roof": 1})
                t["roof"][mode] = dict(t[mode].pop("roof"), flops=roof_fn.flops)
                t["roof"][mode]["gflops"] = roof_fn.flops / t["roof"][mode]["median_ms"] / 1e6
                if first is not None and "reference" in runners:
                    t[mode]["reference"] = dict(res["timings"][first][mode]["reference"],
                                                note=f"measured under threads={first}")
                log(f"  threads={label} {mode}: " + ", ".join(
                    f"{k} {v['median_ms']:.1f} ms" for k, v in t[mode].items() if v))
            t["ratios"] = ratios(t)
            if cfg.breakdown:
                t["breakdown"] = breakdown(exs["fused"], grad, cfg, cfg.breakdown_runs)
            t["load_after"] = loadavg()
        res["timings"][label] = t
        first = first or label
    primary = res["timings"][first]  # the first setting, also at the top level of the case
    for key in ("fwd", "fwdbwd", "ratios", "breakdown"):
        if key in primary:
            res[key] = primary[key]
    res["load_after"] = loadavg()
    return res


def threads_label(setting) -> str:
    return "default" if setting == "default" else str(int(setting))


@contextlib.contextmanager
def thread_limit(setting, torch):
    """Runs the block with numpy's BLAS (threadpoolctl) and PyTorch limited to `setting`
    threads ('default': as they are); yields what is in force."""
    def current():
        return {"blas": [p.get("num_threads") for p in _threadpools()
                         if isinstance(p, dict) and p.get("user_api") == "blas"],
                "torch": torch.get_num_threads() if torch is not None else None}

    if setting == "default":
        yield current()
        return
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=int(setting), user_api="blas"):
        if torch is not None:
            torch.set_num_threads(int(setting))
        try:
            yield current()
        finally:
            if torch is not None:
                torch.set_num_threads(old)


# ---- main ----------------------------------------------------------------------------------------
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes (T=5, N=4, I=H=16), 2 repeats: checks that it all runs")
    p.add_argument("--out", help="JSON path (the .md goes beside it); default "
                                 "bench/results/cpu[-quick]-<date>.json")
    p.add_argument("--cases", default=",".join(ALL_CASES),
                   help=f"comma-separated subset of {','.join(ALL_CASES)} and of "
                        f"{','.join(FEATURE_NAMES)} ('features': all of issue 12's; "
                        f"'-layer_norm' leaves that one out); default: all but the features")
    for dim, full, quick in (("T", 100, 5), ("N", 64, 4), ("I", 512, 16), ("H", 512, 16)):
        p.add_argument(f"--{dim}", type=int, default=None,
                       help=f"default {full} ({quick} with --quick)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per implementation (default 7; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed runs first (default 2)")
    p.add_argument("--ref-repeats", type=int, default=None,
                   help="timed runs of the slow reference executor (default 2; quick 1; 0 skips it)")
    p.add_argument("--roof-size", type=int, default=None,
                   help="side of the square roof GEMM (default 4096; quick 256)")
    p.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                   help="skip the per-step time breakdown of the fused programs")
    p.add_argument("--threads", default="default",
                   help="comma-separated thread settings to time under, each 'default' (the "
                        "libraries as they start) or a count applied to numpy's BLAS "
                        "(threadpoolctl) and PyTorch alike; e.g. 'default,1'")
    p.add_argument("--keep-blas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (to measure their effect)")
    cfg = p.parse_args(argv)
    q = cfg.quick
    for dim, full, quick in (("T", 100, 5), ("N", 64, 4), ("I", 512, 16), ("H", 512, 16)):
        if getattr(cfg, dim) is None:
            setattr(cfg, dim, quick if q else full)
    cfg.repeats = cfg.repeats if cfg.repeats is not None else (2 if q else 7)
    cfg.warmup = cfg.warmup if cfg.warmup is not None else (1 if q else 2)
    cfg.ref_repeats = cfg.ref_repeats if cfg.ref_repeats is not None else (1 if q else 2)
    cfg.roof_size = cfg.roof_size or (256 if q else 4096)
    cfg.roof_repeats = 3
    cfg.breakdown_runs = 2 if q else 3
    cfg.infer_rounds = 2 if q else 7
    cfg.stream_rounds = 2 if q else 5
    cfg.settle = 0.0 if q else SETTLE
    cfg.thread_settings = []
    for t in (x.strip() for x in cfg.threads.split(",") if x.strip()):
        if t != "default" and not (t.isdigit() and int(t) > 0):
            p.error(f"--threads: {t!r} is neither 'default' nor a positive count")
        cfg.thread_settings.append(t if t == "default" else int(t))
    if not cfg.thread_settings:
        p.error("--threads: give at least one setting")
    if any(t != "default" for t in cfg.thread_settings):
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            p.error("--threads with a count needs threadpoolctl (pip install threadpoolctl)")
    names = [c.strip() for c in cfg.cases.split(",") if c.strip()]
    bad = [c for c in names if c.lstrip("-") not in ALL_CASES + FEATURE_NAMES]
    if bad:
        p.error(f"unknown case(s) {bad}; choose from {list(ALL_CASES + FEATURE_NAMES)}")
    cfg.case_list = [c for c in names if c in ALL_CASES]
    cfg.feature_list = select(names)
    if not cfg.case_list and not cfg.feature_list:
        p.error(f"--cases {cfg.cases!r} selects nothing")
    if not cfg.out:
        date = datetime.date.today().isoformat()
        cfg.out = os.path.join(HERE, "results", f"cpu{'-quick' if q else ''}-{date}.json")
    return cfg


def main(argv=None) -> int:
    cfg = parse(argv)
    started = time.time()
    results = {
        "schema": 1,
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT) if sys.argv else "run.py",
                             *sys.argv[1:]]),
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_before": loadavg(),
        "config": {"quick": cfg.quick, "T": cfg.T, "N": cfg.N, "I": cfg.I, "H": cfg.H,
                   "dtype": "float32", "repeats": cfg.repeats, "warmup": cfg.warmup,
                   "ref_repeats": cfg.ref_repeats, "cases": cfg.case_list,
                   "features": cfg.feature_list,
                   "statistic": "median of the timed runs (time.perf_counter), each implementation "
                                "in blocks after a warm-up, passes A..D then D..A; min and "
                                "samples beside it",
                   "check_atol": CHECK_ATOL, "zoneout": ZONEOUT,
                   "threads": cfg.thread_settings},
        "machine": machine_info(),
    }
    torch = torch_or_none()
    results["torch_available"] = torch is not None
    log(f"machine: {results['machine']['cpu_model']}, nproc {results['machine']['nproc']}, "
        f"load {results['load_before']}, removed env {results['machine']['removed_env']}")
    log(f"BLAS: {results['machine']['threadpools']}")
    log("measuring the GEMM roof ...")
    results["roof"] = measure_roof(cfg)
    rng = np.random.default_rng(0)
    results["cases"] = []
    for name in cfg.case_list:
        if name == "infer":
            if torch is not None:
                log("[infer] small-batch inference, streaming, bandwidth bound")
                results["inference"] = run_inference(cfg, torch, rng, log)
        else:
            results["cases"].append(run_case(name, cfg, torch, rng))
        finish(results, cfg, started, final=False)  # what is done so far, in case of a stop
    if cfg.feature_list:  # under the first thread setting only
        with thread_limit(cfg.thread_settings[0], torch) as threads:
            results["features"] = run_features(cfg, torch, rng, log)
            results["features"]["threads"] = threads
    log("measuring the GEMM roof again ...")
    end = measure_roof(cfg)
    roof = results["roof"]
    roof["rates_end"] = end["rates"]
    roof["roof_gflops_start"] = dict(roof["roof_gflops_by_threads"])
    roof["roof_gflops_end"] = end["roof_gflops_by_threads"]
    roof["roof_gflops_by_threads"] = {k: max(v, end["roof_gflops_by_threads"].get(k, 0))
                                      for k, v in roof["roof_gflops_by_threads"].items()}
    roof["roof_gflops"] = roof["roof_gflops_by_threads"][threads_label(cfg.thread_settings[0])]
    text = finish(results, cfg, started, final=True)
    print(text)
    log(f"wrote {cfg.out} and {os.path.splitext(cfg.out)[0] + '.md'} "
        f"({results['seconds']:.0f} s)")
    return 0


def roof_bound(tm: dict, flops, roof: float) -> dict:
    """The forward+backward ratio over each peer of a program whose products all ran at the
    roof (numpy's best GEMM rate in this run) and that spent no other time: the peer's time
    over the time of the program's FLOPs at the roof. A goal above it needs products faster
    than numpy's."""
    if not flops or not roof:
        return {}
    ideal_ms = flops / (roof * 1e9) * 1e3
    return {f"{impl}_over_fused": t["median_ms"] / ideal_ms
            for impl, t in tm["fwdbwd"].items() if impl in ("reference", "torch") and t}


def finish(results: dict, cfg, started: float, final: bool) -> str:
    """Completes `results` (goals, checks, load) and writes the JSON and the markdown;
    returns the markdown. Called after every case (`final=False`: marked partial)."""
    results["complete"] = final
    roofs = results["roof"]["roof_gflops_by_threads"]
    for c in results["cases"]:
        for label, tm in c["timings"].items():
            roof = roofs[label]  # the run's best roof, measured under the same threads
            fr, fr_run = {}, {}
            for impl in ("fused", "torch"):  # torch at the same FLOP count: the same products
                for mode in ("fwd", "fwdbwd"):
                    t, flops = tm[mode].get(impl), c["flops"].get(mode)
                    if t and flops:
                        rate = flops / (t["median_ms"] / 1e3) / 1e9
                        fr_run[f"{impl}_{mode}"] = rate / roof
                        fr[f"{impl}_{mode}"] = rate / tm["roof"][mode]["gflops"]
            tm["roof_fraction"] = fr  # of the roof timed in the same blocks
            tm["roof_fraction_run"] = fr_run  # of the run's best roof (start or end)
            tm["roof_bound"] = roof_bound(tm, c["flops"].get("fwdbwd"), roof)
        c["roof_fraction"] = next(iter(c["timings"].values()))["roof_fraction"]
    results["load_after"] = loadavg()
    results["seconds"] = time.time() - started
    feature_cases = (results.get("features") or {}).get("cases", [])
    results["checks_ok"] = all(v for c in results["cases"] + feature_cases
                               for k, v in c.get("checks", {}).items() if k.endswith("_ok"))
    if "inference" in results:
        apply_bounds(results["inference"], results["roof"]["roof_gflops"])
    results["goals"] = evaluate_goals(results) + feature_goals(results.get("features"))

    m = results["machine"]
    pools = m["threadpools"]
    blas = ("; ".join(f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} "
                      f"threads={p.get('num_threads')}" for p in pools
                      if isinstance(p, dict) and p.get("user_api") == "blas")
            if isinstance(pools, list) else "unknown")
    title = f"# symrnn CPU benchmark ({results['started']})"
    if not final:
        title += " (partial: the run has not finished)"
    settings = ", ".join(map(str, cfg.thread_settings))
    md = [title, "",
          f"`{results['command']}`", "",
          (f"T={cfg.T}, N={cfg.N}, I={cfg.I}, H={cfg.H}, float32; median of {cfg.repeats} "
           f"runs in blocks after {cfg.warmup} warm-up (reference: {cfg.ref_repeats}); "
           f"times in ms. Thread settings: {settings} "
           f"('default': numpy's BLAS and PyTorch as they start)."), "",
          (f"CPU: {m['cpu_model']}, nproc {m['nproc']}; load average before "
           f"{results['load_before']}, after {results['load_after']}."),
          f"BLAS: {blas}",
          f"torch: {m['torch']}", "",
          table(results), "", "```", *roof_lines(results), "", *goal_lines(results["goals"]),
          (f"checks (fused vs others, max abs diff < {CHECK_ATOL:g}): "
           f"{'PASS' if results['checks_ok'] else 'FAIL'}"), "```", "",
          "Where the fused programs' time goes (median per step group, ms):", "", "```",
          *breakdown_lines(results), "```", ""]
    if results.get("features"):
        md += [("Issue 12's features, 1-layer LSTM, against the plain fused LSTM of the same "
                "shape and the closest PyTorch peer (bench/features.py; minima, ms):"), "",
               *feature_lines(results["features"]), ""]
    if "inference" in results:
        md += ["Small-batch inference and streaming (issue 15; interleaved rounds, medians):",
               "", *inference_lines(results["inference"]), ""]
    text = "\n".join(md)
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
    with open(cfg.out, "w") as f:
        json.dump(results, f, indent=1, default=float)
    with open(os.path.splitext(cfg.out)[0] + ".md", "w") as f:
        f.write(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
