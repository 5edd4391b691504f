"""The hand-built Program and artifact helpers shared by the artifact tests.

The program is `out = dropout(x @ w + b)` (inverted dropout at p=0.5 in training, so that a
seed shows in the output) with backward `grad_w = x^T @ head_grad`. `forge`/`reseal` rewrite a
member with its checksums recomputed, as a producer that means it would."""
import json
import zipfile

import numpy as np
import pytest

import runtime
from runtime.artifact import MANIFEST, write
from runtime.errors import ArtifactError
from runtime.kernel_ir import Compute, KernelIR, Load, Store
from runtime.program import Buffer, Program, Step, View
from runtime.render import kernel_from_ir

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


# ---- forging ----------------------------------------------------------------------------------
def forge(path, edit, member="program.json"):
    """Applies `edit(doc)` to the JSON of `member` and reseals the artifact."""
    def change(manifest, members):
        doc = json.loads(members[member])
        edit(doc)
        members[member] = json.dumps(doc).encode()

    reseal(path, change)


def step(doc, i):
    return doc["steps"][i]
