"""The artifact format: one zip holding everything needed to run a compiled program.

    >>> ex.export("lstm.zip")                      # doctest: +SKIP
    >>> ex2 = runtime.load("lstm.zip")             # runtime alone: no symrnn, no codegen

Members (format version 2):

- `manifest.json`: `format` ("symrnn-artifact"), `format_version` (an int; a loader refuses
  any other), `producer` ({"name", "version"}: passed in by the exporter, since `runtime`
  never imports `symrnn`), `members` ({member: SHA-256 hex} for every other member), `sizes`
  ({member: bytes}), `programs` ({"train": "program.json"} plus "infer": "program_infer.json"
  for an executor with a separate inference program), `kernels` ({program member: {kernel:
  {"ir": member, "c": member, "cuda": member}}}), `args` ({name: {"shape", "dtype"}}),
  `inputs` (the arguments given shapes at bind: data, not weights), `params` (the other
  arguments), `outputs` ([{"name", "shape", "dtype"}]), `grad_req` and `seed` (the
  executor's), and `self_sha256`: the SHA-256 of the manifest's own bytes with this field's
  value written as 64 zeros, so that a changed byte anywhere in the manifest is caught too.
- `manifest.hmac` (only when exported with `key=`): HMAC-SHA256 of the manifest's bytes.
- `symbol.json`: the user's graph (`Symbol.tojson()`), for reference and re-binding; the loader
  verifies it but does not need it.
- `program.json` (and `program_infer.json`): the programs (`Program.to_json()`) the executor
  trains and infers with, so that a loaded executor runs exactly the programs its source ran.
  Kernel sources and IR are blanked in these members; each kernel is in
- `kernels/NAME.json`: its kernel IR (runtime.kernel_ir.ir_to_dict), the only form of a kernel
  the loader reads: it renders C and CUDA from it with runtime.render, so it never compiles
  source text taken from the artifact. `kernels/NAME.c` and `kernels/NAME.cu` are the same
  renderings, for people to read; changing them changes nothing that runs.
- `params.npz`: every argument's current value (inputs included), as `.npy` files; read
  header first, checked against the argument specs before any data is allocated.
- `extra/...` (optional): a writer's own data (symrnn train keeps its checkpoint state in
  `extra/train/`), listed, checksummed and size-bounded like every member; the loader never
  interprets it.

Loading refuses with `ArtifactError`, naming the member and the reason: not a zip, a missing,
unlisted, oversized or misnamed member, a bad checksum, CRC or signature, another format
version, a program outside its schema (runtime.program_check: the step and the field), a
kernel IR the renderer refuses, a parameter that needs pickle or whose shape or dtype differs
from the program's argument spec.
"""
from __future__ import annotations

import io
import json
import re
import sys
import zipfile
from dataclasses import replace

import numpy as np

from runtime.artifact_read import (
    _ZEROS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PARAMS,
    PROGRAMS,
    SIGNATURE,
    SYMBOL,
    parse_json,
    read,
    read_params,
    sha,
    signature,
)
from runtime.errors import ArtifactError
from runtime.kernel_ir import ir_from_dict
from runtime.program import Program
from runtime.program_check import ProgramInvalid, check_program

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "export_executor", "load", "read", "save",
           "write"]


# ---- writing ------------------------------------------------------------------------------
def export_executor(ex, path, symbol_json: str | None = None, producer: str | None = None,
                    key=None):
    """Writes executor `ex` to `path`; returns the manifest. `symbol_json` defaults to the
    executor's symbol (`ex.symbol`, set at bind), `producer` to the running symrnn's version;
    `key` signs the artifact (see runtime.artifact_read)."""
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
                grad_req=ex.grad_req, seed=ex.seed, outputs=ex.engine.out_specs, key=key)


def save(path, programs: dict, args: dict, *, symbol_json: str, producer: str, inputs=None,
         grad_req=None, seed: int = 0, outputs=None, key=None) -> dict:
    """Writes `programs` ({"train": Program, "infer": Program?}; no engine needed) and
    argument values `args` ({name: array}) to `path`; returns the manifest. Every kernel must
    carry its IR (codegen's kernels do); `key` signs the artifact."""
    programs = {r: p for r, p in programs.items() if p is not None}
    train = programs["train"]
    inputs = [n for n in (inputs or ()) if n in train.args]
    members = {SYMBOL: symbol_json.encode(), PARAMS: _npz(args)}
    kernel_map, sources = {}, {}
    for role, program in programs.items():
        member = PROGRAMS[role]
        members[member], kernel_map[member] = _program_member(program, sources)
    members.update({m: s.encode() for m, s in sources.items()})
    if outputs is None:
        outputs = [(n, v.shape, train.buffers[v.buffer].dtype) for n, v in train.outputs]
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "producer": {"name": "symrnn", "version": producer},
        "programs": {r: PROGRAMS[r] for r in programs},
        "kernels": kernel_map,
        "args": {n: {"shape": list(s), "dtype": d} for n, (s, d) in train.args.items()},
        "inputs": inputs, "params": [n for n in train.args if n not in inputs],
        "outputs": [{"name": n, "shape": list(s), "dtype": str(d)} for n, s, d in outputs],
        "grad_req": dict(grad_req or {}), "seed": int(seed),
    }
    return write(path, manifest, members, key=key)


def _program_member(program: Program, sources: dict) -> tuple[bytes, dict]:
    """The program's JSON with kernel sources and IR blanked, and its kernel table; the IR and
    both renderings go to `sources` ({member: text})."""
    doc = json.loads(program.to_json())
    table = {}
    for name, k in sorted(doc["kernels"].items()):
        if k["ir"] is None:
            raise ArtifactError(f"export: kernel {name!r} carries no kernel IR (a hand-written "
                                f"kernel); artifacts hold kernels as IR only")
        ir = json.dumps(k.pop("ir"), indent=1, sort_keys=True)
        table[name] = {"ir": _source_member(sources, name, ".json", ir),
                       "c": _source_member(sources, name, ".c", k.pop("c_source")),
                       "cuda": _source_member(sources, name, ".cu", k.pop("cuda_source"))}
        k["c_source"] = k["cuda_source"] = ""
        k["ir"] = None
    return json.dumps(doc, indent=1, sort_keys=True).encode(), table


def write(path, manifest: dict, members: dict, key=None) -> dict:
    """Writes `members` ({name: bytes}) and `manifest` (its `members` checksums, `sizes` and
    its own `self_sha256` filled in here; with `key`, `manifest.hmac`) as one zip; returns
    the manifest as written."""
    manifest = {**manifest, "members": {m: sha(b) for m, b in sorted(members.items())},
                "sizes": {m: len(b) for m, b in sorted(members.items())},
                "self_sha256": _ZEROS}
    text = json.dumps(manifest, indent=1, sort_keys=True)
    digest = sha(text.encode())
    text = text.replace(f'"self_sha256": "{_ZEROS}"', f'"self_sha256": "{digest}"', 1)
    manifest["self_sha256"] = digest
    extra = [(SIGNATURE, signature(key, text.encode()))] if key is not None else []
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in [(MANIFEST, text.encode()), *extra, *sorted(members.items())]:
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
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", kernel) or "kernel"
    member, n = f"kernels/{stem}{ext}", 1
    while sources.get(member, text) != text:  # same name, different source: a new member
        member, n = f"kernels/{stem}_{n}{ext}", n + 1
    sources[member] = text
    return member


# ---- loading ------------------------------------------------------------------------------
def load(path, backend: str = "cpu", grad_req=None, seed: int | None = None, key=None,
         **engine_options):
    """An `Executor` running the artifact at `path` with `runtime` alone: `backend` one of
    runtime.engines.ENGINES ('cpu', 'cuda', 'cuda-sim'; `engine_options` go to the engine,
    e.g. `device=`). `grad_req` and `seed` default to the exporter's; with `key`, only
    an artifact signed with it loads. The manifest, the symbol's JSON and the input names are
    kept as `ex.manifest`, `ex.symbol_json` and `ex.input_names`."""
    from runtime.engines import engine_class
    from runtime.executor import Executor, normalize_grad_req

    engine_class(backend, "load")  # a backend name it knows, before reading anything
    manifest, members = read(path, key=key)
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
    """The `role` program, its kernels rendered from their IR members, checked against the
    schema (runtime.program_check) and against the manifest's argument specs."""
    member = manifest["programs"][role]
    if member not in members:
        raise ArtifactError(f"{where}: member {member!r} (the {role} program) is missing")
    doc = parse_json(where, member, members[member])
    try:
        program = Program.from_json(json.dumps(doc))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise ArtifactError(f"{where}: member {member!r} is not a valid program "
                            f"({type(e).__name__}: {e})") from None
    table = manifest["kernels"].get(member)
    if not isinstance(table, dict) or set(table) != set(program.kernels):
        raise ArtifactError(f"{where}: {MANIFEST!r} entry 'kernels.{member}' does not list "
                            f"exactly the kernels of member {member!r}")
    for name, kernel in program.kernels.items():
        program.kernels[name] = _rendered(where, kernel, table[name], members)
    try:
        check_program(program, require_ir=True)
    except ProgramInvalid as e:
        raise ArtifactError(f"{where}: member {member!r}: {e}") from None
    _same_args(where, member, manifest, program)
    return program


def _rendered(where: str, kernel, entry, members: dict):
    """`kernel` with its IR read from its member and both sources rendered from that IR."""
    from runtime.render import render_c, render_cuda

    src = entry.get("ir") if isinstance(entry, dict) else None
    if not isinstance(src, str) or src not in members:
        raise ArtifactError(f"{where}: member {src!r} (the IR of kernel {kernel.name!r}) is "
                            f"missing")
    try:
        ir = ir_from_dict(parse_json(where, src, members[src]))
        c, cuda = render_c(ir), render_cuda(ir)  # the renderer checks ops, SSA, operands
    except (ValueError, KeyError, TypeError, IndexError) as e:
        if isinstance(e, ArtifactError):
            raise
        raise ArtifactError(f"{where}: member {src!r} is not a kernel this runtime renders "
                            f"({e})") from None
    counts = (kernel.n_in, kernel.n_out, kernel.n_masks, kernel.dtype)
    if (ir.n_in, ir.n_out, ir.n_masks, ir.dtype) != counts or ir.name != kernel.name:
        raise ArtifactError(f"{where}: member {src!r} is not the IR of kernel {kernel.name!r} "
                            f"{counts}: it hashes to the name {ir.name!r} "
                            f"{(ir.n_in, ir.n_out, ir.n_masks, ir.dtype)}")
    return replace(kernel, c_source=c, cuda_source=cuda, ir=ir)


def _same_args(where: str, member: str, manifest: dict, program: Program) -> None:
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
    outs = [(o.get("name"), o.get("shape")) if isinstance(o, dict) else o
            for o in manifest["outputs"]]
    got = [(n, list(v.shape)) for n, v in program.outputs]
    if outs != got:
        raise ArtifactError(f"{where}: member {member!r} has outputs {got}, but {MANIFEST} "
                            f"says {outs}")


def _params(where: str, manifest: dict, members: dict, program: Program) -> dict:
    params = read_params(where, members[PARAMS], program.args)
    missing = [n for n in manifest["params"] if n not in params]
    if missing:
        raise ArtifactError(f"{where}: member {PARAMS!r} has no array for parameter "
                            f"{missing[0]!r}")
    return params


def _engine(where: str, backend: str, programs: dict, options: dict):
    from runtime.engines import make_engine

    try:
        return make_engine(backend, programs["train"], programs.get("infer"), "load",
                           **options)
    except ValueError as e:
        if isinstance(e, ArtifactError) or type(e) is not ValueError:
            raise
        raise ArtifactError(f"{where}: member {PROGRAMS['train']!r} describes a program the "
                            f"{backend} engine refuses ({e})") from None