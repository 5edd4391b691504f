"""Everything ../shared/GPU.md asks of a GPU machine, in one call (bench/gpu_check.sh).

    bench/gpu_check.sh [--out DIR]      # on a machine with an NVIDIA GPU, from the repo root
    bench/gpu_check.sh --dry-run        # here: the same stages on cuda-sim, PyCUDA not built

Stages, each in a subprocess with a time limit, each run whatever happened to the one
before, each recorded as ok / FAILED (what) / skipped in DIR/status.json and DIR/summary.md:

1. `environment`: device name, driver and CUDA versions (nvidia-smi, nvcc, PyTorch) into
   DIR/environment.json.
2. `pycuda`: PyCUDA built from the wheels and source of `.gpu-wheels/` (copied there from
   $SYMRNN_GPU_WHEELS, `../shared/gpu-wheels/` or `shared/gpu-wheels/`) into `.gpu-site/`, building
   in `.gpu-build/` (all three ignored by git); reused when `.gpu-site` imports already.
   `configure.py --cuda-root` from nvcc's location, the driver's library folder from
   ldconfig; if the build fails it is retried without cuRAND. Log: DIR/pycuda_build.log.
3. `tests`: `pytest -m gpu` with `.gpu-site` on the path. Log: DIR/gpu_tests.log.
4. `bench`: bench/gpu_bench.py (fused vs unfused vs cuDNN strict fp32 and default, at
   bench's shapes and at N=4). DIR/bench.json, DIR/bench.md.

The default DIR is $OUT when set (the device tool's output folder), else
bench/results/gpu-<UTC time>. Every stage together takes at most TOTAL seconds (under 8
minutes): a stage gets what is left, less what the later stages need at least (FLOOR), and at
most CAP, so a reused PyCUDA build leaves more time to the tests and the bench.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELS, SITE, BUILD = (os.path.join(ROOT, d) for d in (".gpu-wheels", ".gpu-site", ".gpu-build"))
WHEEL_SOURCES = tuple(p for p in (os.environ.get("SYMRNN_GPU_WHEELS"),
                                  os.path.join(ROOT, "..", "shared", "gpu-wheels"),
                                  os.path.join(ROOT, "shared", "gpu-wheels")) if p)
TOTAL = 470  # seconds for every stage together: under 8 minutes
# Seconds per stage: at most CAP; what is left of TOTAL, less the FLOORs of later stages.
CAP = {"environment": 30, "pycuda": 300, "tests": 200, "bench": 240}
FLOOR = {"environment": 10, "pycuda": 60, "tests": 60, "bench": 90}
TAIL = 3000  # characters of a log kept in summary.md


def run(cmd: list, log: str, timeout: float, env: dict | None = None, cwd: str = ROOT) -> int:
    """Runs `cmd`, appending its output to `log`; the exit status (124 on timeout)."""
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        try:
            return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                  timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[timed out after {timeout:.0f} s]\n")
            return 124
        except OSError as e:
            f.write(f"\n[could not run: {e}]\n")
            return 127


def tail(path: str, n: int = TAIL) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def gpu_env() -> dict:
    """The environment with .gpu-site and the checkout on PYTHONPATH."""
    path = [SITE, ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(":") if p]
    return dict(os.environ, PYTHONPATH=":".join(path))


def output(cmd: list) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        return (done.stdout or done.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


# ---- stages --------------------------------------------------------------------------------

def stage_limit(name: str, later: list, elapsed: float) -> float:
    """The seconds stage `name` may take, `elapsed` seconds into the check."""
    left = TOTAL - elapsed - sum(FLOOR[s] for s in later)
    return max(FLOOR[name], min(CAP[name], left))


def stage_environment(out: str, dry_run: bool, limit: float) -> str | None:
    info = {"dry_run": dry_run, "python": sys.version.split()[0],
            "nvidia_smi": output(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                  "--format=csv,noheader"]),
            "nvcc": output(["nvcc", "--version"]).splitlines()[-1:],
            "libcuda": driver_lib_dir()}
    probe = ("import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': "
             "torch.version.cuda, 'cudnn': torch.backends.cudnn.version(), 'device': "
             "torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))")
    info["torch"] = output([sys.executable, "-c", probe])
    with open(os.path.join(out, "environment.json"), "w") as f:
        json.dump(info, f, indent=1)
    return None


def driver_lib_dir() -> str | None:
    """The folder of the driver's libcuda.so.1, from ldconfig."""
    for line in output(["ldconfig", "-p"]).splitlines():
        if "libcuda.so.1 " in line and "=>" in line:
            return os.path.dirname(line.split("=>")[-1].strip())
    return None


def find_wheels(copy: bool = True) -> str | None:
    """`.gpu-wheels/` with the PyCUDA source in it, copied there from a shared folder if
    needed (else, without `copy`, that folder); None where there is none."""
    if glob.glob(os.path.join(WHEELS, "pycuda-*.tar.gz")):
        return WHEELS
    for source in WHEEL_SOURCES:
        if glob.glob(os.path.join(source, "pycuda-*.tar.gz")):
            if not copy:
                return source
            shutil.copytree(source, WHEELS, dirs_exist_ok=True)
            return WHEELS
    return None


def find_cuda_root() -> str:
    """The CUDA toolkit folder with include/cuda.h: above nvcc, CUDA_HOME, /usr/local/cuda
    (nvcc may be a wrapper script elsewhere)."""
    nvcc = shutil.which("nvcc")
    candidates = [os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None,
                  os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
                  *sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]
    for root in filter(None, candidates):
        if os.path.isfile(os.path.join(root, "include", "cuda.h")):
            return root
    return "/usr/local/cuda"


def build_commands(wheels: str, cuda_root: str, lib_dir: str | None, curand: bool) -> list:
    """The commands that build PyCUDA into .gpu-site (GPU.md's recipe)."""
    source = max(glob.glob(os.path.join(wheels, "pycuda-*.tar.gz")))
    folder = os.path.join(BUILD, os.path.basename(source)[:-len(".tar.gz")])
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    configure = [sys.executable, "configure.py", f"--cuda-root={cuda_root}"]
    if lib_dir:
        configure.append(f"--cudadrv-lib-dir={lib_dir}")
    if not curand:
        configure.append("--no-cuda-enable-curand")
    return [(pip + ["--target", SITE, *sorted(glob.glob(os.path.join(wheels, "*.whl")))], ROOT),
            (["tar", "xzf", source, "-C", BUILD], ROOT),
            (configure, folder),
            (pip + ["--no-build-isolation", "--target", SITE, "."], folder)]


def pycuda_imports() -> bool:
    probe = "import pycuda, pycuda.driver"
    return subprocess.run([sys.executable, "-c", probe], env=gpu_env(), capture_output=True,
                          timeout=60, check=False).returncode == 0


def stage_pycuda(out: str, dry_run: bool, limit: float) -> str | None:
    log = os.path.join(out, "pycuda_build.log")
    wheels = find_wheels(copy=not dry_run)
    if wheels is None:
        return f"no PyCUDA source in .gpu-wheels or {' or '.join(WHEEL_SOURCES)}"
    cuda_root = find_cuda_root()
    if dry_run:
        commands = build_commands(wheels, cuda_root, driver_lib_dir(), True)
        with open(log, "w") as f:
            f.writelines(f"(dry run, not run) cd {cwd} && {' '.join(cmd)}\n"
                         for cmd, cwd in commands)
        return None
    if os.path.isdir(SITE) and pycuda_imports():
        with open(log, "a") as f:
            f.write(".gpu-site imports pycuda.driver: reused\n")
        return None
    os.makedirs(BUILD, exist_ok=True)
    end = time.monotonic() + limit
    for curand in (True, False):
        commands = build_commands(wheels, cuda_root, driver_lib_dir(), curand)
        if all(run(cmd, log, max(1.0, end - time.monotonic()), gpu_env(), cwd) == 0
               for cmd, cwd in commands):
            return None if pycuda_imports() else "PyCUDA built but pycuda.driver does not import"
    return "the PyCUDA build failed (see pycuda_build.log)"


def stage_tests(out: str, dry_run: bool, limit: float) -> str | None:
    log = os.path.join(out, "gpu_tests.log")
    files = ["tests/runtime/test_cuda_gpu.py"] if dry_run else ["tests"]
    status = run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-rs", "-p",
                  "no:cacheprovider", *files], log, limit, gpu_env())
    last = [ln for ln in tail(log).splitlines() if ln.strip()][-1:]
    summary = last[0] if last else "(no output)"
    with open(os.path.join(out, "tests_summary.txt"), "w") as f:
        f.write(summary + "\n")
    if status not in (0, 5):  # 5: nothing collected
        return f"pytest -m gpu exited {status}: {summary}"
    if not dry_run and (" passed" not in summary or "skipped" in summary):
        return f"not every gpu test ran and passed: {summary}"
    return None


def stage_bench(out: str, dry_run: bool, limit: float) -> str | None:
    log = os.path.join(out, "bench.log")
    cmd = [sys.executable, os.path.join(ROOT, "bench", "gpu_bench.py"), "--out", out]
    status = run(cmd + (["--dry-run"] if dry_run else []), log, limit, gpu_env())
    return None if status == 0 else f"gpu_bench.py exited {status} (see bench.log)"


STAGES = {"environment": stage_environment, "pycuda": stage_pycuda, "tests": stage_tests,
          "bench": stage_bench}


def write_summary(out: str, status: dict) -> None:
    lines = ["# GPU check", ""]
    for name, s in status.items():
        lines.append(f"- {name}: {s['result']} ({s['seconds']:.1f} s)")
    for title, file in (("Environment", "environment.json"), ("Tests", "tests_summary.txt"),
                        ("Bench", "bench.md"), ("PyCUDA build log (tail)", "pycuda_build.log")):
        lines += ["", f"## {title}", "", "```", tail(os.path.join(out, file)).rstrip(), "```"]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out, "status.json"), "w") as f:
        json.dump(status, f, indent=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT") or None)
    p.add_argument("--dry-run", action="store_true",
                   help="no GPU: cuda-sim for the bench, PyCUDA's build only printed")
    p.add_argument("--stages", default=",".join(STAGES))
    a = p.parse_args(argv)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M")
    out = a.out or os.path.join(ROOT, "bench", "results", f"gpu-{stamp}")
    os.makedirs(out, exist_ok=True)
    status, began, names = {}, time.perf_counter(), a.stages.split(",")
    for k, name in enumerate(names):
        start = time.perf_counter()
        limit = stage_limit(name, names[k + 1:], start - began)
        try:
            error = STAGES[name](out, a.dry_run, limit)
        except Exception as e:  # noqa: BLE001  (a broken stage must not stop the next)
            error = f"{type(e).__name__}: {e}"
        status[name] = {"result": "ok" if error is None else f"FAILED: {error}",
                        "seconds": time.perf_counter() - start, "limit_s": limit}
        print(f"gpu_check: {name}: {status[name]['result']}", flush=True)
        write_summary(out, status)
    print(f"gpu_check: everything is in {out}")
    return 0 if all(s["result"] == "ok" for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
