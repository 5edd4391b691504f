"""The artifact format on a hand-built Program (tests/runtime/artifact_cases.py): round trip,
manifest, refusals, and forged programs and kernel IR (issue 18), each refused with an
ArtifactError naming the member."""
import io
import json
import shutil
import zipfile

import numpy as np
import pytest

import runtime
from runtime.artifact import read, save
from runtime.errors import ArtifactError, BindError, ShapeError
from runtime.kernel_ir import ir_to_dict
from tests.runtime.artifact_cases import (
    IR,
    KERNEL,
    K,
    forge,
    program,
    raw_members,
    refused,
    reseal,
    rewrite,
    step,
    values,
)

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


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
    assert manifest["format"] == "symrnn-artifact" and manifest["format_version"] == 2
    assert manifest["producer"] == {"name": "symrnn", "version": "9.9.9"}
    assert set(manifest["members"]) == set(members) == set(manifest["sizes"]) == {
        "symbol.json", "program.json", "params.npz", f"kernels/{K}.json", f"kernels/{K}.c",
        f"kernels/{K}.cu"}
    assert all(manifest["sizes"][m] == len(b) for m, b in members.items())
    assert manifest["programs"] == {"train": "program.json"}
    assert manifest["kernels"] == {"program.json": {K: {
        "ir": f"kernels/{K}.json", "c": f"kernels/{K}.c", "cuda": f"kernels/{K}.cu"}}}
    assert manifest["inputs"] == ["x"] and manifest["params"] == ["w", "b"]
    assert manifest["args"]["w"] == {"shape": [3, 4], "dtype": "float32"}
    assert manifest["outputs"] == [{"name": "out", "shape": [2, 4], "dtype": "float32"}]
    assert members[f"kernels/{K}.c"].decode() == KERNEL.c_source
    assert members[f"kernels/{K}.cu"].decode() == KERNEL.cuda_source
    assert json.loads(members[f"kernels/{K}.json"]) == ir_to_dict(IR)
    kernel = json.loads(members["program.json"])["kernels"][K]
    assert kernel["c_source"] == kernel["cuda_source"] == "" and kernel["ir"] is None
    npz = np.load(io.BytesIO(members["params.npz"]), allow_pickle=False)
    assert sorted(npz.files) == ["b", "w", "x"]


CONSTRUCTOR = b"""
#include <stdio.h>
__attribute__((constructor)) static void symrnn_evil(void)
{ FILE* f = fopen("%s", "w"); if (f) { fputs("ran", f); fclose(f); } }
"""


@pytest.mark.parametrize("ext", [".c", ".cu"])
def test_edited_kernel_sources_change_nothing_that_runs(artifact, source, tmp_path, ext):
    """A constructor that writes a file, checksums recomputed: it is never compiled, no file
    appears, and the outputs are those of the IR's rendering."""
    marker = tmp_path / f"constructor-ran{ext}"

    def change(manifest, members):
        members[f"kernels/{K}{ext}"] = (CONSTRUCTOR % str(marker).encode()
                                        + members[f"kernels/{K}{ext}"].replace(b"+", b"-"))

    reseal(artifact, change)
    ex = runtime.load(artifact)
    assert ex.program.kernels[K].c_source == KERNEL.c_source
    assert ex.program.kernels[K].cuda_source == KERNEL.cuda_source
    assert np.array_equal(ex.forward()[0], source.forward()[0])
    assert np.array_equal(ex.forward(is_train=True, seed=2)[0],
                          source.forward(is_train=True, seed=2)[0])
    assert not marker.exists()


def test_a_kernel_without_ir_cannot_be_exported(tmp_path, source):
    from dataclasses import replace

    p = program()
    p.kernels[K] = replace(KERNEL, ir=None)
    with pytest.raises(ArtifactError, match="carries no kernel IR"):
        save(tmp_path / "x.zip", {"train": p}, values(), symbol_json="{}", producer="0")


# ---- refusals ---------------------------------------------------------------------------------
MEMBERS = ["manifest.json", "symbol.json", "program.json", "params.npz", f"kernels/{K}.json",
           f"kernels/{K}.c", f"kernels/{K}.cu"]


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
        info = zf.getinfo(f"kernels/{K}.json")
    raw = bytearray(artifact.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode())  # past the local header
    raw[start + info.compress_size // 2] ^= 0x01
    artifact.write_bytes(bytes(raw))
    refused(artifact, f"'kernels/{K}.json'")


@pytest.mark.parametrize("member", MEMBERS)
def test_a_missing_member_is_refused_naming_it(artifact, member):
    members = raw_members(artifact)
    del members[member]
    rewrite(artifact, members)
    refused(artifact, repr(member), "missing")


def test_an_unlisted_member_is_refused(artifact):
    rewrite(artifact, {**raw_members(artifact), "kernels/extra.c": b"?"})
    refused(artifact, "'kernels/extra.c'", "not listed")


def test_extra_members_are_kept_and_checked_but_never_read(artifact, source):
    reseal(artifact, lambda manifest, members: members.update({"extra/run/notes.json": b"{}"}))
    x = np.ones((2, 3), "float32")
    assert np.array_equal(runtime.load(artifact).forward(x=x)[0], source.forward(x=x)[0])
    assert read(artifact)[1]["extra/run/notes.json"] == b"{}"
    members = raw_members(artifact)
    members["extra/run/notes.json"] = b"{1}"  # checksum no longer matches
    rewrite(artifact, members)
    refused(artifact, "'extra/run/notes.json'")
    rewrite(artifact, {**raw_members(artifact), "extra/../x": b"?"})
    refused(artifact, "'extra/../x'")


def test_a_newer_format_version_is_refused(artifact):
    reseal(artifact, lambda manifest, members: manifest.update(format_version=3))
    refused(artifact, "'manifest.json'", "format version 3", "newer")


def test_a_format_1_artifact_is_refused_with_a_format_version_error(artifact):
    """Format 1 carried kernels as C source to compile: refused, saying to export again."""
    def change(manifest, members):
        manifest.update(format_version=1)
        manifest["kernels"] = {"program.json": {K: {"c": f"kernels/{K}.c",
                                                    "cuda": f"kernels/{K}.cu"}}}
        del members[f"kernels/{K}.json"]

    reseal(artifact, change)
    refused(artifact, "'manifest.json'", "format version 1", "export the model again")


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


def test_load_runs_on_cuda_sim_and_agrees_with_the_cpu(artifact, source):
    """runtime.load(backend='cuda-sim'): the CUDA engine over the host simulation, built by
    runtime.engines as bind builds it."""
    from runtime.cuda import CudaEngine
    from runtime.cuda.sim import SimDevice

    ex = runtime.load(artifact, backend="cuda-sim")
    engine = getattr(ex.engine, "train", ex.engine)
    assert isinstance(engine, CudaEngine) and isinstance(engine.device, SimDevice)
    x = np.random.default_rng(1).standard_normal((2, 3)).astype("float32")
    np.testing.assert_allclose(ex.forward(is_train=True, x=x)[0],
                               source.forward(is_train=True, x=x)[0], rtol=1e-6)
    hg = np.random.default_rng(2).standard_normal((2, 4)).astype("float32")
    ex.backward(hg)
    source.backward(hg)
    np.testing.assert_allclose(ex.grad_dict["w"], source.grad_dict["w"], rtol=1e-5)
    assert not np.array_equal(ex.grad_dict["w"], 0)


def test_unknown_backend_is_refused(artifact):
    with pytest.raises(BindError, match="'backend'"):
        runtime.load(artifact, backend="tpu")



FORGED_PROGRAMS = {  # the cases: (edit, words the message holds)
    "rows 1e6": (lambda d: step(d, 1)["outputs"][0].update(rows=10**6), "step 1"),
    "ld -1e6": (lambda d: step(d, 0)["inputs"][0].update(ld=-10**6), "'ld'"),
    "offset -5": (lambda d: step(d, 0)["outputs"][0].update(offset=-5), "'offset'"),
    "arena of 1": (lambda d: d["buffers"]["arena"].update(size=1), "buffer 'arena'"),
    "arena of 1e13": (lambda d: d["buffers"]["arena"].update(size=10**13), "'size'"),
    "one more kernel input": (lambda d: step(d, 1)["inputs"].append(step(d, 1)["inputs"][0]),
                              "(inputs, outputs, masks)"),
    "op __import__": (lambda d: step(d, 2).update(kind="op", attrs={"op": "__import__"}),
                      "'attrs.op'"),
    "step kind shell": (lambda d: step(d, 0).update(kind="shell"), "'kind'"),
    "mask id 2**40": (lambda d: step(d, 1)["attrs"].update(masks=[2**40]), "mask id"),
    "output ld=0": (lambda d: step(d, 1)["outputs"][0].update(ld=0), "'ld'"),
    "program output ld=0": (lambda d: d["outputs"][0][1].update(ld=0), "output 0"),
    "float16 arena": (lambda d: d["buffers"]["arena"].update(dtype="float16"), "float16"),
    "float16 program": (lambda d: d.update(dtype="float16"), "float16"),
    "float rows": (lambda d: step(d, 1)["attrs"].update(rows=2.0), "'attrs.rows'"),
    "bool offset": (lambda d: step(d, 0)["inputs"][0].update(offset=True), "'offset'"),
    "unknown kernel": (lambda d: step(d, 1)["attrs"].update(kernel="libc_system"),
                       "'attrs.kernel'"),
    "gemm shapes": (lambda d: step(d, 0)["attrs"].update(trans_a=True), "multiplies"),
    "argument buffer size": (lambda d: d["buffers"]["w"].update(size=13), "buffer 'w'"),
    "head gradient of no output": (lambda d: d.update(head_grads=[["nope", "hg"]]),
                                   "'head_grads'"),
}


@pytest.mark.parametrize("case", sorted(FORGED_PROGRAMS))
def test_a_forged_program_is_refused_naming_member_and_field(artifact, case):
    edit, words = FORGED_PROGRAMS[case]
    forge(artifact, edit)
    refused(artifact, "'program.json'", words)


FORGED_IR = {
    "op __import__": lambda d: d["body"][2].__setitem__(2, "__import__"),
    "op system": lambda d: d["body"][2].__setitem__(2, "system"),
    "more inputs than the launch": lambda d: d.update(n_in=3),
    "a use before definition": lambda d: d["body"][2].__setitem__(3, [0, 9]),
    "an attribute outside the closed list": lambda d: d["body"][3][4].append(["code", "x"]),
    "a string as mask": lambda d: d["body"][3][4].__setitem__(0, ["mask", "0; system()"]),
    "float16": lambda d: d.update(dtype="float16"),
    "not a list": lambda d: d.update(body="abc"),
    # row reductions (layer norm): the reduction is from a closed list, its source defined
    "a reduce outside the closed list": lambda d: d["body"].insert(3, ["reduce", 9, "max", 2]),
    "a reduce of an undefined value": lambda d: d["body"].insert(3, ["reduce", 9, "sum", 8]),
    "a reduce without its source": lambda d: d["body"].insert(3, ["reduce", 9, "sum"]),
    "a reduce redefining a value": lambda d: d["body"].insert(3, ["reduce", 2, "sum", 0]),
}


@pytest.mark.parametrize("case", sorted(FORGED_IR))
def test_a_forged_kernel_ir_is_refused_naming_its_member(artifact, case):
    forge(artifact, FORGED_IR[case], member=f"kernels/{K}.json")
    refused(artifact, f"'kernels/{K}.json'")


def test_an_ir_with_a_valid_reduce_added_is_refused_by_its_name(artifact):
    """A well-formed reduce inserted into the IR renders, but no longer hashes to the name."""
    forge(artifact, lambda d: d["body"].insert(3, ["reduce", 9, "sum", 2]),
          member=f"kernels/{K}.json")
    refused(artifact, f"kernel {K!r}", "hashes to the name")


def test_an_ir_that_changes_the_kernel_is_refused_by_its_name(artifact):
    """An IR edited into another valid kernel (p 0.5 -> 0.25) no longer hashes to its name."""
    forge(artifact, lambda d: d["body"][3][4].__setitem__(1, ["p", 0.25]),
          member=f"kernels/{K}.json")
    refused(artifact, f"kernel {K!r}", "hashes to the name")
