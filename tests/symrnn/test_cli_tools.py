"""`symrnn export`, `run`, `inspect` and `bench`, through `python -m symrnn` in a subprocess:
--help, bad arguments and missing files give one line and a non-zero exit, never a
traceback; export -> run gives the outputs of an executor built directly."""
import argparse
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from symrnn import cli
from symrnn.cli import bench as cli_bench
from symrnn.cli import inspect as cli_tools
from symrnn.cli import stack_symbol
from symrnn.model import param_names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK = ["--hidden", "6,4", "--zoneout", "0.2", "-I", "3", "-T", "4", "-N", "2"]


def symrnn(*argv, cwd=None):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SYMRNN_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "symrnn", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def one_line_error(code, err, needle):
    assert code not in (0, None), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An exported stack, its parameters (from a file) and an input."""
    d = tmp_path_factory.mktemp("cli_tools")
    net = stack_symbol(argparse.Namespace(hidden=[6, 4], zoneout=[0.2], dropout=[0.0],
                                          typ="lstm", dropout_mode="step"), 4, 3)
    rng = np.random.default_rng(7)
    ex = net.simple_bind(backend="cpu", grad_req="null", data=(4, 2, 3))
    params = {n: rng.uniform(-0.5, 0.5, ex.arg_dict[n].shape).astype(np.float32)
              for n in param_names(net, ["data"])}
    ex.copy_params_from(params)
    np.savez(d / "params.npz", **params)
    np.save(d / "in.npy", rng.standard_normal((4, 2, 3)))  # float64: run casts it
    code, out, err = symrnn("export", *STACK, "--params", d / "params.npz", d / "m.zip")
    assert code == 0, err
    assert "inputs:   data (4, 2, 3) float32" in out
    return d, ex


@pytest.mark.parametrize("command", ["export", "run", "inspect", "bench"])
def test_help(command):
    code, out, _ = symrnn(command, "--help")
    assert code == 0 and out.startswith(f"usage: symrnn {command}")


@pytest.mark.parametrize("argv, needle", [
    (["export", "--hidden", "0", "m.zip"], "--hidden"),
    (["export", "--zoneout", "0.1,0.2,0.3", "m.zip"], "one per layer"),
    (["export"], "OUT.zip"),
    (["export", "--grad-req", "add", "m.zip"], "--grad-req"),
    (["run", "m.zip", "--input", "data", "--out", "o"], "NAME=FILE.npy"),
    (["run", "--input", "data=x.npy"], "MODEL.zip, --out"),
    (["inspect", "-T", "0"], "-T"),
    (["inspect", "--memory", "plan.pdf"], ".svg or .png"),
    (["bench", "--quick=yes"], "--quick"),
    (["bench", "--bogus"], "--bogus"),
])
def test_bad_arguments(argv, needle):
    one_line_error(*symrnn(*argv)[::2], needle)


def test_missing_files(tmp_path):
    for argv, needle in [
        (["export", "--params", tmp_path / "no.npz", tmp_path / "m.zip"], "no.npz"),
        (["export", tmp_path / "no" / "m.zip"], "does not exist"),
        (["run", tmp_path / "no.zip", "--input", "data=x.npy", "--out", tmp_path], "no.zip"),
        (["inspect", tmp_path / "no.zip"], "no.zip"),
    ]:
        one_line_error(*symrnn(*argv)[::2], needle)


def test_a_folder_given_as_a_model_is_reported_as_a_folder(tmp_path):
    (tmp_path / "model").mkdir()
    for argv in (["run", tmp_path / "model", "--input", "data=x.npy", "--out", tmp_path / "o"],
                 ["inspect", tmp_path / "model"]):
        code, _, err = symrnn(*argv)
        one_line_error(code, err, "is a folder")
        assert "no such file" not in err


def test_export_run_matches_a_direct_executor(model, tmp_path):
    d, ex = model
    x = np.load(d / "in.npy").astype(np.float32)
    code, out, err = symrnn("run", d / "m.zip", "--input", f"data={d / 'in.npy'}", "--out",
                            tmp_path / "o")
    assert code == 0, err
    assert f"{ex.output_names[0]}.npy: float32 (4, 2, 4)" in out
    want = ex.forward(is_train=False, data=x)
    for name, value in zip(ex.output_names, want):
        np.testing.assert_array_equal(np.load(tmp_path / "o" / f"{name}.npy"), value)
    code, _, err = symrnn("run", d / "m.zip", "--input", f"data={d / 'in.npy'}", "--train",
                          "--seed", 11, "--out", tmp_path / "t")
    assert code == 0, err
    masked = ex.forward(is_train=True, seed=11, data=x)
    got = np.load(tmp_path / "t" / f"{ex.output_names[0]}.npy")
    np.testing.assert_array_equal(got, masked[0])
    assert not np.array_equal(got, want[0])  # zoneout drew masks


def test_run_on_cuda_sim_matches_the_cpu(model, tmp_path):
    """`symrnn run --backend cuda-sim`: the CUDA kernels run on the host, same numbers as
    the CPU to float32 rounding."""
    d, ex = model
    x = np.load(d / "in.npy").astype(np.float32)
    code, _, err = symrnn("run", d / "m.zip", "--input", f"data={d / 'in.npy'}", "--backend",
                          "cuda-sim", "--out", tmp_path / "o")
    assert code == 0, err
    want = ex.forward(is_train=False, data=x)
    for name, value in zip(ex.output_names, want):
        np.testing.assert_allclose(np.load(tmp_path / "o" / f"{name}.npy"), value, rtol=1e-5,
                                   atol=1e-6)


def test_run_refuses_bad_inputs(model, tmp_path):
    d, _ = model
    np.save(tmp_path / "bad.npy", np.zeros((4, 2, 5), np.float32))
    run = ["run", d / "m.zip", "--out", tmp_path / "o"]
    for extra, needle in [
        ([], "input 'data' is required"),
        (["--input", f"data={tmp_path / 'bad.npy'}"], "'data'"),
        (["--input", f"data={tmp_path / 'none.npy'}"], "none.npy"),
        (["--input", f"datum={d / 'in.npy'}"], "'datum'"),
        (["--input", f"data={d / 'in.npy'}", "--seed", "3"], "--train"),
        (["--input", f"data={d / 'params.npz'}"], ".npz"),
    ]:
        one_line_error(*symrnn(*run, *extra)[::2], needle)
    assert "(4, 2, 3)" in symrnn(*run, "--input", f"data={tmp_path / 'bad.npy'}")[2]


def test_export_refuses_incomplete_params(tmp_path):
    np.savez(tmp_path / "p.npz", lstm_l0_i2h_bias=np.zeros(24, np.float32))
    one_line_error(*symrnn("export", *STACK, "--params", tmp_path / "p.npz",
                           tmp_path / "m.zip")[::2], "has no array for")


def check_dot(path):
    with open(path) as f:
        text = f.read()
    assert text.startswith("digraph")
    assert text.count("{") == text.count("}") > 1
    assert "subgraph cluster_" in text and " -> " in text
    return text


def check_svg(path):
    root = ET.parse(path).getroot()  # well-formed XML
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) > 2


def test_inspect_a_stack_description(tmp_path):
    code, out, err = symrnn("inspect", *STACK, "--dot", tmp_path / "g.dot", "--memory",
                            tmp_path / "plan.svg")
    assert code == 0, err
    for needle in ("launches / forward", "launches / backward", "GEMMs / backward",
                   "arena bytes", "unplanned", "FLOPs / forward", "plan_memory"):
        assert needle in out
    assert "sigmoid" in check_dot(tmp_path / "g.dot")
    assert os.path.getsize(tmp_path / "plan.svg") > 0


def test_inspect_an_artifact(model, tmp_path):
    d, _ = model
    code, out, err = symrnn("inspect", d / "m.zip", "--dot", tmp_path / "g.dot")
    assert code == 0, err
    assert "inference program, fused" in out and "gradients: none" in out
    check_dot(tmp_path / "g.dot")
    one_line_error(*symrnn("inspect", d / "m.zip", "--hidden", "8")[::2], "not both")


def test_memory_picture_by_hand(tmp_path):
    net = stack_symbol(argparse.Namespace(hidden=[5], zoneout=[0.0], dropout=[0.0],
                                          typ="gru", dropout_mode="step"), 3, 2)
    graph, program = cli_tools.compile_planned(net, {"data": (3, 2, 2)}, ["data"], True)
    rects = cli_tools.memory_rects(graph)
    assert rects and all(size > 0 and a <= b for _, a, b, _, size, _, _ in rects)
    (tmp_path / "m.svg").write_text(cli_tools.memory_svg(rects, len(graph.graph["schedule"])))
    check_svg(tmp_path / "m.svg")
    assert program.stats["compile_seconds"]["plan_memory"] >= 0


def test_bench_runs_the_script_and_passes_options(tmp_path, monkeypatch, capfd):
    script = tmp_path / "run.py"
    script.write_text("import sys\nprint('ARGV', sys.argv[1:])\nsys.exit(3)\n")
    monkeypatch.setattr(cli_bench, "bench_script", lambda: str(script))
    assert cli.main(["bench", "--quick", "--out", "r.json"]) == 3
    assert "ARGV ['--quick', '--out', 'r.json']" in capfd.readouterr().out


def test_bench_without_the_repository(monkeypatch, capsys):
    monkeypatch.setattr(cli_bench, "bench_script", lambda: None)
    assert cli.main(["bench", "--quick"]) == 2
    one_line_error(2, capsys.readouterr().err, "bench/run.py was not found")


def test_bench_finds_the_checkout():
    assert cli_bench.bench_script() == os.path.join(ROOT, "bench", "run.py")
