"""bench/run.py runs end to end on tiny shapes and writes the results it promises.

No timing is asserted: only that every case, implementation, ratio, check and goal is there.
The benchmark is run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set in its environment, to
check that it removes them from its own process (re-executing itself) and says so.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "bench", "run.py")
CASES = ["lstm1", "gru1", "zoneout", "infer"]  # infer: bench/infer.py
RNN_CASES = CASES[:3]
HAVE_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="1048576")
    cmd = [sys.executable, RUN, "--quick", "--T", "5", "--N", "4", "--H", "16", "--I", "16",
           "--cases", ",".join(CASES), "--roof-size", "64", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out) as f:
        data = json.load(f)
    md = out.with_suffix(".md").read_text()
    return data, md, proc.stdout


def test_config_and_machine(results):
    data, _, _ = results
    cfg = data["config"]
    assert (cfg["T"], cfg["N"], cfg["I"], cfg["H"], cfg["quick"]) == (5, 4, 16, 16, True)
    assert cfg["cases"] == CASES
    m = data["machine"]
    for key in ("numpy", "nproc", "cpu_model", "threadpools", "torch", "removed_env", "env"):
        assert key in m
    assert m["removed_env"] == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
    assert "OPENBLAS_CORETYPE" not in m["env"] and "OPENBLAS_L2_SIZE" not in m["env"]
    if isinstance(m["threadpools"], list):
        blas = [p for p in m["threadpools"] if p["user_api"] == "blas"]
        assert blas and all(k in blas[0] for k in
                            ("internal_api", "version", "architecture", "num_threads"))
    if HAVE_TORCH:
        assert {"version", "num_threads"} <= set(m["torch"])
    assert len(data["load_before"]) == 3 and len(data["load_after"]) == 3


def test_roof(results):
    data, _, _ = results
    roof = data["roof"]
    assert roof["roof_gflops"] > 0
    assert {"square_64", "input_projection", "recurrent_steps"} <= set(roof["rates"])


def test_cases_times_ratios_checks(results):
    data, _, _ = results
    assert [c["case"] for c in data["cases"]] == RNN_CASES
    impls = ["fused", "unrolled", "reference"] + (["torch"] if HAVE_TORCH else [])
    for c in data["cases"]:
        for mode in ("fwd", "fwdbwd"):
            for impl in impls:
                assert c[mode][impl]["median_ms"] > 0, (c["case"], mode, impl)
            assert set(c["ratios"][mode]) == {"fused_over_torch", "torch_over_fused",
                                              "unrolled_over_fused", "reference_over_fused"}
            assert c["ratios"][mode]["reference_over_fused"] > 0
        assert c["flops"]["fwd"] > 0 and c["flops"]["fwdbwd"] > c["flops"]["fwd"]
        assert c["roof_fraction"]["fused_fwd"] > 0
        checks = c["checks"]
        assert checks["fused_vs_unrolled_output_ok"] and checks["fused_vs_reference_output_ok"]
        if HAVE_TORCH:
            assert checks["fused_vs_torch_output_ok"], checks
            if not c["zoneout"]:
                assert checks["fused_vs_torch_grad_ok"], checks
        for mode in ("fwd", "fwdbwd"):
            b = c["breakdown"][mode]
            assert b["steps"] and b["by_kind_ms"] and b["api_ms"] > 0
    assert data["checks_ok"] is True


def test_goals_and_table(results):
    data, md, stdout = results
    goals = data["goals"]
    assert goals and all(g["pass"] in (True, False, None) for g in goals)
    if HAVE_TORCH:
        assert any("zoneout" in g["goal"] and "LSTMCell" in g["goal"] for g in goals)
        assert any("nn.GRU" in g["goal"] for g in goals)
    for text in (md, stdout):
        assert "| case | fused ms | unrolled ms | reference ms | torch ms | fused/torch " \
               "| unrolled/fused | reference/fused |" in text
        assert "PASS" in text or "FAIL" in text


def test_roof_fractions_are_of_the_roof_timed_in_the_same_blocks(results):
    """Each case times the roof GEMM beside its implementations (same blocks, same threads,
    same statistic); the fractions are of that roof, the run's best roof's beside them."""
    data, md, _ = results
    roofs = data["roof"]["roof_gflops_by_threads"]
    for c in data["cases"]:
        for label, tm in c["timings"].items():
            for mode in ("fwd", "fwdbwd"):
                local = tm["roof"][mode]
                assert local["gflops"] == pytest.approx(
                    local["flops"] / (local["median_ms"] / 1e3) / 1e9)
                rate = c["flops"][mode] / (tm[mode]["fused"]["median_ms"] / 1e3) / 1e9
                assert tm["roof_fraction"][f"fused_{mode}"] == pytest.approx(
                    rate / local["gflops"])
                assert tm["roof_fraction_run"][f"fused_{mode}"] == pytest.approx(
                    rate / roofs[label])
                assert "roof" not in tm[mode]  # not an implementation of the table
    assert "fraction of the roof timed in the same blocks" in md


def test_roof_bound_is_the_peers_time_over_the_flops_at_the_roof(results):
    """The most any program could reach over each peer: its time at the roof, nothing else."""
    data, md, _ = results
    roofs = data["roof"]["roof_gflops_by_threads"]
    for c in data["cases"]:
        for label, tm in c["timings"].items():
            ideal_ms = c["flops"]["fwdbwd"] / (roofs[label] * 1e9) * 1e3
            bound = tm["roof_bound"]
            assert bound["reference_over_fused"] == pytest.approx(
                tm["fwdbwd"]["reference"]["median_ms"] / ideal_ms)
            if HAVE_TORCH:
                assert bound["torch_over_fused"] == pytest.approx(
                    tm["fwdbwd"]["torch"]["median_ms"] / ideal_ms)
    reference_goals = [g for g in data["goals"] if "than reference" in g["goal"]]
    assert reference_goals and all(g["roof_bound"] > 0 for g in reference_goals)
    assert "at this run's roof" in md


@pytest.mark.skipif(not HAVE_TORCH, reason="the inference cases run against PyTorch")
def test_inference_streaming_and_bandwidth(results):
    """Issue 15's cases: every small-batch case checked and timed, the streaming ratio and
    the bandwidth bound there, and their goals printed."""
    data, md, _ = results
    inf = data["inference"]
    names = [c["case"] for c in inf["cases"]]
    assert names == [f"{t}{l} N={n}" for t in ("lstm", "gru") for l in (1, 2) for n in (1, 4, 8)]
    for c in inf["cases"]:
        assert c["check_ok"], c["max_abs_diff"]
        assert c["times"]["ours"]["median_ms"] > 0 and c["times"]["torch"]["median_ms"] > 0
        assert (c["N"] == 1) == ("bandwidth_fraction" in c)
        bd = c["bound"]  # the larger of the bandwidth bound and the FLOPs at the roof
        assert bd["bound_ms"] == max(bd["bandwidth_ms"], bd["compute_ms"]) > 0
        assert bd["fraction"] == pytest.approx(bd["bound_ms"] / c["times"]["ours"]["median_ms"])
    assert set(inf["bandwidth"]) == {"lstm1", "lstm2", "gru1", "gru2"}
    assert all(b["bound_ms"] > 0 for b in inf["bandwidth"].values())
    s = inf["streaming"]
    assert s["chunk_over_step"] == pytest.approx(s["per_chunk_ms"] / s["step_in_whole_ms"])
    goals = [g["goal"] for g in data["goals"] if g["goal"].startswith("issue 15")]
    assert any("bandwidth bound" in g for g in goals) and any("streaming" in g for g in goals)
    assert "| inference case |" in md and "streaming T=1 chunks" in md
    assert "| bound (the larger) ms |" in md
    infer_goals = [g for g in data["goals"] if "inference" in g["goal"]]
    assert infer_goals and all("at this run's bound" in g["bound"] for g in infer_goals)
    assert "at this run's bound" in md
