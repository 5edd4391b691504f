"""The artifact format: one zip holding everything needed to run a compiled program.

    >>> ex.export("lstm.zip")                      # doctest: +SKIP
    >>> ex2 = runtime.load("lstm.zip")             # runtime alone: no symrnn, no codegen

Members (format version 1):

- `manifest.json`: `format` ("symrnn-artifact"), `format_version` (an int; a loader refuses a
  newer one), `producer` ({"name", "version"}: passed in by the exporter, since `runtime`
  never imports `symrnn`), `members` ({member: SHA-256 hex} for every other member),
  `programs` ({"train": "program.json"} plus "infer": "program_infer.json" for an executor
  with a separate inference program), `kernels` ({program member: {kernel: {"c": member,
  "cuda": member}}}), `args` ({name: {"shape", "dtype"}}), `inputs` (the arguments given
  shapes at bind: data, not weights), `params` (the other arguments), `outputs`
  ([{"name", "shape", "dtype"}]), `grad_req` and `seed` (the executor's), and `self_sha256`:
  the SHA-256 of the manifest's own bytes with this field's value written as 64 zeros, so
  that a changed byte anywhere in the manifest is caught too.
- `symbol.json`: the user's graph (`Symbol.tojson()`), for reference and re-binding; the loader
  verifies it but does not need it.
- `program.json`: the program the executor trains with (`Program.to_json()`); with a
  `DualEngine` also `program_infer.json`, the forward-only program that `forward(is_train=
  False)` runs, so that a loaded executor runs exactly the programs its source ran. Kernel
  sources are blanked in these members: they live, once each, in
- `kernels/NAME.c`, `kernels/NAME.cu`: every kernel's C and CUDA rendering. The loader takes
  the sources from these members, never from the program.
- `params.npz`: every argument's current value (inputs included), as `.npy` files written with
  `allow_pickle=False` and read with `np.load(allow_pickle=False)`.

Loading refuses with `ArtifactError`, naming the member and the reason: not a zip, a missing
or unlisted member, a bad checksum or CRC, a newer format version, a malformed program, a
parameter that needs pickle or whose shape or dtype differs from the program's argument spec.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import zipfile
import zlib
from dataclasses import replace

import numpy as np

from runtime.errors import ArtifactError, fmt_shape
from runtime.program import Program

FORMAT = "symrnn-artifact"
FORMAT_VERSION = 1
MANIFEST, SYMBOL, PARAMS = "manifest.json", "symbol.json", "params.npz"
PROGRAMS = {"train": "program.json", "infer": "program_infer.json"}
_ZEROS = "0" * 64


# ---- writing ------------------------------------------------------------------------------
def export_executor(ex, path, symbol_json: str | None = None, producer: str | None = None):
    """Writes executor `ex` to `path`; returns the manifest. `symbol_json` defaults to the
    executor's symbol (`ex.symbol`, set at bind), `producer` to the running symrnn's version."""
    engine = ex.engine
    if hasattr(engine, "train") and hasattr(engine, "infer"):
        programs = {"train": engine.train.program, "infer": engine.infer.program}
    else:
        programs = {"train": getattr(engine, "program", None)}
    if programs["train"] is None:
        raise ArtifactError(f"export: this executor's engine ({type(engine).__name__}) runs no "
                            f"compiled program; bind with backend='cpu' to export")
    if symbol_json is None:
        symbol = getattr(ex, "symbol", None)
        symbol_json = symbol.tojson() if symbol is not None else getattr(ex, "symbol_json", None)
    if symbol_json is None:
        raise ArtifactError("export: the executor has no symbol to write as 'symbol.json'; "
                            "pass symbol_json=Symbol.tojson()")
    if producer is None:  # read, never imported: runtime does not depend on symrnn
        producer = getattr(sys.modules.get("symrnn"), "__version__", None)
        producer = producer or getattr(ex, "manifest", {}).get("producer", {}).get("version")
    return save(path, programs, ex.arg_dict, symbol_json=symbol_json,
                producer=str(producer or "unknown"), inputs=getattr(ex, "input_names", None),
                grad_req=ex.grad_req, seed=ex.seed, outputs=ex.engine.out_specs)


def save(path, programs: dict, args: dict, *, symbol_json: str, producer: str, inputs=None,
         grad_req=None, seed: int = 0, outputs=None) -> dict:
    """Writes `programs` ({"train": Program, "infer": Program?}) and argument values `args`
    ({name: array}) to `path`; returns the manifest."""
    train = programs["train"]
    inputs = [n for n in (inputs or ()) if n in train.args]
    members = {SYMBOL: symbol_json.encode(), PARAMS: _npz(args)}
    kernel_map, sources = {}, {}
    for role, program in programs.items():
        if program is None:
            continue
        doc = json.loads(program.to_json())
        member = PROGRAMS[role]
        kernel_map[member] = {}
        for name, k in sorted(doc["kernels"].items()):
            kernel_map[member][name] = {
                "c": _source_member(sources, name, ".c", k.pop("c_source")),
                "cuda": _source_member(sources, name, ".cu", k.pop("cuda_source"))}
            k["c_source"] = k["cuda_source"] = ""
        members[member] = json.dumps(doc, indent=1, sort_keys=True).encode()
    members.update({m: s.encode() for m, s in sources.items()})
    if outputs is None:
        outputs = [(n, v.shape, train.buffers[v.buffer].dtype) for n, v in train.outputs]
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "producer": {"name": "symrnn", "version": producer},
        "programs": {r: PROGRAMS[r] for r, p in programs.items() if p is not None},
        "kernels": kernel_map,
        "args": {n: {"shape": list(s), "dtype": d} for n, (s, d) in train.args.items()},
        "inputs": inputs, "params": [n for n in train.args if n not in inputs],
        "outputs": [{"name": n, "shape": list(s), "dtype": str(d)} for n, s, d in outputs],
        "grad_req": dict(grad_req or {}), "seed": int(seed),
    }
    return write(path, manifest, members)


def write(path, manifest: dict, members: dict) -> dict:
    """Writes `members` ({name: bytes}) and `manifest` (its `members` checksums and its own
    `self_sha256` filled in here) as one zip; returns the manifest as written."""
    manifest = {**manifest, "members": {m: _sha(b) for m, b in sorted(members.items())},
                "self_sha256": _ZEROS}
    text = json.dumps(manifest, indent=1, sort_keys=True)
    digest = _sha(text.encode())
    text = text.replace(f'"self_sha256": "{_ZEROS}"', f'"self_sha256": "{digest}"', 1)
    manifest["self_sha256"] = digest
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in [(MANIFEST, text.encode()), *sorted(members.items())]:
            zf.writestr(_info(name, zipfile.ZIP_DEFLATED), data)
    return manifest


def _info(name: str, compression: int) -> zipfile.ZipInfo:
    """A member with a fixed date, so that the same export gives the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type, info.external_attr = compression, 0o644 << 16
    return info


def _npz(args: dict) -> bytes:
    """`np.savez`'s format, written by hand so that no array is pickled and an argument may
    be named `file`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, value in args.items():
            with zf.open(_info(f"{name}.npy", zipfile.ZIP_STORED), "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(value), allow_pickle=False)
    return buf.getvalue()


def _source_member(sources: dict, kernel: str, ext: str, text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", kernel) or "kernel"
    member, n = f"kernels/{stem}{ext}", 1
    while sources.get(member, text) != text:  # same name, different source: a new member
        member, n = f"kernels/{stem}_{n}{ext}", n + 1
    sources[member] = text
    return member


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- reading ------------------------------------------------------------------------------
def read(path) -> tuple[dict, dict]:
    """`(manifest, {member: bytes})` of the artifact at `path`, every checksum verified."""
    where = f"artifact {str(path)!r}"
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ArtifactError(f"{where} is not a symrnn artifact: not a readable zip file "
                            f"({e})") from None
    with zf:
        names = zf.namelist()
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ArtifactError(f"{where}: member {twice[0]!r} appears more than once")
        if MANIFEST not in names:
            raise ArtifactError(f"{where}: member {MANIFEST!r} is missing; this zip was not "
                                f"written by symrnn's export")
        manifest = _manifest(where, _read_member(zf, where, MANIFEST))
        listed = manifest["members"]
        unlisted = sorted(set(names) - set(listed) - {MANIFEST})
        if unlisted:
            raise ArtifactError(f"{where}: member {unlisted[0]!r} is not listed in "
                                f"{MANIFEST}, so it cannot be verified")
        members = {}
        for name, digest in sorted(listed.items()):
            if name not in names:
                raise ArtifactError(f"{where}: member {name!r} is missing (listed in "
                                    f"{MANIFEST})")
            data = _read_member(zf, where, name)
            if _sha(data) != digest:
                raise ArtifactError(f"{where}: member {name!r} fails its SHA-256 check "
                                    f"({MANIFEST} records {digest[:12]}..., the member hashes "
                                    f"to {_sha(data)[:12]}...); it was changed after export")
            members[name] = data
    return manifest, members


def _read_member(zf, where: str, name: str) -> bytes:
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise ArtifactError(f"{where}: member {name!r} is damaged in the zip ({e})") from None


def _manifest(where: str, raw: bytes) -> dict:
    bad = f"{where}: member {MANIFEST!r}"
    try:
        text = raw.decode()
        m = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{bad} is not valid JSON ({e})") from None
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
    digest = m.get("self_sha256")
    if not isinstance(digest, str):
        raise ArtifactError(f"{bad} has no self_sha256 checksum")
    own = _sha(text.replace(f'"self_sha256": "{digest}"', f'"self_sha256": "{_ZEROS}"', 1)
               .encode())
    if own != digest:
        raise ArtifactError(f"{bad} fails its SHA-256 check (records {digest[:12]}..., hashes "
                            f"to {own[:12]}...); it was changed after export")
    need = {"members": dict, "programs": dict, "kernels": dict, "args": dict, "inputs": list,
            "params": list, "outputs": list, "grad_req": dict, "seed": int}
    wrong = [k for k, t in need.items() if not isinstance(m.get(k), t)]
    if wrong or "train" not in m["programs"]:
        raise ArtifactError(f"{bad} lacks a well-formed {(wrong or ['programs.train'])[0]!r} "
                            f"entry")
    return m


# ---- loading ------------------------------------------------------------------------------
def load(path, backend: str = "cpu", grad_req=None, seed: int | None = None,
         **engine_options):
    """An `Executor` running the artifact at `path` with `runtime` alone: `backend` 'cpu'
    (CpuEngine) or 'cuda' (CudaEngine, given the training program; `engine_options` go to the
    engine, e.g. `device=`). `grad_req` and `seed` default to the exporter's. The
    manifest, the symbol's JSON and the input names are kept as `ex.manifest`,
    `ex.symbol_json` and `ex.input_names`."""
    from runtime.errors import BindError
    from runtime.executor import Executor, normalize_grad_req

    if backend not in ("cpu", "cuda"):
        raise BindError(f"load: 'backend' must be 'cpu' or 'cuda', given {backend!r}")
    manifest, members = read(path)
    where = f"artifact {str(path)!r}"
    programs = {role: _program(where, manifest, members, role) for role in manifest["programs"]}
    train = programs["train"]
    params = _params(where, manifest, members, train)
    engine = _engine(where, backend, programs, engine_options)
    names = list(train.args)
    reqs = normalize_grad_req(manifest["grad_req"] if grad_req is None else grad_req, names)
    reqs = {n: (r if n in train.grads else "null") for n, r in reqs.items()}
    ex = Executor(engine, reqs, manifest["seed"] if seed is None else seed, args=params)
    ex.manifest, ex.symbol_json = manifest, members[SYMBOL].decode(errors="replace")
    ex.input_names = list(manifest["inputs"])
    return ex


def _program(where: str, manifest: dict, members: dict, role: str) -> Program:
    member = manifest["programs"][role]
    if member not in members:
        raise ArtifactError(f"{where}: member {member!r} (the {role} program) is missing")
    try:
        program = Program.from_json(members[member].decode())
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ArtifactError(f"{where}: member {member!r} is not a valid program "
                            f"({type(e).__name__}: {e})") from None
    table = manifest["kernels"].get(member, {})
    for name, kernel in program.kernels.items():
        entry = table.get(name)
        if not isinstance(entry, dict) or not {"c", "cuda"} <= set(entry):
            raise ArtifactError(f"{where}: member {member!r} uses kernel {name!r}, whose "
                                f"source members {MANIFEST} does not list")
        text = {}
        for lang in ("c", "cuda"):
            src = entry[lang]
            if src not in members:
                raise ArtifactError(f"{where}: member {src!r} (kernel {name!r}) is missing")
            try:
                text[lang] = members[src].decode()
            except UnicodeDecodeError as e:
                raise ArtifactError(f"{where}: member {src!r} is not UTF-8 text ({e})") from None
        program.kernels[name] = replace(kernel, c_source=text["c"], cuda_source=text["cuda"])
    try:
        want = {n: (tuple(a["shape"]), a["dtype"]) for n, a in manifest["args"].items()}
    except (KeyError, TypeError) as e:
        raise ArtifactError(f"{where}: member {MANIFEST!r} has a malformed 'args' entry "
                            f"({type(e).__name__}: {e})") from None
    if program.args != want:
        diff = next(n for n in sorted({*program.args, *want})
                    if program.args.get(n) != want.get(n))
        raise ArtifactError(f"{where}: member {member!r} declares argument {diff!r} as "
                            f"{program.args.get(diff)}, but {MANIFEST} says {want.get(diff)}")
    return program


def _params(where: str, manifest: dict, members: dict, program: Program) -> dict:
    bad = f"{where}: member {PARAMS!r}"
    try:
        npz = np.load(io.BytesIO(members[PARAMS]), allow_pickle=False)
        files = list(npz.files)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{bad} is not a readable .npz file ({e})") from None
    params = {}
    for name in files:
        try:
            value = npz[name]
        except ValueError as e:  # numpy: object arrays cannot be loaded without pickle
            raise ArtifactError(f"{bad}: array {name!r} needs pickle to load ({e}); artifacts "
                                f"are never unpickled") from None
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise ArtifactError(f"{bad}: array {name!r} is unreadable ({e})") from None
        if name not in program.args:
            raise ArtifactError(f"{bad}: array {name!r} is not an argument of the program; "
                                f"the arguments are {list(program.args)}")
        shape, dtype = program.args[name]
        if value.shape != tuple(shape):
            raise ArtifactError(f"{bad}: array {name!r} has shape {fmt_shape(value.shape)} but "
                                f"the program's argument spec is {fmt_shape(tuple(shape))}")
        if value.dtype != np.dtype(dtype):
            raise ArtifactError(f"{bad}: array {name!r} has dtype {value.dtype} but the "
                                f"program's argument spec is {dtype}")
        params[name] = value
    missing = [n for n in manifest["params"] if n not in params]
    if missing:
        raise ArtifactError(f"{bad} has no array for parameter {missing[0]!r}")
    return params


def _engine(where: str, backend: str, programs: dict, options: dict):
    if backend == "cuda":
        from runtime.errors import BackendUnavailable

        try:  # CudaEngine raises BackendUnavailable itself, saying what is missing
            from runtime.cuda import CudaEngine

            return CudaEngine(programs["train"], **options)
        except ModuleNotFoundError as e:
            raise BackendUnavailable(f"load: backend 'cuda' needs the module {e.name!r}, "
                                     f"which is not installed") from None
    from runtime.cpu import CpuEngine

    try:
        train = CpuEngine(programs["train"], **options)
    except ValueError as e:
        if isinstance(e, ArtifactError) or type(e) is not ValueError:
            raise
        raise ArtifactError(f"{where}: member {PROGRAMS['train']!r} describes a program the "
                            f"CPU engine refuses ({e})") from None
    if "infer" not in programs:
        return train
    from runtime.dual import DualEngine

    infer = programs["infer"]
    return DualEngine(train, lambda: CpuEngine(infer, **options))
