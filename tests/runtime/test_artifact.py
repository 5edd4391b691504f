"""The artifact format on a hand-built Program: round trip, manifest, and every refusal.

The second half holds forged and hostile artifacts, each refused with an ArtifactError naming
the member: the cases of issue 18 (a program edited with its checksums recomputed, size bombs,
foreign code), the artifact faults of issue 17 (bad names, declared sizes, garbage) and the
loader errors of issue 19 (deep nesting, garbage `.npy`, a folder).

The program is `out = dropout(x @ w + b)` (inverted dropout at p=0.5 in training, so that a
seed shows in the output) with backward `grad_w = x^T @ head_grad`.
"""
import io
import json
import shutil
import tracemalloc
import zipfile

import numpy as np
import pytest

import runtime
from runtime.artifact import MANIFEST, read, save, write
from runtime.artifact_read import _ZEROS as ZEROS
from runtime.artifact_read import sha
from runtime.cpu import CpuEngine
from runtime.errors import ArtifactError, BindError, ShapeError
from runtime.executor import Executor
from runtime.kernel_ir import Compute, KernelIR, Load, Store, ir_to_dict
from runtime.program import Buffer, Program, Step, View
from runtime.render import kernel_from_ir

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

# out = dropout(y + b): in training the seed and the mask id (7) show in the output.
IR = KernelIR("float32", 2, 1, 1, (
    Load(0, 0), Load(1, 1), Compute(2, "add", (0, 1)),
    Compute(3, "dropout", (2,), (("mask", 0), ("p", 0.5))), Store(0, 3)))
KERNEL = kernel_from_ir(IR)
K = KERNEL.name


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
             Step("kernel", "forward", "out", [y, b], [out], {"kernel": K, "masks": (7,)}),
             Step("gemm", "backward", "grad_w", [x, hg], [gw], {"trans_a": True})]
    return Program(f32, {"x": ((2, 3), f32), "w": ((3, 4), f32), "b": ((2, 4), f32)},
                   [("out", out)], {"w": gw}, [("out", "hg")], buffers, steps,
                   {K: KERNEL})


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



# ==== forged and hostile artifacts ==========================================================
def forge(path, edit, member="program.json"):
    """Applies `edit(doc)` to the JSON of `member` and reseals the artifact."""
    def change(manifest, members):
        doc = json.loads(members[member])
        edit(doc)
        members[member] = json.dumps(doc).encode()

    reseal(path, change)


def step(doc, i):
    return doc["steps"][i]


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
}


@pytest.mark.parametrize("case", sorted(FORGED_IR))
def test_a_forged_kernel_ir_is_refused_naming_its_member(artifact, case):
    forge(artifact, FORGED_IR[case], member=f"kernels/{K}.json")
    refused(artifact, f"'kernels/{K}.json'")


def test_an_ir_that_changes_the_kernel_is_refused_by_its_name(artifact):
    """An IR edited into another valid kernel (p 0.5 -> 0.25) no longer hashes to its name."""
    forge(artifact, lambda d: d["body"][3][4].__setitem__(1, ["p", 0.25]),
          member=f"kernels/{K}.json")
    refused(artifact, f"kernel {K!r}", "hashes to the name")


# ---- sizes ------------------------------------------------------------------------------------
def test_a_member_larger_than_its_limit_is_refused_before_decompression(artifact):
    """8 MiB of zeros (8 KB compressed) as a kernel source: refused from its declared size,
    with far less than 8 MiB allocated."""
    reseal(artifact, lambda manifest, members: members.update(
        {f"kernels/{K}.c": bytes(8 << 20)}))
    tracemalloc.start()
    try:
        message = refused(artifact, f"'kernels/{K}.c'", "declares 8388608 bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, (peak, message)


def test_a_declared_size_far_larger_than_the_member_is_refused(artifact):
    """The manifest records 1e12 bytes for symbol.json (its self-checksum recomputed)."""
    members = raw_members(artifact)
    doc = json.loads(members[MANIFEST])
    doc["sizes"]["symbol.json"] = 10**12
    doc["self_sha256"] = ZEROS
    text = json.dumps(doc, indent=1, sort_keys=True)
    text = text.replace(f'"self_sha256": "{ZEROS}"', f'"self_sha256": "{sha(text.encode())}"')
    rewrite(artifact, {**members, MANIFEST: text.encode()})
    refused(artifact, "'symbol.json'", "records 1000000000000")


def test_a_zip_entry_that_lies_about_its_size_is_refused(artifact):
    """The central directory declares 1e9 more bytes than symbol.json holds."""
    raw = bytearray(artifact.read_bytes())
    with zipfile.ZipFile(artifact) as zf:
        info = zf.getinfo("symbol.json")
    pos = raw.rfind(b"symbol.json") - 46  # its central record: the last mention
    assert raw[pos:pos + 4] == b"PK\x01\x02"
    raw[pos + 24:pos + 28] = (info.file_size + 10**9).to_bytes(4, "little")
    artifact.write_bytes(bytes(raw))
    refused(artifact, "'symbol.json'")


def test_a_1_gib_member_is_refused_by_its_limit_before_decompression(artifact):
    """symbol.json declared as 1 GiB by the zip and by the manifest alike: over its limit."""
    members = raw_members(artifact)
    doc = json.loads(members[MANIFEST])
    doc["sizes"]["symbol.json"], doc["self_sha256"] = 1 << 30, ZEROS
    text = json.dumps(doc, indent=1, sort_keys=True)
    text = text.replace(f'"self_sha256": "{ZEROS}"', f'"self_sha256": "{sha(text.encode())}"')
    rewrite(artifact, {**members, MANIFEST: text.encode()})
    raw = bytearray(artifact.read_bytes())
    pos = raw.rfind(b"symbol.json") - 46  # its central record: the last mention
    assert raw[pos:pos + 4] == b"PK\x01\x02"
    raw[pos + 24:pos + 28] = (1 << 30).to_bytes(4, "little")
    artifact.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        refused(artifact, "'symbol.json'", "declares 1073741824 bytes, more than")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def npz_with(members: dict, name: str, payload: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(members["params.npz"])) as old, \
            zipfile.ZipFile(buf, "w") as new:
        for n in old.namelist():
            new.writestr(n, payload if n == name else old.read(n))
    members["params.npz"] = buf.getvalue()


def npy_header(shape, descr="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("shape, words", [
    ((1 << 30,), "shape (1073741824,)"), ((10**5, 10**5, 10**5), "shape (100000, 100000")])
def test_npy_headers_are_checked_against_the_program_before_allocation(artifact, shape, words):
    reseal(artifact, lambda manifest, members: npz_with(members, "w.npy",
                                                        npy_header(shape) + bytes(64)))
    refused(artifact, "'params.npz'", "'w'", words)


def test_a_garbage_npy_is_reported_as_not_an_array(artifact):
    reseal(artifact, lambda manifest, members: npz_with(
        members, "w.npy", bytes(np.random.default_rng(0).integers(0, 256, 200, np.uint8))))
    message = refused(artifact, "'params.npz'", "'w'", "not a .npy array")
    assert "pickle" not in message


def test_an_npy_with_missing_data_is_refused(artifact):
    reseal(artifact, lambda manifest, members: npz_with(members, "w.npy",
                                                        npy_header((3, 4)) + bytes(20)))
    refused(artifact, "'params.npz'", "'w'", "holds 20 bytes")


# ---- names, nesting, folders ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.c", "/etc/evil", "kernels/../../x.c", "kernels\\x.c",
                                  "kernels/a/b.c"])
def test_member_names_outside_the_artifact_are_refused(artifact, tmp_path, name):
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    rewrite(artifact, {**raw_members(artifact), name: b"int x;"})
    refused(artifact, repr(name), "not a name an artifact holds")
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_a_manifest_of_garbage_is_refused(artifact):
    rewrite(artifact, {**raw_members(artifact), MANIFEST: bytes(range(256)) * 4})
    refused(artifact, "'manifest.json'", "not valid JSON")


@pytest.mark.parametrize("member", ["manifest.json", "program.json"])
def test_deeply_nested_json_is_refused(artifact, member):
    deep = b"[" * 100000 + b"]" * 100000
    if member == MANIFEST:
        rewrite(artifact, {**raw_members(artifact), MANIFEST: deep})
    else:
        reseal(artifact, lambda manifest, members: members.update({member: deep}))
    refused(artifact, repr(member))


def test_a_manifest_nested_1000_levels_deep_is_refused(artifact):
    text = '{"format": "symrnn-artifact", "format_version": 2, "x": ' + "[" * 1000 + \
        "]" * 1000 + "}"
    rewrite(artifact, {**raw_members(artifact), MANIFEST: text.encode()})
    refused(artifact, "'manifest.json'", "nested too deeply")


def test_a_folder_is_reported_as_a_folder(tmp_path):
    message = refused(tmp_path, "is a folder")
    assert "no such file" not in message


def test_a_missing_file_says_so(tmp_path):
    refused(tmp_path / "nowhere.zip", "no such file")


# ---- signing ----------------------------------------------------------------------------------
@pytest.fixture
def signed(tmp_path, source):
    path = tmp_path / "signed.zip"
    save(path, {"train": source.program}, source.arg_dict, symbol_json="{}", producer="0",
         inputs=["x"], grad_req=source.grad_req, seed=5, key=b"secret")
    return path


def test_a_signed_artifact_loads_with_its_key(signed, source):
    assert np.array_equal(runtime.load(signed, key=b"secret").forward()[0],
                          source.forward()[0])
    assert np.array_equal(runtime.load(signed, key="secret").forward()[0], source.forward()[0])


def test_another_key_is_refused(signed):
    with pytest.raises(ArtifactError, match="'manifest.hmac' does not match"):
        runtime.load(signed, key=b"other")


def test_an_unsigned_artifact_is_refused_when_a_key_is_given(artifact):
    with pytest.raises(ArtifactError, match="'manifest.hmac' is missing"):
        runtime.load(artifact, key=b"secret")


def test_a_signed_artifact_edited_and_resealed_is_refused(signed):
    """A forger recomputes every SHA-256 but cannot recompute the HMAC."""
    members = raw_members(signed)
    hmac_member = members.pop("manifest.hmac")
    manifest = json.loads(members.pop(MANIFEST))
    members["symbol.json"] = b'{"edited": true}'
    write(signed, {k: v for k, v in manifest.items() if k not in ("members", "sizes",
                                                                 "self_sha256")}, members)
    rewrite(signed, {**raw_members(signed), "manifest.hmac": hmac_member})
    with pytest.raises(ArtifactError, match="does not match"):
        runtime.load(signed, key=b"secret")


@pytest.mark.parametrize("key", [b"", 3])
def test_a_bad_key_is_refused(artifact, key):
    with pytest.raises(ArtifactError, match="'key'"):
        runtime.load(artifact, key=key)


# ==== fuzzing: flips, truncations, field edits ================================================
# A train and an inference program (the forward steps alone), so that program_infer.json is
# there to edit. Outputs are computed once; kernels compile once (the cache's memory hits).
def infer_program() -> Program:
    p = program()
    buffers = {n: b for n, b in p.buffers.items() if b.kind != "head_grad"}
    return Program(p.dtype, p.args, p.outputs, {}, [], buffers, p.steps_in("forward"),
                   p.kernels)


@pytest.fixture(scope="module")
def fuzz_case(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "small.zip"
    save(path, {"train": program(), "infer": infer_program()}, values(), symbol_json="{}",
         producer="0", inputs=["x"], grad_req={"w": "write"}, seed=5)
    return path.read_bytes(), results(runtime.load(path))


HEAD = np.random.default_rng(3).standard_normal((2, 4)).astype("float32")


def results(ex) -> list:
    out = [ex.forward()[0], ex.forward(is_train=True, seed=3)[0]]
    ex.backward(HEAD)
    return out + [ex.grad_dict["w"].copy()]


def outcome(data: bytes, want: list) -> str:
    """"refused" (an ArtifactError), "same" (loads, same outputs) or "DIFFERENT"; any other
    exception propagates."""
    try:
        ex = runtime.load(io.BytesIO(data))
    except ArtifactError:
        return "refused"
    got = results(ex)
    return "same" if all(np.array_equal(a, b) for a, b in zip(got, want)) else "DIFFERENT"


def tally(cases, want) -> dict:
    counts, odd = {}, []
    for label, data in cases:
        try:
            result = outcome(data, want)
        except Exception as e:  # noqa: BLE001 - what the fuzz looks for
            result = f"{type(e).__name__}: {e}"
        counts[result] = counts.get(result, 0) + 1
        if result not in ("refused", "same"):
            odd.append((label, result))
    print(f"\nfuzz outcomes: {counts}")
    assert not odd, odd[:10]
    return counts


def test_every_single_byte_flip_is_refused_or_harmless(fuzz_case):
    raw, want = fuzz_case
    flips = ((i, raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:]) for i in range(len(raw)))
    counts = tally(flips, want)
    assert sum(counts.values()) == len(raw) and counts["refused"] > 0.9 * len(raw)


def test_every_truncation_is_refused(fuzz_case):
    raw, want = fuzz_case
    counts = tally(((n, raw[:n]) for n in range(len(raw))), want)
    assert counts == {"refused": len(raw)}


HOSTILE = [-1, -5, 0, 1, 2, 3, 7, 2**31, 2**32, 2**40, 10**6, 10**13, -10**6, 1.5, 0.5, True,
           False, None, "", "shell", "__import__", "float16", "arena", "x", [], [1], {},
           {"op": "sum"}]


def edits(raw: bytes, count: int, seed: int = 0):
    """`count` artifacts, each with one random leaf of program_infer.json replaced by a
    hostile value, every checksum recomputed."""
    members = {}
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members.pop(MANIFEST))
    manifest = {k: v for k, v in manifest.items() if k not in ("members", "sizes", "self_sha256")}
    doc = json.loads(members["program_infer.json"])
    leaves = list(_leaves(doc, ()))
    rng = np.random.default_rng(seed)
    for _ in range(count):
        path = leaves[rng.integers(len(leaves))]
        value = HOSTILE[rng.integers(len(HOSTILE))]
        edited = json.loads(json.dumps(doc))
        target = edited
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        buf = io.BytesIO()
        write(buf, manifest, {**members, "program_infer.json": json.dumps(edited).encode()})
        yield (path, value), buf.getvalue()


def _leaves(doc, path):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    if path:
        yield path


def test_random_field_edits_of_the_inference_program_are_refused_or_harmless(fuzz_case):
    raw, want = fuzz_case
    counts = tally(edits(raw, 400), want)
    assert counts["refused"] > 200
