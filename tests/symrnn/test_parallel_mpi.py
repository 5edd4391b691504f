"""DataParallel under `mpiexec -n 2` (mpi_parallel.py beside this file, one case a run).

Skipped, with the reason, where mpiexec or mpi4py is missing (`pip install 'symrnn[mpi]'`);
with SYMRNN_REQUIRE_MPI=1 (CI sets it) a missing MPI fails instead.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_parallel.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(SCRIPT)))
BOUND = 180  # seconds: a failed rank must end the job well within this


def _missing() -> str | None:
    if shutil.which("mpiexec") is None:
        return "mpiexec not found (pip install mpich)"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py not installed (pip install mpi4py)"
    return None


if _missing():
    if os.environ.get("SYMRNN_REQUIRE_MPI", "0") not in ("", "0"):
        pytest.fail(f"SYMRNN_REQUIRE_MPI is set but {_missing()}", pytrace=False)
    pytest.skip(_missing(), allow_module_level=True)


def mpirun(case: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(["mpiexec", "-n", "2", sys.executable, SCRIPT, case], env=env,
                          capture_output=True, text=True, timeout=BOUND, check=False)


def ok_lines(run, case: str) -> list:
    return [line for line in run.stdout.splitlines() if f"OK {case}" in line]


@pytest.mark.parametrize("case", ["train", "mismatch", "batch"])
def test_every_rank_passes(case):
    run = mpirun(case)
    assert run.returncode == 0, run.stdout + run.stderr
    ranks = {line.split()[1] for line in ok_lines(run, case)}
    assert ranks == {"0", "1"}, run.stdout


def test_half_batches_give_the_whole_batch_gradient():
    run = mpirun("grads")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = ok_lines(run, "grads")
    assert sum("train-mode masks" in x for x in lines) == 2
    for typ, zoneout in (("lstm", "0.0"), ("gru", "0.0"), ("lstm", "0.3")):
        for req in ("write", "add"):
            assert sum(f"{typ} zoneout={zoneout} {req} inference" in x for x in lines) == 2


def test_a_rank_that_raises_aborts_every_rank():
    run = mpirun("dies")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "rank 1 fails on purpose" in out and "rank 1 of 2 failed" in out
    assert "rank 0 was not aborted" not in out


def test_a_rank_that_stalls_times_out_the_others():
    run = mpirun("stalls")
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "OK stalls RankFailed" in out and "gradients kept: True" in out
