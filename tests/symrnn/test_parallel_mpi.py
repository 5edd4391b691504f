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


def test_symrnn_train_two_ranks_killed_and_resumed_match_one_process(tmp_path):
    import json

    import numpy as np

    rng = np.random.default_rng(0)
    text = tmp_path / "corpus.txt"
    text.write_text("".join(rng.choice(list("abcdefgh \n"), 3000)))
    flags = ["-m", "symrnn", "train", "--text", str(text), "--hidden", "16", "--embed", "8",
             "-T", "8", "-N", "4", "--steps", "12", "--valid-every", "4", "--valid-windows",
             "3", "--checkpoint-every", "4", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": ROOT}

    def run(ranks, name, *extra, kill_at=None):
        argv = ([sys.executable] if ranks == 1 else ["mpiexec", "-n", str(ranks),
                                                     sys.executable]) + flags
        argv += ["--checkpoint", str(tmp_path / f"{name}.zip"),
                 "--history", str(tmp_path / f"{name}.json"), *extra]
        more = {"SYMRNN_TRAIN_KILL_AT": str(kill_at)} if kill_at else {}
        return subprocess.run(argv, env={**env, **more}, capture_output=True, text=True,
                              timeout=BOUND, check=False)

    assert run(1, "one").returncode == 0
    assert run(2, "two", kill_at=6).returncode != 0
    resumed = run(2, "two", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "over 2 rank(s); step 4 of 12" in resumed.stdout
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose([v["valid_loss"] for v in two["valid"]],
                               [v["valid_loss"] for v in one["valid"]], rtol=1e-5)
