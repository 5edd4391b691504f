"""The artifact format on a hand-built Program: round trip, manifest, and every refusal.

The program is `out = x @ w + b` (plus, in training, the mask id and `seed % 5` added by the
kernel, so that a seed shows in the output) with backward `grad_w = x^T @ head_grad`.
"""
import io
import json
import shutil
import zipfile

import numpy as np
import pytest

import runtime
from runtime.artifact import MANIFEST, read, save, write
from runtime.cpu import CpuEngine
from runtime.errors import ArtifactError, BindError, ShapeError
from runtime.executor import Executor
from runtime.program import Buffer, Kernel, Program, Step, View

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

ADD = """
#include <stdint.h>
void art_add(long rows, long cols, const float* in0, long ld_in0, const float* in1,
             long ld_in1, float* out0, long ld_out0, const uint64_t* ctl, const uint32_t* masks)
{
    float extra = ctl[1] ? (float)(masks[0] + ctl[0] % 5) : 0.0f;
    for (long r = 0; r < rows; ++r)
        for (long c = 0; c < cols; ++c)
            out0[r * ld_out0 + c] = in0[r * ld_in0 + c] + in1[r * ld_in1 + c] + extra;
}
"""
CUDA = "/* the CUDA rendering of art_add would be here */\n"


def view(buffer, offset, rows, cols, shape=None):
    return View(buffer, offset, rows, cols, cols, shape or (rows, cols))


def program() -> Program:
    f32 = "float32"
    buffers = {"x": Buffer("x", "arg", 6, f32), "w": Buffer("w", "arg", 12, f32),
               "b": Buffer("b", "arg", 8, f32), "hg": Buffer("hg", "head_grad", 8, f32),
               "arena": Buffer("arena", "arena", 28, f32)}
    y, out, gw = view("arena", 0, 2, 4), view("arena", 8, 2, 4), view("arena", 16, 3, 4)
    x, w, b, hg = view("x", 0, 2, 3), view("w", 0, 3, 4), view("b", 0, 2, 4), view("hg", 0, 2, 4)
    steps = [Step("gemm", "forward", "y", [x, w], [y]),
             Step("kernel", "forward", "out", [y, b], [out], {"kernel": "art_add", "masks": (7,)}),
             Step("gemm", "backward", "grad_w", [x, hg], [gw], {"trans_a": True})]
    return Program(f32, {"x": ((2, 3), f32), "w": ((3, 4), f32), "b": ((2, 4), f32)},
                   [("out", out)], {"w": gw}, [("out", "hg")], buffers, steps,
                   {"art_add": Kernel("art_add", ADD, CUDA, 2, 1, 1, f32)})


def values(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s).astype("float32") for n, (s, _) in program().args.items()}


@pytest.fixture
def source():
    return Executor(CpuEngine(program()), {"w": "write"}, seed=5, args=values())


@pytest.fixture
def artifact(tmp_path, source):
    path = tmp_path / "add.zip"
    save(path, {"train": source.program}, source.arg_dict, symbol_json='{"nodes": []}',
         producer="9.9.9", inputs=["x"], grad_req=source.grad_req, seed=5)
    return path


def raw_members(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rewrite(path, members: dict) -> None:
    """The zip at `path` with exactly `members`, checksums left as they were."""
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def reseal(path, change) -> None:
    """Applies `change(manifest, members)` and writes the artifact with fresh checksums, as a
    producer that means it would: only the semantic checks can then refuse it."""
    members = raw_members(path)
    manifest = json.loads(members.pop(MANIFEST))
    change(manifest, members)
    write(path, {k: v for k, v in manifest.items() if k not in ("members", "self_sha256")},
          members)


def refused(path, *words) -> str:
    with pytest.raises(ArtifactError) as info:
        runtime.load(path)
    for w in words:
        assert w in str(info.value), str(info.value)
    return str(info.value)


# ---- the round trip ---------------------------------------------------------------------------
def test_load_gives_bit_identical_outputs_and_gradients(artifact, source):
    ex = runtime.load(artifact)
    x = np.random.default_rng(1).standard_normal((2, 3)).astype("float32")
    assert np.array_equal(ex.forward(x=x)[0], source.forward(x=x)[0])
    assert np.array_equal(ex.forward(is_train=True, seed=3, x=x)[0],
                          source.forward(is_train=True, seed=3, x=x)[0])
    hg = np.random.default_rng(2).standard_normal((2, 4)).astype("float32")
    ex.backward(hg)
    source.backward(hg)
    assert ex.grad_dict.keys() == source.grad_dict.keys() == {"w"}
    assert np.array_equal(ex.grad_dict["w"], source.grad_dict["w"])
    assert ex.seed == 5 and ex.input_names == ["x"]


def test_manifest_lists_every_member_with_its_checksum(artifact):
    manifest, members = read(artifact)
    assert manifest["format"] == "symrnn-artifact" and manifest["format_version"] == 1
    assert manifest["producer"] == {"name": "symrnn", "version": "9.9.9"}
    assert set(manifest["members"]) == set(members) == {
        "symbol.json", "program.json", "params.npz", "kernels/art_add.c", "kernels/art_add.cu"}
    assert manifest["programs"] == {"train": "program.json"}
    assert manifest["kernels"] == {"program.json": {"art_add": {
        "c": "kernels/art_add.c", "cuda": "kernels/art_add.cu"}}}
    assert manifest["inputs"] == ["x"] and manifest["params"] == ["w", "b"]
    assert manifest["args"]["w"] == {"shape": [3, 4], "dtype": "float32"}
    assert manifest["outputs"] == [{"name": "out", "shape": [2, 4], "dtype": "float32"}]
    assert members["kernels/art_add.c"].decode() == ADD
    assert json.loads(members["program.json"])["kernels"]["art_add"]["c_source"] == ""
    npz = np.load(io.BytesIO(members["params.npz"]), allow_pickle=False)
    assert sorted(npz.files) == ["b", "w", "x"]


def test_kernel_sources_come_from_the_kernel_members(artifact, source):
    def change(manifest, members):
        members["kernels/art_add.c"] = members["kernels/art_add.c"].replace(b"+ extra", b"- 1")

    reseal(artifact, change)
    ex = runtime.load(artifact)
    assert "- 1" in ex.program.kernels["art_add"].c_source
    got, want = ex.forward()[0], source.forward()[0]
    assert np.allclose(got, want - 1)


# ---- refusals ---------------------------------------------------------------------------------
MEMBERS = ["manifest.json", "symbol.json", "program.json", "params.npz", "kernels/art_add.c",
           "kernels/art_add.cu"]


@pytest.mark.parametrize("member", MEMBERS)
def test_a_flipped_byte_in_any_member_is_refused_naming_it(artifact, member):
    members = raw_members(artifact)
    data = bytearray(members[member])
    data[len(data) // 2] ^= 0x01
    members[member] = bytes(data)
    rewrite(artifact, members)
    message = refused(artifact, repr(member))
    assert any(w in message for w in ("SHA-256", "JSON", "format", "checksum")), message


def test_a_flipped_byte_in_the_zip_file_is_refused_naming_the_member(artifact):
    with zipfile.ZipFile(artifact) as zf:
        info = zf.getinfo("kernels/art_add.c")
    raw = bytearray(artifact.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode())  # past the local header
    raw[start + info.compress_size // 2] ^= 0x01
    artifact.write_bytes(bytes(raw))
    refused(artifact, "'kernels/art_add.c'")


@pytest.mark.parametrize("member", MEMBERS)
def test_a_missing_member_is_refused_naming_it(artifact, member):
    members = raw_members(artifact)
    del members[member]
    rewrite(artifact, members)
    refused(artifact, repr(member), "missing")


def test_an_unlisted_member_is_refused(artifact):
    rewrite(artifact, {**raw_members(artifact), "extra.bin": b"?"})
    refused(artifact, "'extra.bin'", "not listed")


def test_a_newer_format_version_is_refused(artifact):
    reseal(artifact, lambda manifest, members: manifest.update(format_version=2))
    refused(artifact, "'manifest.json'", "format version 2", "newer")


def test_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "model.zip"
    path.write_text("just text")
    refused(path, "not a readable zip")
    refused(tmp_path / "nowhere.zip", "not a readable zip")


def test_params_that_need_pickle_are_refused(artifact):
    def change(manifest, members):
        buf = io.BytesIO()
        np.savez(buf, w=np.array([{"evil": 1}, None], dtype=object))
        members["params.npz"] = buf.getvalue()

    reseal(artifact, change)
    refused(artifact, "'params.npz'", "'w'", "pickle")


@pytest.mark.parametrize("bad, reason, spec", [
    (np.zeros((4, 3), "float32"), "shape (4, 3)", "(3, 4)"),
    (np.zeros((3, 4), "float64"), "dtype float64", "float32")])
def test_params_that_do_not_fit_the_argument_specs_are_refused(artifact, bad, reason, spec):
    def change(manifest, members):
        npz = np.load(io.BytesIO(members["params.npz"]))
        buf = io.BytesIO()
        np.savez(buf, **{**{k: npz[k] for k in npz.files}, "w": bad})
        members["params.npz"] = buf.getvalue()

    reseal(artifact, change)
    refused(artifact, "'params.npz'", "'w'", reason, spec)


def test_a_missing_parameter_is_refused(artifact):
    def change(manifest, members):
        buf = io.BytesIO()
        np.savez(buf, x=np.zeros((2, 3), "float32"))
        members["params.npz"] = buf.getvalue()

    reseal(artifact, change)
    refused(artifact, "'params.npz'", "parameter 'w'")


def test_a_program_that_disagrees_with_the_manifest_is_refused(artifact):
    reseal(artifact, lambda manifest, members: manifest["args"]["w"].update(shape=[4, 3]))
    refused(artifact, "'program.json'", "'w'")


def test_inputs_of_the_wrong_shape_raise_shape_error(artifact):
    ex = runtime.load(artifact)
    with pytest.raises(ShapeError, match="'x' has shape \\(3, 2\\)"):
        ex.forward(x=np.zeros((3, 2), "float32"))


def test_unknown_backend_is_refused(artifact):
    with pytest.raises(BindError, match="'backend'"):
        runtime.load(artifact, backend="tpu")

