"""`symrnn` user errors found by trying it as a new user: each is the one-line message and exit
status 2, never "internal error"."""

import numpy as np
import pytest

from symrnn.cli import main

STACK = ["--hidden", "4", "-I", "3", "-T", "3", "-N", "2"]


def _error(capsys, argv) -> str:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err
    return err


@pytest.mark.parametrize("seed", ["-1", "1.5", "x"])
@pytest.mark.parametrize("command", ["compare", "export"])
def test_a_seed_must_be_a_non_negative_int(capsys, tmp_path, command, seed):
    extra = [str(tmp_path / "m.zip")] if command == "export" else []
    err = _error(capsys, [command, *STACK, "--seed", seed, *extra])
    assert "--seed" in err and "non-negative int" in err and repr(seed) in err


def test_export_to_an_unwritable_place(capsys):
    err = _error(capsys, ["export", *STACK, "/proc/x.zip"])
    assert err.startswith("symrnn export: error: cannot write '/proc/x.zip'")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_errors")
    assert main(["export", *STACK, str(d / "m.zip")]) == 0
    np.save(d / "in.npy", np.zeros((3, 2, 3), np.float32))
    return d


def test_run_into_an_unwritable_folder(capsys, exported):
    err = _error(capsys, ["run", str(exported / "m.zip"), "--input",
                          f"data={exported / 'in.npy'}", "--out", "/proc/nope"])
    assert err.startswith("symrnn run: error: cannot write '/proc/nope'")


def test_run_with_a_negative_seed(capsys, exported):
    err = _error(capsys, ["run", str(exported / "m.zip"), "--input",
                          f"data={exported / 'in.npy'}", "--out", str(exported / "o"),
                          "--train", "--seed", "-3"])
    assert "--seed" in err and "'-3'" in err


def test_a_library_error_exits_2_like_a_bad_argument(capsys, tmp_path):
    err = _error(capsys, ["run", str(tmp_path / "missing.zip"), "--out", str(tmp_path)])
    assert "no such file" in err


@pytest.mark.parametrize("flag, path", [("--dot", "/proc/x.dot"), ("--memory", "/proc/x.svg")])
def test_inspect_writing_to_an_unwritable_place(capsys, flag, path):
    err = _error(capsys, ["inspect", *STACK, flag, path])
    assert err.startswith(f"symrnn inspect: error: cannot write {path!r}")
