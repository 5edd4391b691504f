"""`symrnn bench`: the CPU benchmark (bench/run.py of a checkout of the repository)."""
from __future__ import annotations

import argparse
import os
import sys

from runtime.errors import ConfigError


def configure_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny shapes: checks that all runs")
    p.add_argument("--out", metavar="FILE.json", help="results path (the .md goes beside it)")
    p.add_argument("--cases", help="comma-separated cases (bench/run.py --help lists them)")


def bench_script() -> str | None:
    """bench/run.py of the checkout this package runs from (or of the working folder)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for root in (here, os.getcwd()):
        path = os.path.join(root, "bench", "run.py")
        if os.path.isfile(path):
            return path
    return None


def run_bench(args) -> int:
    import subprocess

    script = bench_script()
    if script is None:
        raise ConfigError("bench: bench/run.py was not found next to the symrnn package or in "
                          "the working folder; the benchmark ships with the source repository, "
                          "not the installed package: run it from a checkout")
    argv = [sys.executable, script] + (["--quick"] if args.quick else [])
    argv += [a for k in ("out", "cases") if getattr(args, k)
             for a in (f"--{k}", getattr(args, k))]
    sys.stdout.flush()
    return subprocess.run(argv, check=False).returncode


# ---- the table and the entry point -----------------------------------------------------------
