"""What the benchmark records about the machine: CPU, BLAS (threadpoolctl), load."""
from __future__ import annotations

import json
import os
import platform
import sys

import numpy as np
from peers import torch_or_none

REMOVED_MARK = "SYMRNN_BENCH_REMOVED_ENV"  # set by run.py when it re-executes itself


def machine_info() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "cpu_flags_avx512": _has_flag("avx512f"),
        "removed_env": json.loads(os.environ.get(REMOVED_MARK, "{}")),
        "env": {k: v for k, v in os.environ.items()
                if any(s in k for s in ("BLAS", "OMP", "MKL", "SYMRNN", "KMP"))
                and k != REMOVED_MARK},
        "blas_env_kept": "--keep-blas-env" in sys.argv,
        "threadpools": _threadpools(),
    }
    torch = torch_or_none()
    if torch is None:
        info["torch"] = None
    else:
        info["torch"] = {
            "version": torch.__version__,
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
        }
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _has_flag(flag: str) -> bool | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split()
    except OSError:
        pass
    return None


def _threadpools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"error": "threadpoolctl is not installed (pip install threadpoolctl)"}
    keys = ("user_api", "internal_api", "version", "architecture", "num_threads",
            "threading_layer", "prefix", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# ---- timing ------------------------------------------------------------------------------------
