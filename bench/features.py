"""Issue 12's features on a 1-layer LSTM (T, N, I, H of the run), each against its closest
PyTorch CPU peer (bench/feature_peers.py) and against the plain fused LSTM of the same shape,
for run.py (`--cases features`, or some of FEATURES by name; `-name` leaves one out).

- `varlen`: `step(..., sequence_length=s)`, random unsorted lengths in [1, T]; peer
  `nn.LSTM` over `pack_padded_sequence(enforce_sorted=False)`;
- `varlen_full`: the same program and peer, every length T;
- `proj`: `proj_size=H/2`; peer `nn.LSTM(proj_size=H/2)`;
- `cell_clip`: `cell_clip=1`; peer a step loop with `torch.clamp` on `c`;
- `layer_norm`: `layer_norm=True`; peer a step loop with `nn.LayerNorm` (fastrnns' form);
- `weight_drop`: `weight_drop=0.5`; peer AWD-LSTM's `F.dropout` on `weight_hh_l0`, then
  `nn.LSTM`.

Each case: the three programs (ours, plain, peer) get the same weights (PyTorch's
initialisation; layer-norm gains 1, biases 0), zero initial states and the same data; the
inference outputs are checked against the peer once; then forward (`is_train=False`,
`no_grad`) and forward+backward (gradients for every argument) are timed interleaved, rounds
of (untimed call, timed call) for ours and the plain program, the order reversed every
round (bench/infer.py), then the peer in a block of its own (a warm-up, then back-to-back
runs: PyTorch's first call after numpy waits for its threads to wake; bench/run.py).
Each call's wall time and process CPU time (`time.process_time`: the work of all the
process's threads, which the load of a shared machine inflates far less); the table shows
wall minima and the ratios of both minima, the goals use the CPU-time minima; medians and
samples are in the JSON. The goals (issue 12):
a varlen batch costs no more than the full-length batch; cell clipping, layer norm and
DropConnect at most 1.3x the plain cell. DropConnect's forward is inference (no mask).
"""
from __future__ import annotations

import statistics
import time

import numpy as np
from breakdown import SymRunner
from feature_peers import GateLoop, PackedLSTM, WeightDropLSTM
from machine import loadavg

import symrnn as sym

FEATURES = ("varlen", "varlen_full", "proj", "cell_clip", "layer_norm", "weight_drop")
COST_GOALS = {"varlen": 1.0, "varlen_full": 1.0, "cell_clip": 1.3, "layer_norm": 1.3,
              "weight_drop": 1.3}  # ours over the plain fused LSTM, at most
CELL_CLIP, WEIGHT_DROP, NAME = 1.0, 0.5, "lstm"
CHECK_ATOL = 1e-3
PEERS = {"varlen": "nn.LSTM over pack_padded_sequence(enforce_sorted=False)",
         "varlen_full": "nn.LSTM over pack_padded_sequence, every length T",
         "proj": "nn.LSTM(proj_size=H/2)", "cell_clip": "step loop, torch.clamp on c",
         "layer_norm": "step loop, nn.LayerNorm (fastrnns form)",
         "weight_drop": "AWD-LSTM WeightDrop: F.dropout(weight_hh) + nn.LSTM"}


def select(names: list) -> list:
    """The feature cases of a `--cases` list: `features` is all of them, a feature name
    adds it, `-name` removes it (`features,-layer_norm`)."""
    chosen = []
    for n in names:
        for f in FEATURES if n == "features" else [n] if n in FEATURES else []:
            if f not in chosen:
                chosen.append(f)
    return [f for f in chosen if f"-{f}" not in names]


def factory_options(feature: str, H: int) -> dict:
    return {"proj": {"proj_size": max(1, H // 2)}, "cell_clip": {"cell_clip": CELL_CLIP},
            "layer_norm": {"layer_norm": True},
            "weight_drop": {"weight_drop": WEIGHT_DROP}}.get(feature, {})


def bind(feature: str | None, cfg):
    """The fused CPU executor of `feature`'s LSTM (None: the plain one), output `(T, N, H')`."""
    rnn = sym.RNNFactory([cfg.H], data_dim=cfg.I, typ="lstm", name=NAME,
                         **factory_options(feature or "", cfg.H))
    varlen = feature in ("varlen", "varlen_full")
    lengths = sym.Variable("lengths", dtype="int32") if varlen else None
    out = rnn.step(sym.Variable("data"), seq_len=cfg.T, ret_typ="out",
                   sequence_length=lengths)[-1]
    shapes = {"data": (cfg.T, cfg.N, cfg.I)} | ({"lengths": (cfg.N,)} if varlen else {})
    return out.simple_bind(backend="cpu", optimize=True, **shapes)


def arguments(ex, plain: dict, lengths, rng, H: int) -> dict:
    """`plain`'s arrays where the shapes agree; layer-norm gains 1 and biases 0; anything
    else (a projection, its narrower h2h weight and state) PyTorch's U(-1/sqrt(H), 1/sqrt(H)),
    states zero."""
    out, bound = {}, 1.0 / np.sqrt(H)
    for name, arr in ex.arg_dict.items():
        if name == "lengths":
            out[name] = np.asarray(lengths, np.int32)
        elif name in plain and plain[name].shape == arr.shape:
            out[name] = plain[name]
        elif name.endswith(("_init_h", "_init_c")):
            out[name] = np.zeros(arr.shape, np.float32)
        elif name.endswith("gamma"):
            out[name] = np.ones(arr.shape, np.float32)
        elif name.endswith("beta"):
            out[name] = np.zeros(arr.shape, np.float32)
        else:
            out[name] = rng.uniform(-bound, bound, arr.shape).astype(np.float32)
    return out


def plain_arguments(ex, cfg, rng) -> dict:
    bound = 1.0 / np.sqrt(cfg.H)
    return {n: (rng.standard_normal(a.shape, dtype=np.float32) if n == "data"
                else np.zeros(a.shape, np.float32) if n.endswith(("_init_h", "_init_c"))
                else rng.uniform(-bound, bound, a.shape).astype(np.float32))
            for n, a in ex.arg_dict.items()}


def peer_of(torch, feature: str, args: dict, grad, cfg):
    data = args["data"]
    if feature in ("varlen", "varlen_full"):
        return PackedLSTM(torch, args, NAME, data, grad, lengths=args["lengths"])
    if feature == "proj":
        return PackedLSTM(torch, args, NAME, data, grad, proj_size=max(1, cfg.H // 2))
    if feature == "weight_drop":
        return WeightDropLSTM(torch, args, NAME, data, grad, WEIGHT_DROP)
    return GateLoop(torch, args, NAME, data, grad, clip=CELL_CLIP if feature == "cell_clip"
                    else None, layer_norm=feature == "layer_norm")


def case_lengths(feature: str, cfg, rng) -> np.ndarray | None:
    if feature == "varlen":
        return rng.integers(1, cfg.T + 1, cfg.N).astype(np.int32)  # PyTorch refuses 0
    return np.full(cfg.N, cfg.T, np.int32) if feature == "varlen_full" else None


def run_case(feature: str, plain: SymRunner, plain_args: dict, cfg, torch, rng, log) -> dict:
    res = {"case": feature, "T": cfg.T, "N": cfg.N, "I": cfg.I, "H": cfg.H, "layers": 1,
           "options": factory_options(feature, cfg.H), "peer": PEERS[feature],
           "load_before": loadavg()}
    lengths = case_lengths(feature, cfg, rng)
    if lengths is not None:
        res["lengths"] = lengths.tolist()
        res["valid_fraction"] = float(lengths.sum()) / (cfg.T * cfg.N)
    try:
        ex = bind(feature, cfg)
    except (TypeError, sym.SymRNNError) as e:  # layer_norm before issue 12 item 4 is merged
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"  [{feature}] not built: {res['error']}")
        return res
    args = arguments(ex, plain_args, lengths, rng, cfg.H)
    ex.copy_params_from(args)
    grad = rng.standard_normal(ex.engine.out_specs[0][1], dtype=np.float32)
    runners = {"ours": SymRunner(ex, grad), "plain": plain}
    if torch is not None:
        runners["peer"] = peer_of(torch, feature, args, grad, cfg)
        diff = float(np.max(np.abs(runners["ours"].output() - runners["peer"].output())))
        res["checks"] = {"ours_vs_peer_output_max_abs_diff": diff,
                         "ours_vs_peer_output_ok": bool(diff < CHECK_ATOL)}
    for mode in ("fwd", "fwdbwd"):
        res[mode] = interleaved({k: getattr(runners[k], mode) for k in ("ours", "plain")},
                                cfg.repeats)
        if "peer" in runners:
            res[mode]["peer"] = blocked(getattr(runners["peer"], mode), cfg.repeats)
        log(f"  [{feature}] {mode}: " + ", ".join(
            f"{k} min {v['min_ms']:.1f} ms" for k, v in res[mode].items()))
    res["ratios"] = {mode: case_ratios(res[mode]) for mode in ("fwd", "fwdbwd")}
    res["load_after"] = loadavg()
    return res


def timed(fn) -> tuple:
    """(wall ms, process CPU ms) of one call. The CPU time is the work of every thread of
    the process: on a machine shared with other jobs it grows far less than the wall time
    (at one thread it is the call's own work)."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w) * 1e3, (time.process_time() - c) * 1e3


def summary(samples: list) -> dict:
    wall, cpu = [s[0] for s in samples], [s[1] for s in samples]
    return {"median_ms": statistics.median(wall), "min_ms": min(wall),
            "cpu_median_ms": statistics.median(cpu), "cpu_min_ms": min(cpu),
            "samples_ms": [round(x, 4) for x in wall],
            "cpu_samples_ms": [round(x, 4) for x in cpu]}


def interleaved(runners: dict, rounds: int) -> dict:
    """Rounds of (untimed call, timed call) per runner, the order reversed every round
    (bench/infer.py's `interleaved`, with the CPU time beside the wall time)."""
    names, samples = list(runners), {n: [] for n in runners}
    for r in range(rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            runners[n]()
            samples[n].append(timed(runners[n]))
    return {n: summary(s) for n, s in samples.items()}


def blocked(fn, repeats: int) -> dict:
    """A warm-up call, then `repeats` timed calls back to back (bench/run.py's `blocked`,
    for one implementation: PyTorch's threads stay awake between its own calls)."""
    fn()
    return summary([timed(fn) for _ in range(repeats)])


def case_ratios(times: dict) -> dict:
    out = {}
    for stat in ("min_ms", "median_ms", "cpu_min_ms"):
        s = stat[:-3]
        ours = times["ours"][stat]
        out[f"ours_over_plain_{s}"] = ours / times["plain"][stat]
        if "peer" in times:
            out[f"ours_over_peer_{s}"] = ours / times["peer"][stat]
    return out


def run_features(cfg, torch, rng, log) -> dict:
    """{'plain': ..., 'cases': [...]}: every feature of `cfg.feature_list`."""
    log(f"[features] 1-layer LSTM T={cfg.T} N={cfg.N} I={cfg.I} H={cfg.H}: "
        f"{', '.join(cfg.feature_list)}")
    ex = bind(None, cfg)
    plain_args = plain_arguments(ex, cfg, rng)
    ex.copy_params_from(plain_args)
    plain = SymRunner(ex, rng.standard_normal((cfg.T, cfg.N, cfg.H), dtype=np.float32))
    out = {"load_before": loadavg(), "layers": 1, "cases": []}
    for feature in cfg.feature_list:
        out["cases"].append(run_case(feature, plain, plain_args, cfg, torch, rng, log))
    out["load_after"] = loadavg()
    return out


def feature_goals(features: dict | None) -> list:
    """Issue 12's cost goals (ours over the plain fused LSTM, from the minima of the CPU
    time, which the load of a shared machine inflates least), as report.evaluate_goals."""
    goals = []
    for c in (features or {}).get("cases", []):
        limit = COST_GOALS.get(c["case"])
        if limit is None:
            continue
        for mode in ("fwd", "fwdbwd"):
            v = c.get("ratios", {}).get(mode, {}).get("ours_over_plain_cpu_min")
            goals.append({"goal": f"issue 12: {c['case']} {mode} over the plain fused LSTM "
                                  f"<= {limit:g} (CPU-time minima)", "value": v,
                          "threshold": limit,
                          "pass": None if v is None else bool(v <= limit),
                          "roof_bound": None})
    return goals


def feature_lines(features: dict) -> list:
    head = ("| feature | mode | ours ms | plain ms | peer ms | ours/plain | ours/plain CPU "
            "| ours/peer | ours/peer CPU | peer | check |")
    lines = [head, "|" + "---|" * 11]
    for c in features["cases"]:
        if "error" in c:
            lines.append(f"| {c['case']} | - | - | - | - | - | - | - | - | {c['peer']} | "
                         f"not run: {c['error'][:80]} |")
            continue
        check = c.get("checks", {})
        ok = ("-" if not check else
              f"{'ok' if check['ours_vs_peer_output_ok'] else 'FAIL'} "
              f"({check['ours_vs_peer_output_max_abs_diff']:.1e})")
        for mode, label in (("fwd", "fwd"), ("fwdbwd", "fwd+bwd")):
            t, r = c[mode], c["ratios"][mode]
            peer = t.get("peer", {}).get("min_ms")
            lines.append(
                f"| {c['case']} | {label} | {t['ours']['min_ms']:.1f} "
                f"| {t['plain']['min_ms']:.1f} | {'-' if peer is None else f'{peer:.1f}'} "
                f"| {r['ours_over_plain_min']:.2f} | {r['ours_over_plain_cpu_min']:.2f} "
                f"| {_fmt(r.get('ours_over_peer_min'))} "
                f"| {_fmt(r.get('ours_over_peer_cpu_min'))} | {c['peer']} | {ok} |")
    return lines


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"
