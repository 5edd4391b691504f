"""The `symrnn` command: every subcommand has --help; bad arguments are one line, no
traceback, non-zero exit."""
import subprocess
import sys

import pytest

from symrnn.cli import COMMANDS, main


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(capsys, command):
    code, out, _ = _run(capsys, [command, "--help"])
    assert code == 0
    assert out.startswith(f"usage: symrnn {command}")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_option_is_one_line(capsys, command):
    code, _, err = _run(capsys, [command, "--no-such-option"])
    assert code != 0
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--no-such-option" in err


@pytest.mark.parametrize("argv, needle", [
    (["compare", "--hidden", "0"], "--hidden"),
    (["compare", "--hidden", "8,x"], "--hidden"),
    (["compare", "--zoneout", "1.5"], "--zoneout"),
    (["compare", "-T", "-3"], "-T"),
    (["compare", "--typ", "transformer"], "--typ"),
    (["compare", "--hidden", "8,8", "--zoneout", "0.1,0.2,0.3"], "one per layer"),
    (["demo", "--minutes", "-1"], "--minutes"),
    (["bogus"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_are_one_line_errors(capsys, argv, needle):
    code, _, err = _run(capsys, argv)
    assert code not in (0, None)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert needle in err


def test_help_lists_every_subcommand(capsys):
    code, out, _ = _run(capsys, ["--help"])
    assert code == 0
    assert all(name in out for name in COMMANDS)


def test_compare_command_prints_the_table(capsys):
    code, out, err = _run(capsys, ["compare", "--hidden", "6,4", "-T", "3", "-N", "2", "-I",
                                   "3", "--repeat", "1", "--no-reference"])
    assert code == 0, err
    assert "launches / forward" in out and "max|diff| grad lstm_l0_i2h_weight" in out


@pytest.mark.parametrize("flags, header, row", [
    (["--varlen"], "lengths [", "max|diff| out lstm_l0_t2_valid_c_output"),
    (["--proj-size", "3"], "proj_size 3", "max|diff| grad lstm_l0_h2r_weight"),
    (["--cell-clip", "0.5"], "cell_clip 0.5", "max|diff| grad lstm_l0_h2h_weight"),
    (["--weight-drop", "0.3"], "weight_drop [0.3]", "max|diff| grad lstm_l0_h2h_weight"),
], ids=["varlen", "proj", "clip", "weight_drop"])
def test_compare_runs_each_feature_of_issue_12(capsys, flags, header, row):
    """Exit status 0: fused, unrolled and reference agree on the feature's model."""
    code, out, err = _run(capsys, ["compare", "--hidden", "4", "-T", "3", "-N", "3", "-I", "3",
                                   "--zoneout", "0", "--repeat", "1", *flags])
    assert code == 0, err
    first = out.splitlines()[0]
    assert header in first and "reference" in out and row in out


def test_console_entry_point_gives_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "symrnn", "compare", "--dropout", "2"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
