"""Reading an artifact zip with bounds: sizes, checksums, the manifest, signing, `.npy` headers.

Nothing is read before its size is known: a member's size declared in the zip's directory must
equal the size the manifest records and stay under a limit (MEMBER_LIMITS; for `params.npz`
a few times the parameter bytes the manifest's argument specs declare) before a byte of it is
decompressed, and the reader never returns more than that size. Member names come from a
closed pattern, so no `..` or absolute path; nothing is ever extracted to disk.

Signing: `write(..., key=b"...")` adds `manifest.hmac`, the HMAC-SHA256 of the manifest's
bytes (which hold every other member's SHA-256); `read(path, key=...)` refuses an artifact
without a valid one, comparing in constant time before the manifest is parsed.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from runtime.errors import ArtifactError, fmt_shape

FORMAT = "symrnn-artifact"
FORMAT_VERSION = 2
MANIFEST, SIGNATURE, SYMBOL, PARAMS = "manifest.json", "manifest.hmac", "symbol.json", "params.npz"
PROGRAMS = {"train": "program.json", "infer": "program_infer.json"}
NAME = re.compile(r"(manifest\.json|manifest\.hmac|symbol\.json|program(_infer)?\.json|"
                  r"params\.npz|train/(state\.json|arrays\.npz)|"  # + a training checkpoint's
                  r"kernels/[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)?\.(json|c|cu))")
MIB = 1 << 20
MEMBER_LIMITS = {MANIFEST: 16 * MIB, SIGNATURE: 256, SYMBOL: 256 * MIB, "kernels/": 4 * MIB,
                 "program": 512 * MIB}
NPY_HEADER = 1 << 16  # bytes of one array's .npy header at most
_ZEROS = "0" * 64
# What zipfile raises on a malformed archive, besides BadZipFile.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError,
              struct.error, KeyError, IndexError, OverflowError)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signature(key: bytes, manifest: bytes) -> bytes:
    return hmac.new(_key(key), manifest, hashlib.sha256).hexdigest().encode()


def _key(key) -> bytes:
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, (bytes, bytearray)) or not key:
        raise ArtifactError(f"'key' must be non-empty bytes or str, given {type(key).__name__}")
    return bytes(key)


def read(path, key=None) -> tuple[dict, dict]:
    """`(manifest, {member: bytes})` of the artifact at `path` (or in a binary file object),
    every size and checksum (and, with `key`, the signature) verified."""
    where = f"artifact {str(path)!r}"
    key = None if key is None else _key(key)
    _exists(path, where)
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as e:
        raise ArtifactError(f"{where} is not a symrnn artifact: not a readable zip file "
                            f"({e})") from None
    with zf:
        infos = _directory(zf, where)
        raw = _read_member(zf, where, infos, MANIFEST, MEMBER_LIMITS[MANIFEST])
        if key is not None:
            _verify_signature(zf, where, infos, raw, key)
        manifest = _manifest(where, raw)
        listed, sizes = manifest["members"], manifest["sizes"]
        unlisted = sorted(set(infos) - set(listed) - {MANIFEST, SIGNATURE})
        if unlisted:
            raise ArtifactError(f"{where}: member {unlisted[0]!r} is not listed in "
                                f"{MANIFEST}, so it cannot be verified")
        limits = {m: _limit(m, manifest) for m in listed}
        members = {}
        for name, digest in sorted(listed.items()):
            if name not in infos:
                raise ArtifactError(f"{where}: member {name!r} is missing (listed in "
                                    f"{MANIFEST})")
            declared = sizes.get(name)
            if declared != infos[name].file_size:
                raise ArtifactError(f"{where}: member {name!r} is {infos[name].file_size} bytes "
                                    f"in the zip, but {MANIFEST} records {declared}")
            data = _read_member(zf, where, infos, name, limits[name])
            if sha(data) != digest:
                raise ArtifactError(f"{where}: member {name!r} fails its SHA-256 check "
                                    f"({MANIFEST} records {str(digest)[:12]}..., the member "
                                    f"hashes to {sha(data)[:12]}...); it was changed after "
                                    f"export")
            members[name] = data
    return manifest, members


def _exists(path, where: str) -> None:
    if hasattr(path, "read"):  # a binary file object, as zipfile takes
        return
    p = Path(path)
    if p.is_dir():
        raise ArtifactError(f"{where} is a folder; an artifact is one .zip file written by "
                            f"export")
    if not p.exists():
        raise ArtifactError(f"{where} is not a symrnn artifact: not a readable zip file "
                            f"(no such file)")


def _directory(zf: zipfile.ZipFile, where: str) -> dict:
    """{name: ZipInfo}, each name one of the artifact's, each once."""
    infos = {}
    for info in zf.infolist():
        if not NAME.fullmatch(info.filename) or ".." in info.filename:
            raise ArtifactError(f"{where}: member {info.filename!r} is not a name an artifact "
                                f"holds")
        if info.filename in infos:
            raise ArtifactError(f"{where}: member {info.filename!r} appears more than once")
        infos[info.filename] = info
    if MANIFEST not in infos:
        raise ArtifactError(f"{where}: member {MANIFEST!r} is missing; this zip was not "
                            f"written by symrnn's export")
    return infos


def _limit(name: str, manifest: dict) -> int:
    if name == PARAMS:
        return params_limit(manifest)
    for prefix, limit in MEMBER_LIMITS.items():
        if name.startswith(prefix):
            return limit
    return MEMBER_LIMITS["kernels/"]


def params_limit(manifest: dict) -> int:
    """What `params.npz` may hold: the argument bytes the manifest declares, twice, plus room
    for the zip's and the headers' bytes."""
    nbytes = 0
    for name, spec in manifest["args"].items():
        nbytes += arg_bytes(spec, f"member {MANIFEST!r}: argument {name!r}")
    return 2 * nbytes + (len(manifest["args"]) + 1) * (NPY_HEADER + 1024)


def arg_bytes(spec, where: str) -> int:
    try:
        shape, dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
        ok = len(shape) <= 8 and all(type(d) is int and 0 <= d < 1 << 40 for d in shape)
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"{where} has a malformed spec ({type(e).__name__}: {e})") from None
    if not ok or dtype.name not in ("float32", "float64", "int32", "int64"):
        raise ArtifactError(f"{where} has spec {spec!r}: expected a shape of sizes and a dtype "
                            f"float32, float64, int32 or int64")
    return math.prod(shape) * dtype.itemsize


def _read_member(zf, where: str, infos: dict, name: str, limit: int) -> bytes:
    if name not in infos:
        raise ArtifactError(f"{where}: member {name!r} is missing")
    info = infos[name]
    if info.file_size > limit:
        raise ArtifactError(f"{where}: member {name!r} declares {info.file_size} bytes, more "
                            f"than the {limit} it may hold")
    try:
        with zf.open(info) as f:  # ZipExtFile stops at file_size and checks the CRC
            data = f.read(limit + 1)
    except ZIP_ERRORS as e:
        raise ArtifactError(f"{where}: member {name!r} is damaged in the zip ({e})") from None
    if len(data) != info.file_size:
        raise ArtifactError(f"{where}: member {name!r} holds {len(data)} bytes, its zip entry "
                            f"declares {info.file_size}")
    return data


def _verify_signature(zf, where: str, infos: dict, raw: bytes, key) -> None:
    if SIGNATURE not in infos:
        raise ArtifactError(f"{where}: member {SIGNATURE!r} is missing: the artifact is not "
                            f"signed, and load(key=...) accepts only signed artifacts")
    given = _read_member(zf, where, infos, SIGNATURE, MEMBER_LIMITS[SIGNATURE]).strip()
    if not hmac.compare_digest(given, signature(key, raw)):
        raise ArtifactError(f"{where}: member {SIGNATURE!r} does not match the manifest under "
                            f"this key: the artifact was changed, or signed with another key")


def parse_json(where: str, member: str, raw: bytes):
    try:
        return json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{where}: member {member!r} is not valid JSON ({e})") from None
    except RecursionError:
        raise ArtifactError(f"{where}: member {member!r} is nested too deeply to be a "
                            f"{member}") from None


def _manifest(where: str, raw: bytes) -> dict:
    bad = f"{where}: member {MANIFEST!r}"
    m = parse_json(where, MANIFEST, raw)
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        got = m.get("format") if isinstance(m, dict) else type(m).__name__
        raise ArtifactError(f"{bad} declares format {got!r}, expected {FORMAT!r}")
    version = m.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArtifactError(f"{bad} has format version {version!r}, expected an integer "
                            f"from 1 to {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise ArtifactError(f"{bad} has format version {version}, newer than this runtime "
                            f"reads ({FORMAT_VERSION}); upgrade symrnn to load it")
    if version < FORMAT_VERSION:
        raise ArtifactError(f"{bad} has format version {version}, which carries kernels as C "
                            f"source; this runtime reads version {FORMAT_VERSION} only (kernels "
                            f"as IR, never foreign code): export the model again")
    digest = m.get("self_sha256")
    if not isinstance(digest, str):
        raise ArtifactError(f"{bad} has no self_sha256 checksum")
    text = raw.decode()
    own = sha(text.replace(f'"self_sha256": "{digest}"', f'"self_sha256": "{_ZEROS}"', 1)
              .encode())
    if own != digest:
        raise ArtifactError(f"{bad} fails its SHA-256 check (records {digest[:12]}..., hashes "
                            f"to {own[:12]}...); it was changed after export")
    _manifest_fields(bad, m)
    return m


def _manifest_fields(bad: str, m: dict) -> None:
    need = {"members": dict, "sizes": dict, "programs": dict, "kernels": dict, "args": dict,
            "inputs": list, "params": list, "outputs": list, "grad_req": dict, "seed": int}
    wrong = [k for k, t in need.items() if not isinstance(m.get(k), t)]
    if wrong or "train" not in m["programs"]:
        raise ArtifactError(f"{bad} lacks a well-formed {(wrong or ['programs.train'])[0]!r} "
                            f"entry")
    if any(not isinstance(v, str) for v in m["members"].values()) or \
            any(type(v) is not int for v in m["sizes"].values()):
        raise ArtifactError(f"{bad} has a malformed 'members' or 'sizes' entry")
    odd = [r for r, member in m["programs"].items() if PROGRAMS.get(r) != member]
    if odd:
        raise ArtifactError(f"{bad}: entry 'programs.{odd[0]}' is not one of {PROGRAMS}")


# ---- params.npz ---------------------------------------------------------------------------
def read_params(where: str, data: bytes, specs: dict) -> dict:
    """{name: array} from `params.npz`, each `.npy` header checked against `specs` ({name:
    (shape, dtype)}) before its data is allocated; nothing is unpickled."""
    bad = f"{where}: member {PARAMS!r}"
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except ZIP_ERRORS as e:
        raise ArtifactError(f"{bad} is not a readable .npz file ({e})") from None
    params = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if name not in specs or not info.filename.endswith(".npy") or name in params:
            raise ArtifactError(f"{bad}: array {name!r} is not an argument of the program "
                                f"(or appears twice); the arguments are {list(specs)}")
        params[name] = _array(zf, info, f"{bad}: array {name!r}", specs[name])
    return params


def _array(zf, info, what: str, spec) -> np.ndarray:
    shape, dtype = tuple(spec[0]), np.dtype(spec[1])
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size > nbytes + NPY_HEADER:
        raise ArtifactError(f"{what} declares {info.file_size} bytes; its spec "
                            f"{fmt_shape(shape)} {dtype} holds {nbytes}")
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            got_shape, fortran, got = read_header(f, max_header_size=NPY_HEADER)
            if got.hasobject:
                raise ArtifactError(f"{what} has dtype {got}, which needs pickle to load; "
                                    f"artifacts are never unpickled")
            _same_spec(what, tuple(got_shape), got, shape, dtype, fortran)
            raw = f.read(nbytes + 1)
    except ArtifactError:
        raise
    except (*ZIP_ERRORS, TypeError, SyntaxError) as e:
        raise ArtifactError(f"{what} is not a .npy array ({type(e).__name__}: {e})") from None
    if len(raw) != nbytes:
        raise ArtifactError(f"{what} holds {len(raw)} bytes of data; its header declares "
                            f"{nbytes}")
    return np.frombuffer(raw, dtype).reshape(shape).copy()


def _same_spec(what, got_shape, got, shape, dtype, fortran) -> None:
    if got_shape != shape:
        raise ArtifactError(f"{what} has shape {fmt_shape(got_shape)} but the program's "
                            f"argument spec is {fmt_shape(shape)}")
    if got != dtype:
        raise ArtifactError(f"{what} has dtype {got} but the program's argument spec is "
                            f"{dtype}")
    if fortran and len(shape) > 1:
        raise ArtifactError(f"{what} is stored in Fortran order; artifacts hold C-order arrays")
