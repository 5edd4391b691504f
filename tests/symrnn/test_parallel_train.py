"""`symrnn train` in one process: a run killed (SIGKILL) after a checkpoint and resumed
reproduces the uninterrupted run's loss curve; checkpoints are artifacts; errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import runtime
from symrnn.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ["--hidden", "16", "--embed", "8", "-T", "8", "-N", "4", "--steps", "12",
         "--valid-every", "4", "--valid-windows", "3", "--checkpoint-every", "4",
         "--no-progress", "--zoneout", "0.2"]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="module")
def text(tmp):
    rng = np.random.default_rng(0)
    path = tmp / "corpus.txt"
    path.write_text("".join(rng.choice(list("abcdefgh \n"), 3000)))
    return str(path)


@pytest.fixture(scope="module")
def whole(text, tmp):
    """The uninterrupted run (with a plot where matplotlib is installed)."""
    plot = ["--plot", str(tmp / "loss.png")] if _has("matplotlib") else []
    run = train(text, tmp, "whole", *plot)
    assert run.returncode == 0, run.stderr
    return tmp


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def train(text, tmp_path, name, *extra, kill_at=None):
    env = {**os.environ, "PYTHONPATH": ROOT}
    if kill_at:
        env["SYMRNN_TRAIN_KILL_AT"] = str(kill_at)
    argv = [sys.executable, "-m", "symrnn", "train", "--text", text, *FLAGS,
            "--checkpoint", str(tmp_path / f"{name}.zip"),
            "--history", str(tmp_path / f"{name}.json"), *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_resume_after_a_kill_reproduces_the_loss_curve(text, whole):
    tmp_path = whole
    killed = train(text, tmp_path, "cut", kill_at=6)
    assert killed.returncode == -9 and not (tmp_path / "cut.json").exists()
    resumed = train(text, tmp_path, "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "step 4 of 12" in resumed.stdout  # from the checkpoint at step 4, not step 6
    want = json.loads((tmp_path / "whole.json").read_text())
    got = json.loads((tmp_path / "cut.json").read_text())
    assert len(got["losses"]) == 12
    np.testing.assert_array_equal(got["losses"], want["losses"])
    assert got["valid"] == want["valid"]


def test_a_checkpoint_is_an_artifact(whole):
    ex = runtime.load(str(whole / "whole.zip"))
    assert "lm_decoder_weight" in ex.arg_dict
    assert not [p for p in os.listdir(whole) if ".tmp" in p]  # no temporary left


def test_resume_refuses_a_different_run(text, whole, capsys):
    ck = str(whole / "whole.zip")
    assert main(["train", "--text", text, *FLAGS[2:], "--hidden", "32", "--checkpoint", ck,
                 "--resume"]) == 2  # a user error
    assert "--hidden was [16] in the checkpointed run, given [32]" in capsys.readouterr().err


def test_resume_needs_a_checkpoint(text, capsys):
    assert main(["train", "--text", text, "--resume"]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_too_little_text_is_refused(tmp_path, capsys):
    path = tmp_path / "tiny.txt"
    path.write_text("abc" * 20)
    assert main(["train", "--text", str(path), "-T", "8", "-N", "4"]) == 2
    assert "held-out text has 6 characters" in capsys.readouterr().err


def test_plot(whole):
    pytest.importorskip("matplotlib")
    assert (whole / "loss.png").stat().st_size > 1000
