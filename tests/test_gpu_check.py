"""bench/gpu_check.sh --dry-run: every stage runs here on cuda-sim and records what it saw;
a stage that breaks does not stop the next."""
import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fake_wheels(folder):
    folder.mkdir()
    (folder / "pycuda-2026.1.tar.gz").write_bytes(b"")
    (folder / "pytools-1-py3-none-any.whl").write_bytes(b"")
    return folder


def test_dry_run_writes_every_stage(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, SYMRNN_GPU_WHEELS=str(_fake_wheels(tmp_path / "wheels")),
               PYTHON=sys.executable, PYTHONPATH=ROOT)
    proc = subprocess.run([os.path.join(ROOT, "bench", "gpu_check.sh"), "--dry-run", "--out",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads((out / "status.json").read_text())
    assert list(status) == ["environment", "pycuda", "tests", "bench"]
    assert all(s["result"] == "ok" for s in status.values()), status
    env_info = json.loads((out / "environment.json").read_text())
    assert env_info["dry_run"] is True and "nvidia_smi" in env_info and "torch" in env_info
    build = (out / "pycuda_build.log").read_text()
    assert "configure.py --cuda-root=" in build and "pytools-1-py3-none-any.whl" in build
    bench = json.loads((out / "bench.json").read_text())
    assert bench["backend"] == "cuda-sim"
    assert {r["N"] for r in bench["results"]} == {4, 2}
    for r in bench["results"]:
        assert "error" not in r, r
        assert {"fused", "unfused"} <= set(r["ms"]) and r["ratios"]
    summary = (out / "summary.md").read_text()
    assert "- bench: ok" in summary and "| lstm1 |" in summary


def test_a_failing_stage_does_not_stop_the_next(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check",
                                                  os.path.join(ROOT, "bench", "gpu_check.py"))
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)

    def broken(out, dry_run, limit):
        raise RuntimeError("no driver here")

    monkeypatch.setitem(gpu_check.STAGES, "environment", broken)
    monkeypatch.setenv("SYMRNN_GPU_WHEELS", str(_fake_wheels(tmp_path / "wheels")))
    monkeypatch.setattr(gpu_check, "WHEEL_SOURCES", (str(tmp_path / "wheels"),))
    monkeypatch.setattr(gpu_check, "WHEELS", str(tmp_path / "nowhere"))
    code = gpu_check.main(["--dry-run", "--out", str(tmp_path / "o"),
                           "--stages", "environment,pycuda"])
    status = json.loads((tmp_path / "o" / "status.json").read_text())
    assert code == 1
    assert status["environment"]["result"] == "FAILED: RuntimeError: no driver here"
    assert status["pycuda"]["result"] == "ok"
    assert "environment: FAILED" in (tmp_path / "o" / "summary.md").read_text()


def test_strict_fp32_turns_tf32_off_and_defaults_come_back():
    torch = __import__("pytest").importorskip("torch")
    spec = importlib.util.spec_from_file_location("gpu_bench",
                                                  os.path.join(ROOT, "bench", "gpu_bench.py"))
    gpu_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_bench)
    before = {k: getattr(o, a) for k, (o, a) in gpu_bench.precision_knobs(torch).items()}
    try:
        strict = gpu_bench.set_precision(torch, strict=True)
        assert set(strict.values()) <= {"ieee", False}
        assert gpu_bench.set_precision(torch, strict=False) == before
    finally:
        gpu_bench.set_precision(torch, strict=False)
