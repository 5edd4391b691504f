"""Small-batch inference, streaming and the memory-bandwidth bound (issue 15), for run.py.

- `small_batch`: `nn.LSTM` / `nn.GRU` (eval, no_grad) against symrnn's inference program
  (`grad_req='null'`, fused), T, H as the run, 1 and 2 layers, N = 1, 4, 8.
- `streaming`: a T=1 program (1-layer LSTM, N=1) fed chunk after chunk, the final states
  carried into the initial states in place (`Executor.carry_states`); the time per chunk
  against one step of the T-step program (its time over T).
- `bandwidth`: a streaming read measured in the run (BLAS's sdot of the weight-sized array
  with itself on one thread, on two threads over halves, and BLAS's sgemv; the fastest rate
  is taken).
  At N=1 a step reads every recurrent weight once; the bound on a sequence is T such reads
  plus one read of the input weights (their product runs once over all steps).
  The N=1 cases also time that bound itself (`read`: T sdots of each layer's recurrent
  weight and one of its input weight, in one timed call) in the same interleaved rounds as
  ours and PyTorch's: on this shared machine a single 4 MiB read, timed alone, ran 3.4x
  faster per read than a block of 100 (load 11: a short call fits in one time slice, a
  sequence does not), so the fraction of the bound is that block's time over ours, measured
  side by side; the single-read rate (`bandwidth`) is kept for reference.
- `apply_bounds` (run.py calls it with the run's GEMM roof): for every N the bound that
  applies, the larger of the bandwidth bound (single reads) and the program's FLOPs at the
  roof, and our fraction of it. It is a lower bound on the time, not a tight one: the input
  projection (compute) and the steps (bandwidth at small N) run one after the other, and the
  bound takes the larger of the two totals, not the sum of each phase's.

Timing here is interleaved: rounds of (untimed call, timed call) per implementation, the
order reversed every round; medians. Before each implementation's untimed call the bench
pauses `SETTLE` seconds, so the previous one's threads (PyTorch's OpenMP, OpenBLAS's) have
stopped spinning: without it our N=1 LSTM ran 10.8 ms right after PyTorch, 6.6 alone.
"""
from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from breakdown import program_flops, timed
from machine import loadavg
from peers import TorchRNN

import symrnn as sym

BATCHES = (1, 4, 8)
GATES = {"lstm": 4, "gru": 3}
SETTLE = 0.25  # seconds, as gemm.py: until the last runner's spinning threads sleep


def interleaved(runners: dict, rounds: int, settle: float = SETTLE) -> dict:
    """{name: {'median_ms', 'min_ms', 'samples_ms'}}; each round runs every runner once
    untimed then once timed, in an order reversed every round, after a pause of `settle` s."""
    names, samples = list(runners), {n: [] for n in runners}
    for r in range(rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            time.sleep(settle)
            runners[n]()
            samples[n].append(timed(runners[n]))
    return {n: {"median_ms": statistics.median(s), "min_ms": min(s),
                "samples_ms": [round(x, 4) for x in s]} for n, s in samples.items()}


# ---- the bandwidth bound -----------------------------------------------------------------
def read_rate(nbytes: int, repeats: int = 15) -> dict:
    """GB/s of a streaming read of `nbytes` (float32), hot in whatever cache holds it."""
    w = np.random.default_rng(0).standard_normal(nbytes // 4, dtype=np.float32)
    cols = 2048 if w.size % 2048 == 0 else 1
    mat, x = w.reshape(-1, cols), np.ones(w.size // cols, np.float32)
    halves = np.array_split(w, 2)
    pool = ThreadPoolExecutor(2)

    def split_dot():
        list(pool.map(lambda h: np.dot(h, h), halves))

    # sdot of the array with itself reads each element once (numpy's pairwise sum is slower
    # than the memory: 1.1 ms against 0.9 for 4 MiB on this machine)
    ways = {"sdot_1thread": lambda: np.dot(w, w), "sdot_2threads": split_dot,
            "blas_sgemv": lambda: x @ mat}
    rates = {}
    for name, fn in ways.items():
        fn()
        best = statistics.median(timed(fn) for _ in range(repeats))
        rates[name] = nbytes / (best / 1e3) / 1e9
    pool.shutdown()
    return {"bytes": nbytes, "gbps": rates, "best_gbps": max(rates.values()),
            "best": max(rates, key=rates.get)}


def weight_bytes(typ: str, sizes: list, data_dim: int) -> tuple[int, int]:
    """(recurrent weight bytes read per step, input weight bytes read once), float32."""
    g, ins = GATES[typ], [data_dim, *sizes[:-1]]
    return (sum(4 * g * h * h for h in sizes),
            sum(4 * g * h * i for h, i in zip(sizes, ins)))


def weight_reads(typ: str, sizes: list, data_dim: int, T: int):
    """A call reading what a forward at N=1 reads from its weights, by OpenBLAS's sgemv (the
    fastest of read_rate's reads in every run so far): T times every recurrent weight, once
    every input weight. Timed in the same rounds as ours, so the machine's drift cancels."""
    g, ins = GATES[typ], [data_dim, *sizes[:-1]]
    rng = np.random.default_rng(0)

    def matrix(n):
        w = rng.standard_normal(n, dtype=np.float32)
        cols = 2048 if n % 2048 == 0 else 1
        return w.reshape(-1, cols), np.ones(n // cols, np.float32)

    rec = [matrix(g * h * h) for h in sizes]
    inp = [matrix(g * h * i) for h, i in zip(sizes, ins)]

    def read():
        for w, x in inp:
            x @ w
        for _ in range(T):
            for w, x in rec:
                x @ w
    return read


# ---- the cases ----------------------------------------------------------------------------
def bound_infer(typ, layers, T, N, H, rng, with_states=False):
    rnn = sym.RNNFactory(num_hidden=[H] * layers, data_dim=H, typ=typ, name=typ)
    got = rnn.step(sym.Variable("data"), seq_len=T, ret_typ="all")
    heads = [got[0][-1]]
    if with_states:
        heads += list(got[2 if typ == "lstm" else 1]) + (list(got[3]) if typ == "lstm" else [])
    ex = sym.Group(heads).simple_bind(data=(T, N, H), grad_req="null")
    bound = 1.0 / np.sqrt(H)
    ex.copy_params_from({n: (rng.standard_normal(a.shape, dtype=np.float32) if n == "data"
                             else np.zeros(a.shape, np.float32) if "_init_" in n
                             else rng.uniform(-bound, bound, a.shape).astype(np.float32))
                         for n, a in ex.arg_dict.items()})
    return ex


def small_batch_case(torch, typ, layers, N, cfg, rng) -> dict:
    T, H = cfg.T, cfg.H
    res = {"case": f"{typ}{layers} N={N}", "typ": typ, "layers": layers, "T": T, "N": N,
           "H": H, "load_before": loadavg()}
    ex = bound_infer(typ, layers, T, N, H, rng)
    args = {n: a.copy() for n, a in ex.arg_dict.items()}
    peer = TorchRNN(torch, typ, layers, H, H, args, typ, args["data"],
                    np.zeros((T, N, H), np.float32))
    ours = ex.forward(is_train=False)[0]
    res["max_abs_diff"] = float(np.abs(ours - peer.output()).max())
    res["flops"] = program_flops(ex).get("fwd")
    res["check_ok"] = res["max_abs_diff"] < 1e-3
    runners = {"ours": lambda: ex.forward(is_train=False), "torch": peer.fwd}
    if N == 1:
        runners["read"] = weight_reads(typ, [H] * layers, H, T)
    res["times"] = interleaved(runners, cfg.infer_rounds, cfg.settle)
    res["ours_over_torch"] = res["times"]["ours"]["median_ms"] / \
        res["times"]["torch"]["median_ms"]
    res["load_after"] = loadavg()
    return res


def streaming_case(torch, cfg, rng) -> dict:
    """Per chunk of T=1 (write the chunk, forward, carry the states) against a step of the
    T-step program with the same outputs (output sequence and final states). A chunk reads
    its input weight as well as its recurrent one, which a step of the T-step program shares
    with T - 1 others: at the bandwidth bound the ratio is `floor`, 2 where I = H."""
    T, H = cfg.T, cfg.H
    whole = bound_infer("lstm", 1, T, 1, H, rng, with_states=True)
    chunk = bound_infer("lstm", 1, 1, 1, H, rng, with_states=True)
    chunk.copy_params_from({n: a for n, a in whole.arg_dict.items() if n != "data"})
    pairs = {"lstm_l0_init_h": "lstm_l0_t0_h_output", "lstm_l0_init_c": "lstm_l0_t0_c_output"}
    xs = whole.arg_dict["data"].copy()
    box = {"t": 0}

    def one_chunk():
        chunk.arg_dict["data"][0] = xs[box["t"] % T]
        box["t"] += 1
        chunk.forward(is_train=False)
        chunk.carry_states(pairs)

    def chunks_of_whole():
        for _ in range(T):
            one_chunk()

    times = interleaved({"whole": lambda: whole.forward(is_train=False),
                         "chunks": chunks_of_whole}, cfg.stream_rounds, cfg.settle)
    step = times["whole"]["median_ms"] / T
    per_chunk = times["chunks"]["median_ms"] / T
    step_b, once_b = weight_bytes("lstm", [H], H)
    return {"T": T, "N": 1, "H": H, "times_ms": times, "step_in_whole_ms": step,
            "floor": 1 + once_b / step_b,  # bytes a chunk reads over those a step reads
            "per_chunk_ms": per_chunk, "chunk_over_step": per_chunk / step,
            "load": loadavg()}


def run_inference(cfg, torch, rng, log) -> dict:
    out = {"load_before": loadavg(), "cases": []}
    typs = ("lstm", "gru")
    for typ in typs:
        for layers in (1, 2):
            for N in BATCHES:
                c = small_batch_case(torch, typ, layers, N, cfg, rng)
                out["cases"].append(c)
                log(f"  [infer] {c['case']}: ours {c['times']['ours']['median_ms']:.2f} ms, "
                    f"torch {c['times']['torch']['median_ms']:.2f} ms, ratio "
                    f"{c['ours_over_torch']:.3f}, load {c['load_after']}")
    out["streaming"] = streaming_case(torch, cfg, rng)
    log(f"  [stream] per chunk {out['streaming']['per_chunk_ms']:.3f} ms, step in T="
        f"{cfg.T} {out['streaming']['step_in_whole_ms']:.3f} ms")
    out["bandwidth"] = {}
    for typ in typs:
        for layers in (1, 2):
            step_b, once_b = weight_bytes(typ, [cfg.H] * layers, cfg.H)
            rate = read_rate(step_b)
            bound_ms = (cfg.T * step_b + once_b) / (rate["best_gbps"] * 1e9) * 1e3
            out["bandwidth"][f"{typ}{layers}"] = {**rate, "bound_ms": bound_ms,
                                                 "input_bytes": once_b, "T": cfg.T}
    for c in out["cases"]:
        if c["N"] == 1:
            b = out["bandwidth"][f"{c['typ']}{c['layers']}"]
            ours = c["times"]["ours"]["median_ms"]
            c["single_read_fraction"] = b["bound_ms"] / ours
            c["bandwidth_fraction"] = c["times"]["read"]["median_ms"] / ours
    out["load_after"] = loadavg()
    return out


def apply_bounds(inf: dict, roof_gflops: float) -> None:
    """Sets every case's `bound`: the bandwidth bound (single reads), the FLOPs of its
    inference program at `roof_gflops` (the run's GEMM roof), the larger of the two, our
    fraction of it, and the least ours/torch it allows."""
    for c in inf["cases"]:
        bw = inf["bandwidth"].get(f"{c['typ']}{c['layers']}", {}).get("bound_ms")
        flops = c.get("flops")
        compute = flops / (roof_gflops * 1e9) * 1e3 if flops and roof_gflops else None
        known = [x for x in (bw, compute) if x]
        if not known:
            continue
        bound = max(known)
        c["bound"] = {"bandwidth_ms": bw, "compute_ms": compute, "roof_gflops": roof_gflops,
                      "bound_ms": bound, "by": "compute" if bound == compute else "bandwidth",
                      "fraction": bound / c["times"]["ours"]["median_ms"],
                      "ours_over_torch_min": bound / c["times"]["torch"]["median_ms"],
                      "bandwidth_fraction_max": (bw / bound) if bw else None}


def inference_lines(inf: dict) -> list:
    head = ("| inference case | ours ms | torch ms | ours/torch | bound: single reads ms "
            "| fraction | bound: T sgemv reads, interleaved ms | fraction | FLOPs at the roof ms "
            "| bound (the larger) ms | fraction | ours/torch at the bound | load |")
    lines = [head, "|" + "---|" * 13]
    for c in inf["cases"]:
        b = inf["bandwidth"].get(f"{c['typ']}{c['layers']}", {})
        frac, single = c.get("bandwidth_fraction"), c.get("single_read_fraction")
        read = c["times"].get("read", {}).get("median_ms")
        bd = c.get("bound", {})
        lines.append(f"| {c['case']} | {c['times']['ours']['median_ms']:.2f} "
                     f"| {c['times']['torch']['median_ms']:.2f} | {c['ours_over_torch']:.3f} "
                     f"| {b.get('bound_ms', 0):.2f} | {_num(single)} | {_num(read)} "
                     f"| {_num(frac)} | {_num(bd.get('compute_ms'))} "
                     f"| {_num(bd.get('bound_ms'))} ({bd.get('by', '-')}) "
                     f"| {_num(bd.get('fraction'))} | {_num(bd.get('ours_over_torch_min'))} "
                     f"| {_load(c['load_after'])} |")
    s = inf["streaming"]
    lines += ["", (f"streaming T=1 chunks (N=1, LSTM H={s['H']}): {s['per_chunk_ms']:.3f} ms "
                   f"per chunk, {s['step_in_whole_ms']:.3f} ms per step of the T={s['T']} "
                   f"program (ratio {s['chunk_over_step']:.2f}), load {_load(s['load'])}")]
    for k, b in inf["bandwidth"].items():
        rates = ", ".join(f"{w} {v:.1f} GB/s" for w, v in b["gbps"].items())
        lines.append(f"streaming read ({k}'s recurrent weights, {b['bytes'] / 2**20:.1f} "
                     f"MiB): {rates}")
    return lines


def _num(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _load(avg) -> str:
    return "/".join(f"{x:.1f}" for x in avg) if avg else "?"
