"""Hostile artifacts: size bombs, names outside the artifact, deep nesting, garbage `.npy`, a
folder (issues 17, 18, 19), signing, and the fuzz tests (every byte flip, every truncation,
random field edits), on the hand-built Program of tests/runtime/artifact_cases.py."""
import io
import json
import shutil
import tracemalloc
import zipfile

import numpy as np
import pytest

import runtime
from runtime.artifact import MANIFEST, save, write
from runtime.artifact_read import _ZEROS as ZEROS
from runtime.artifact_read import sha
from runtime.errors import ArtifactError
from runtime.program import Program
from tests.runtime.artifact_cases import (
    K,
    program,
    raw_members,
    refused,
    reseal,
    rewrite,
    values,
)

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


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
