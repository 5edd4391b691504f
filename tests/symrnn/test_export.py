"""Export from symrnn, load with runtime: bit-identical numbers, and runtime alone suffices."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import runtime
import symrnn as sym
from runtime.errors import ArtifactError, BackendUnavailable

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")
ROOT = Path(__file__).resolve().parents[2]
SHAPE = (4, 3, 5)


def network():
    rnn = sym.RNNFactory(num_hidden=[8, 6], data_dim=5, typ="lstm", zoneout=0.1, name="lstm")
    return rnn.step(sym.Variable("data"), seq_len=4, ret_typ="out")[-1]


def weights(ex, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {n: (0.3 * rng.standard_normal(a.shape)).astype(a.dtype)
            for n, a in ex.arg_dict.items()}


@pytest.fixture(scope="module")
def source():
    ex = network().simple_bind(backend="cpu", data=SHAPE)
    ex.copy_params_from(weights(ex))
    return ex


@pytest.fixture
def exported(tmp_path, source):
    path = tmp_path / "lstm.zip"
    source.export(path)
    return path


def data(seed=1):
    return np.random.default_rng(seed).standard_normal(SHAPE).astype("float32")


def test_export_then_load_is_bit_identical_in_inference_training_and_gradients(exported,
                                                                               source):
    ex = runtime.load(exported)
    x = data()
    assert np.array_equal(ex.forward(data=x)[0], source.forward(data=x)[0])
    for seed in (0, 7):
        got = ex.forward(is_train=True, seed=seed, data=x)[0]
        want = source.forward(is_train=True, seed=seed, data=x)[0]
        assert np.array_equal(got, want)
    head = np.random.default_rng(2).standard_normal(want.shape).astype("float32")
    ex.backward(head)
    source.backward(head)
    assert ex.grad_dict.keys() == source.grad_dict.keys()
    for name in source.grad_dict:
        assert np.array_equal(ex.grad_dict[name], source.grad_dict[name]), name
    assert np.abs(ex.grad_dict["lstm_l0_i2h_weight"]).sum() > 0


def test_the_loaded_executor_runs_the_same_programs(exported, source):
    ex = runtime.load(exported)
    assert ex.program.to_json() == source.program.to_json()
    assert ex.engine.infer.program.to_json() == source.engine.infer.program.to_json()
    assert ex.grad_req == source.grad_req and ex.output_names == source.output_names


def test_manifest_and_members(exported, source):
    manifest, members = runtime.artifact.read(exported)
    assert manifest["producer"] == {"name": "symrnn", "version": sym.__version__}
    assert manifest["format_version"] == runtime.artifact.FORMAT_VERSION
    assert isinstance(manifest["format_version"], int)
    assert manifest["programs"] == {"train": "program.json", "infer": "program_infer.json"}
    assert manifest["inputs"] == ["data"]
    assert set(manifest["params"]) == set(source.arg_dict) - {"data"}
    assert manifest["outputs"] == [{"name": "lstm_l1_out_output", "shape": [4, 3, 6],
                                    "dtype": "float32"}]
    kernels = [m for m in members if m.startswith("kernels/")]
    assert {Path(m).suffix for m in kernels} == {".json", ".c", ".cu"}
    assert len(kernels) == 3 * len({*source.program.kernels, *source.engine.infer.program.kernels})
    assert members["symbol.json"].decode() == source.symbol.tojson()
    again = sym.load_json(members["symbol.json"].decode())
    assert again.list_arguments() == network().list_arguments()
    with zipfile.ZipFile(exported) as zf:
        assert sorted(zf.namelist()) == sorted([*manifest["members"], "manifest.json"])


def test_runtime_alone_loads_and_runs_it(exported, source, tmp_path):
    x = data()
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, runtime\n"
        f"ex = runtime.load({str(exported)!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"np.save({str(tmp_path / 'infer.npy')!r}, ex.forward(data=x)[0])\n"
        f"np.save({str(tmp_path / 'train.npy')!r}, ex.forward(is_train=True, seed=3, data=x)[0])\n"
        "assert 'codegen' not in sys.modules and 'symrnn' not in sys.modules, sorted(sys.modules)\n"
        "assert 'networkx' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert np.array_equal(np.load(tmp_path / "infer.npy"), source.forward(data=x)[0])
    assert np.array_equal(np.load(tmp_path / "train.npy"),
                          source.forward(is_train=True, seed=3, data=x)[0])


def test_symrnn_export_binds_sets_params_and_writes(tmp_path, source):
    path = tmp_path / "fn.zip"
    manifest = sym.export(network(), path, params=dict(source.arg_dict), verify=True,
                          data=SHAPE)
    assert manifest["inputs"] == ["data"]
    ex, x = runtime.load(path), data(4)
    assert np.array_equal(ex.forward(data=x)[0], source.forward(data=x)[0])


def test_export_binds_no_engine_and_needs_no_compiler(tmp_path, source, monkeypatch):
    """The Programs are serialized as compiled: no CpuEngine, no C compiler."""
    import runtime.cpu

    def no_engine(*args, **kwargs):
        raise AssertionError("export bound an engine")

    monkeypatch.setattr(runtime.cpu, "CpuEngine", no_engine)
    monkeypatch.setenv("CC", "/nonexistent/cc")
    path = tmp_path / "nocc.zip"
    sym.export(network(), path, params=dict(source.arg_dict), data=SHAPE, key=b"k")
    monkeypatch.undo()
    ex, x = runtime.load(path, key=b"k"), data(9)
    assert np.array_equal(ex.forward(data=x)[0], source.forward(data=x)[0])


def test_export_refuses_params_that_are_not_arguments(tmp_path):
    with pytest.raises(sym.BindError, match="'nope'"):
        sym.export(network(), tmp_path / "x.zip", params={"nope": np.zeros(2)}, data=SHAPE)
    assert not (tmp_path / "x.zip").exists()


def test_inference_only_export_has_one_program(tmp_path, source):
    path = tmp_path / "infer.zip"
    manifest = sym.export(network(), path, params=dict(source.arg_dict), grad_req="null",
                          data=SHAPE)
    assert manifest["programs"] == {"train": "program.json"}
    ex, x = runtime.load(path), data(5)
    assert ex.grad_dict == {}
    assert np.array_equal(ex.forward(data=x)[0], source.forward(data=x)[0])


def test_a_loaded_executor_exports_again(exported, tmp_path, source):
    again = tmp_path / "again.zip"
    runtime.load(exported).export(again)
    manifest, members = runtime.artifact.read(again)
    assert manifest["producer"]["version"] == sym.__version__
    assert members["symbol.json"].decode() == source.symbol.tojson()
    x = data(6)
    assert np.array_equal(runtime.load(again).forward(data=x)[0], source.forward(data=x)[0])


def test_executors_from_bind_store_every_argument_as_a_parameter(tmp_path, source):
    ex = network().bind(backend="cpu", args={n: a.copy() for n, a in source.arg_dict.items()})
    manifest = ex.export(tmp_path / "bound.zip")
    assert manifest["inputs"] == [] and set(manifest["params"]) == set(source.arg_dict)
    loaded = runtime.load(tmp_path / "bound.zip")
    assert np.array_equal(loaded.forward()[0], source.forward(data=source.arg_dict["data"])[0])


def test_the_reference_backend_has_nothing_to_export(tmp_path):
    ex = network().simple_bind(backend="reference", data=SHAPE)
    with pytest.raises(ArtifactError, match="bind with backend='cpu'"):
        ex.export(tmp_path / "ref.zip")


def test_a_flipped_kernel_byte_is_refused_naming_the_kernel(exported):
    with zipfile.ZipFile(exported) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    name = min(m for m in members if m.endswith(".cu"))
    members[name] = members[name].replace(b"real", b"reaL", 1)
    with zipfile.ZipFile(exported, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    with pytest.raises(ArtifactError, match=f"'{name}' fails its SHA-256 check"):
        runtime.load(exported)
    assert json.loads(members["manifest.json"])["members"][name]


def test_cuda_loads_or_says_what_is_missing(exported, source):
    try:
        ex = runtime.load(exported, backend="cuda")
    except BackendUnavailable as e:
        assert "cuda" in str(e).lower() or "pycuda" in str(e).lower()
        return
    x = data(8)
    assert np.allclose(ex.forward(data=x)[0], source.forward(data=x)[0], atol=1e-5)
