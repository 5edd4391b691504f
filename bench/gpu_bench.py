"""The CUDA backend against cuDNN and against its own unfused program; run by gpu_check.py.

    python bench/gpu_bench.py --out DIR                # on a GPU: backend 'cuda'
    python bench/gpu_bench.py --out DIR --dry-run      # here: backend 'cuda-sim', tiny shapes

Cases: `lstm1`, `lstm2`, `gru1` (bench/run.py's, `nn.LSTM` / `nn.GRU` peers with the same
weights) at bench's shapes (T=100, N=64, I=H=512) and at N=4. Per case: the fused program,
the unfused one (`fuse=False`), PyTorch on the GPU with strict fp32 (TF32 off for matmul and
cuDNN) and with PyTorch's defaults; forward (`is_train=False`, `torch.no_grad()`) and
forward+backward, the median of `--repeats` runs after a warm-up; symrnn's times include the
copies its engine protocol makes (arguments up, outputs and gradients down). Outputs are
checked against strict PyTorch once per case. Writes DIR/bench.json and DIR/bench.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from peers import TorchRNN, torch_or_none

import symrnn as sym

CASES = {"lstm1": ("lstm", 1), "lstm2": ("lstm", 2), "gru1": ("gru", 1)}
FULL = {"T": 100, "N": 64, "I": 512, "H": 512}
TINY = {"T": 3, "N": 4, "I": 8, "H": 8}


def shapes(dry_run: bool) -> list:
    """bench's shapes and the same at N=4 (tiny shapes for the dry run)."""
    base = TINY if dry_run else FULL
    return [dict(base), dict(base, N=4)] if base["N"] != 4 else [dict(base), dict(base, N=2)]


def timed(fn, repeats: int, sync=lambda: None) -> float:
    """Median ms of `repeats` runs of `fn` after one warm-up."""
    fn()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def bind(typ: str, layers: int, cfg: dict, backend: str, fuse: bool):
    rnn = sym.RNNFactory(num_hidden=[cfg["H"]] * layers, data_dim=cfg["I"], typ=typ,
                         name=typ)
    out = rnn.step(sym.Variable("data"), seq_len=cfg["T"], ret_typ="out")[-1]
    return out.simple_bind(backend=backend, fuse=fuse, dtype="float32",
                           data=(cfg["T"], cfg["N"], cfg["I"]))


def symrnn_runners(ex, args: dict, grad: np.ndarray) -> dict:
    ex.copy_params_from(args)
    return {"fwd": lambda: ex.forward(is_train=False),
            "fwdbwd": lambda: (ex.forward(is_train=True, seed=1), ex.backward([grad]))}


def torch_runners(torch, typ, layers, cfg, args, grad, device: str, strict: bool) -> tuple:
    """(runners, output) of the PyTorch peer on `device`, TF32 off when `strict`."""
    if device == "cuda":
        set_precision(torch, strict)
    peer = TorchRNN(torch, typ, layers, cfg["I"], cfg["H"], args, typ, args["data"], grad)
    peer.module.to(device)
    for name in ("x", "h0", "c0", "grad"):
        if hasattr(peer, name):
            setattr(peer, name, getattr(peer, name).detach().to(device)
                    .requires_grad_(name != "grad"))
    peer._leaves = [peer.x, peer.h0, *peer.module.parameters()] + (
        [peer.c0] if typ == "lstm" else [])
    output = peer.fwd().detach().cpu().numpy()
    return {"fwd": peer.fwd, "fwdbwd": peer.fwdbwd}, output


_DEFAULTS: dict = {}


def precision_knobs(torch) -> dict:
    """{name: (object, attribute)} of PyTorch's fp32 precision settings for matmul and cuDNN:
    the `fp32_precision` API where it exists ('ieee' or 'tf32'), else `allow_tf32`."""
    cuda, cudnn = torch.backends.cuda, torch.backends.cudnn
    if hasattr(cuda.matmul, "fp32_precision") and hasattr(cudnn, "rnn"):
        return {"matmul": (cuda.matmul, "fp32_precision"), "cudnn": (cudnn, "fp32_precision"),
                "cudnn.rnn": (cudnn.rnn, "fp32_precision")}
    return {"matmul": (cuda.matmul, "allow_tf32"), "cudnn": (cudnn, "allow_tf32")}


def set_precision(torch, strict: bool) -> dict:
    """TF32 off everywhere (`strict`), or PyTorch's own settings as found at the first call;
    returns what is now set."""
    knobs = precision_knobs(torch)
    if not _DEFAULTS:
        _DEFAULTS.update({k: getattr(o, a) for k, (o, a) in knobs.items()})
    for k, (obj, attr) in knobs.items():
        off = "ieee" if attr == "fp32_precision" else False
        setattr(obj, attr, off if strict else _DEFAULTS[k])
    return {k: getattr(o, a) for k, (o, a) in knobs.items()}


def run_case(name: str, cfg: dict, backend: str, torch, repeats: int) -> dict:
    typ, layers = CASES[name]
    fused = bind(typ, layers, cfg, backend, True)
    rng = np.random.default_rng(0)
    bound = 1.0 / np.sqrt(cfg["H"])
    args = {n: (rng.standard_normal(v.shape) if n == "data" else
                rng.uniform(-bound, bound, v.shape)).astype(np.float32)
            for n, v in fused.arg_dict.items()}
    args.update({n: np.zeros_like(v) for n, v in args.items() if n.endswith(("init_h", "init_c"))})
    grad = rng.standard_normal((cfg["T"], cfg["N"], cfg["H"])).astype(np.float32)
    runners = {"fused": symrnn_runners(fused, args, grad),
               "unfused": symrnn_runners(bind(typ, layers, cfg, backend, False), args, grad)}
    ours = fused.forward(is_train=False)[0]
    result = {"case": name, **cfg, "backend": backend, "ms": {}, "max_abs_diff": {}}
    device = "cuda" if backend == "cuda" else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if torch is not None:
        for peer, strict in (("torch_strict_fp32", True), ("torch_default", False)):
            runners[peer], out = torch_runners(torch, typ, layers, cfg, args, grad, device, strict)
            result["max_abs_diff"][peer] = float(np.max(np.abs(out.reshape(ours.shape) - ours)))
            if device == "cuda":
                result.setdefault("precision", {})[peer] = set_precision(torch, strict)
    for impl, fns in runners.items():
        result["ms"][impl] = {k: timed(fn, repeats, sync) for k, fn in fns.items()}
    ms = result["ms"]
    result["ratios"] = {f"{impl}/fused {k}": ms[impl][k] / ms["fused"][k]
                        for impl in ms if impl != "fused" for k in ms[impl]}
    return result


def table(results: list) -> str:
    lines = ["| case | T | N | I=H | impl | fwd ms | fwd+bwd ms | max abs diff |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['case']} | {r.get('T')} | {r.get('N')} | | FAILED: "
                         f"{r['error'][:80]} | | | |")
            continue
        for impl, t in r["ms"].items():
            diff = r["max_abs_diff"].get(impl, "")
            lines.append(f"| {r['case']} | {r['T']} | {r['N']} | {r['H']} | {impl} | "
                         f"{t['fwd']:.3f} | {t['fwdbwd']:.3f} | {diff} |")
    return "\n".join(lines) + "\n"


def write(out: str, backend: str, results: list) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "bench.json"), "w") as f:
        json.dump({"backend": backend, "results": results}, f, indent=1)
    with open(os.path.join(out, "bench.md"), "w") as f:
        f.write(table(results))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--dry-run", action="store_true", help="backend cuda-sim, tiny shapes")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--repeats", type=int, default=None)
    a = p.parse_args(argv)
    backend = "cuda-sim" if a.dry_run else "cuda"
    repeats = a.repeats or (1 if a.dry_run else 5)
    torch = torch_or_none()
    if torch is not None and backend == "cuda" and not torch.cuda.is_available():
        print("PyTorch sees no GPU: the cuDNN peers are left out", flush=True)
        torch = None
    results = []
    for cfg in shapes(a.dry_run):
        for name in a.cases.split(","):
            try:
                results.append(run_case(name, cfg, backend, torch, repeats))
            except Exception as e:  # noqa: BLE001  (one failing case must not lose the rest)
                results.append({"case": name, **cfg, "error": f"{type(e).__name__}: {e}"})
            print("\n".join(table(results[-1:]).splitlines()[2:]), flush=True)
            write(a.out, backend, results)  # after every case: a timeout keeps what was done
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
