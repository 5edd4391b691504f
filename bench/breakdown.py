"""Where a fused program's time goes, step kind by step kind (read from the CPU engine)."""
from __future__ import annotations

import statistics
import time
from collections import defaultdict

import numpy as np

from runtime.cpu.blas import one_pool


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _step_label(step, cfg) -> tuple:
    """(kind, label, flops) of a program step, by shape: GEMMs get a role from their operands
    (and their FLOPs; 0 for the rest)."""
    attrs = step.attrs
    if step.kind == "gemm":
        a, b = step.inputs[0], step.inputs[1]
        ta, tb = bool(attrs.get("trans_a")), bool(attrs.get("trans_b"))
        m, k = (a.cols, a.rows) if ta else (a.rows, a.cols)
        n = b.rows if tb else b.cols
        acc = " +=" if attrs.get("accumulate") else ""
        tn = cfg.T * cfg.N
        if k == tn:
            role = "weight gradient over all steps"
        elif m == tn:
            role = "input projection, all steps" if step.phase == "forward" else \
                "data gradient, all steps"
        elif m == cfg.N:
            role = "recurrent, per step" if step.phase == "forward" else \
                "recurrent gradient, per step"
        else:
            role = "other"
        return "gemm", f"gemm {role} ({m}x{k}x{n}{acc})", 2.0 * m * k * n
    if step.kind == "kernel":
        rows = attrs.get("rows", step.outputs[0].rows)
        cols = attrs.get("cols", step.outputs[0].cols)
        return "kernel", f"kernel {attrs.get('kernel')} ({rows}x{cols})", 0.0
    return step.kind, f"{step.kind} {attrs.get('op', '?')}", 0.0


def cpu_engines(ex) -> dict | None:
    """{'fwd': engine, 'fwdbwd': engine}: the executor's CPU engines, the forward-only
    (inference) program's and the training program's where it keeps two (DualEngine)."""
    eng = ex.engine
    if hasattr(eng, "train") and hasattr(eng, "infer"):
        return {"fwd": eng.infer, "fwdbwd": eng.train}
    if hasattr(eng, "program"):
        return {"fwd": eng, "fwdbwd": eng}
    return None


def program_flops(ex) -> dict:
    """FLOPs of the inference forward and of the training forward and backward, from the
    programs' stats."""
    engines = cpu_engines(ex) or {}
    out = {}
    for mode, eng in engines.items():
        fl = getattr(eng, "program", None) and eng.program.stats.get("flops", {})
        if fl:
            out[mode] = fl.get("forward", 0) + (fl.get("backward", 0) if mode == "fwdbwd" else 0)
    return out


def breakdown(ex, grad: np.ndarray, cfg, runs: int) -> dict:
    """Times every step of the fused program's forward (inference) and forward+backward
    (training) one by one, through the CPU engine's prepared calls; medians over `runs`.
    `loop_ms` is the phase run bare (no per-step timers); `api_ms` the executor call
    (argument checks, head-gradient and gradient copies included)."""
    engines = cpu_engines(ex)
    need = ("_steps", "_phase_calls", "_head_grads")
    if engines is None or not all(hasattr(e, a) for e in engines.values() for a in need):
        return {"error": f"the CPU engine's internals ({', '.join(need)}) changed; "
                         f"breakdown unavailable"}

    def step_list(eng, phase):
        return [s for s in eng._steps if s.phase == phase]

    def run_phase(eng, phase, per_step: bool):
        with one_pool() as threads:  # as CpuEngine._run: OpenBLAS lends its threads
            if hasattr(eng, "_threads"):
                eng._threads[0] = threads
            return run_calls(eng, phase, per_step)

    def run_calls(eng, phase, per_step: bool):
        calls = eng._phase_calls[phase]
        if not per_step:
            return timed(lambda: [c() for c in calls]), None
        labels = [_step_label(step, cfg)[1] for step in step_list(eng, phase)]
        acc = defaultdict(float)
        t_all = time.perf_counter()
        for label, call in zip(labels, calls):
            t0 = time.perf_counter()
            call()
            acc[label] += (time.perf_counter() - t0) * 1e3
        return (time.perf_counter() - t_all) * 1e3, acc

    def load_head_grads(eng):
        for _, dst in eng._head_grads:
            np.copyto(dst, grad, casting="unsafe")

    out = {}
    for mode in ("fwd", "fwdbwd"):
        eng = engines[mode]
        phases = ("forward",) if mode == "fwd" else ("forward", "backward")
        per_label = defaultdict(list)
        loops = defaultdict(list)
        apis = []
        for _ in range(runs):
            # the executor call sets the seed and is_train flag and binds the arguments;
            # the bare and per-step runs below reuse them
            if mode == "fwd":
                apis.append(timed(lambda: ex.forward(is_train=False)))
            else:
                apis.append(timed(lambda: (ex.forward(is_train=True),
                                           ex.backward(out_grads=[grad]))))
            for phase in phases:
                for per_step in (False, True):
                    if phase == "backward":  # a fresh forward, then the head gradients
                        run_phase(eng, "forward", False)
                        load_head_grads(eng)
                    ms, acc = run_phase(eng, phase, per_step)
                    if not per_step:
                        loops[phase].append(ms)
                        continue
                    for label, ms in acc.items():
                        per_label[(phase, label)].append(ms)
        counts, flops = defaultdict(int), defaultdict(float)
        for phase in phases:
            for step in step_list(eng, phase):
                _, label, fl = _step_label(step, cfg)
                counts[(phase, label)] += 1
                flops[(phase, label)] += fl
        rows = []
        for (phase, label), samples in per_label.items():
            ms = statistics.median(samples)
            fl = flops[(phase, label)]
            rows.append({"phase": phase, "step": label, "kind": label.split(" ", 1)[0],
                         "count": counts[(phase, label)], "ms": ms, "flops": fl,
                         "gflops": fl / (ms / 1e3) / 1e9 if fl and ms > 0 else None})
        rows.sort(key=lambda r: -r["ms"])
        by_kind = defaultdict(float)
        for r in rows:
            by_kind[f"{r['phase']} {r['kind']}"] += r["ms"]
        loop_ms = {p: statistics.median(v) for p, v in loops.items()}
        step_sum = sum(r["ms"] for r in rows)
        out[mode] = {
            "api_ms": statistics.median(apis),
            "loop_ms": loop_ms,
            "steps_sum_ms": step_sum,
            "outside_steps_ms": statistics.median(apis) - sum(loop_ms.values()),
            "by_kind_ms": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
            "steps": rows,
        }
        out[mode]["program_steps"] = {p: len(step_list(eng, p)) for p in phases}
    return out


# ---- one case ----------------------------------------------------------------------------------


class SymRunner:
    """An executor as the bench times it: `fwd`, `fwdbwd` (head gradient `grad`), `output`."""

    def __init__(self, ex, grad: np.ndarray):
        self.ex, self.grad = ex, grad

    def fwd(self):
        self.ex.forward(is_train=False)

    def fwdbwd(self):
        self.ex.forward(is_train=True)
        self.ex.backward(out_grads=[self.grad])

    def output(self) -> np.ndarray:
        return np.array(self.ex.forward(is_train=False)[0], copy=True)
