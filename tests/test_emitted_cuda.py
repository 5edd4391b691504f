"""Every CUDA kernel emitted for the programs of the agreement tests compiles with nvcc.

The programs are those of `tests/test_backends_agree.py` (its parametrized cases, fused and
unrolled, with their `grad_req`), plus any other program recorded in the same pytest session
(the hypothesis-generated stacks, when `tests/test_hypothesis_stacks.py` ran first). Programs
not built yet in this session are compiled here (the passes only; no C compiler is needed).

Kernels are deduplicated by name (a structural hash), so each distinct source is compiled once
per architecture. Every source is a shared prelude (the `real` type, helpers, Philox) followed
by one `extern "C" __global__` kernel; sources with the same prelude are batched into one .cu
file (the prelude once, then the kernels) so that one nvcc call compiles many kernels. Each is
compiled with `nvcc -ptx -arch=sm_80` and `-arch=sm_90`, warnings as errors, and the PTX must
hold a `.entry` for every kernel. A failing batch is retried kernel by kernel to name the
culprits.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codegen.graph import node
from codegen.testing import load_sibling

pytestmark = pytest.mark.nvcc

ARCHS = ("sm_80", "sm_90")
MARKER = 'extern "C" __global__'
BATCH = 48  # kernels per .cu file


agree = load_sibling(__file__, "test_backends_agree.py")


def nvcc_path() -> str | None:
    return os.environ.get("NVCC") or shutil.which("nvcc")


def build_program(stack, grad_req, fuse: bool):
    """The Program `simple_bind(backend='cpu', ...)` would run, without compiling its C."""
    import codegen
    from runtime.executor import normalize_grad_req
    from symrnn.bind import DTYPES
    from symrnn.lower import lower_and_infer

    symbol = stack.symbol()
    graph, _ = lower_and_infer(symbol, dict(stack.shapes), stack.dtype, "test_emitted_cuda")
    reqs = normalize_grad_req(grad_req, symbol.list_arguments())
    wrt = [a for a in symbol.list_arguments()
           if reqs[a] != "null" and node(graph, a).dtype in DTYPES]
    options = codegen.CompileOptions(tuple(wrt), tuple(symbol.list_outputs()), fuse, "cuda")
    return codegen.compile(graph, options)


def all_programs(config) -> dict:
    """{program key: Program}: every parametrized case of the agreement tests, fused and
    unrolled (built here where the session has not built them), and whatever else the
    session recorded."""
    programs = agree.session_programs(config)
    for case in agree.CASES.values():
        grad_req = agree.grad_req_of(case.grad_req, case.stack.symbol())
        for fuse in (True, False):
            key = agree.program_key(case.stack, grad_req, fuse)
            if key not in programs:
                programs[key] = build_program(case.stack, grad_req, fuse)
    return dict(programs)


def distinct_kernels(programs: dict) -> dict:
    """{kernel name: cuda source}, checking that one name always means one source."""
    kernels = {}
    for key, program in programs.items():
        for name, k in program.kernels.items():
            assert kernels.setdefault(name, k.cuda_source) == k.cuda_source, (
                f"kernel {name} has two different CUDA sources (second in program {key})")
    return kernels


def split(source: str) -> tuple[str, str]:
    """(prelude, kernel) of one emitted source."""
    assert source.count(MARKER) == 1, "an emitted source holds exactly one __global__ kernel"
    i = source.index(MARKER)
    return source[:i], source[i:]


def batches(kernels: dict) -> list[tuple[list, str]]:
    """[(kernel names, .cu text)]: kernels with the same prelude, at most BATCH per file."""
    groups: dict[str, list] = {}
    for name in sorted(kernels):
        prelude, body = split(kernels[name])
        groups.setdefault(prelude, []).append((name, body))
    out = []
    for prelude, members in groups.items():
        for i in range(0, len(members), BATCH):
            chunk = members[i:i + BATCH]
            text = prelude + "\n".join(body for _, body in chunk)
            out.append(([n for n, _ in chunk], text))
    return out


def nvcc(nvcc_bin: str, arch: str, text: str, folder: Path, stem: str) -> tuple[int, str, str]:
    """(returncode, diagnostics, ptx) of `nvcc -ptx -arch=arch` on `text`."""
    src, ptx = folder / f"{stem}.cu", folder / f"{stem}.{arch}.ptx"
    src.write_text(text)
    proc = subprocess.run([nvcc_bin, "-ptx", f"-arch={arch}", "-Werror", "all-warnings",
                           str(src), "-o", str(ptx)], check=False, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    return proc.returncode, out, ptx.read_text() if ptx.exists() else ""


def supported_archs(nvcc_bin: str) -> set:
    proc = subprocess.run([nvcc_bin, "--list-gpu-arch"], check=False, capture_output=True,
                          text=True)
    return {a.replace("compute_", "sm_") for a in proc.stdout.split()}


@pytest.fixture(scope="module")
def nvcc_results(pytestconfig, tmp_path_factory):
    """{arch: (number of kernels, [failure messages])}, all nvcc calls run concurrently."""
    nvcc_bin = nvcc_path()
    if nvcc_bin is None:
        pytest.skip("nvcc not found (on PATH or in $NVCC): the CUDA renderings are not compiled")
    kernels = distinct_kernels(all_programs(pytestconfig))
    assert kernels, "no kernels were emitted"
    archs = [a for a in ARCHS if a in supported_archs(nvcc_bin)]
    folder = tmp_path_factory.mktemp("cuda")
    jobs = [(arch, i, names, text) for arch in archs
            for i, (names, text) in enumerate(batches(kernels))]

    def run(job):
        arch, i, names, text = job
        rc, diag, ptx = nvcc(nvcc_bin, arch, text, folder, f"batch{i}")
        if rc != 0:  # name the kernels that fail on their own
            failures = []
            for name in names:
                rc1, diag1, _ = nvcc(nvcc_bin, arch, kernels[name], folder, name)
                if rc1 != 0:
                    failures.append(f"{arch} {name} ({folder / name}.cu):\n{diag1[-2000:]}")
            return arch, failures or [f"{arch} batch {i} ({folder}/batch{i}.cu):\n{diag[-2000:]}"]
        entries = set(re.findall(r"\.entry\s+(\w+)\s*\(", ptx))
        missing = [n for n in names if n not in entries]
        return arch, [f"{arch}: no .entry in the PTX for {n}" for n in missing]

    results = {arch: (len(kernels), []) for arch in archs}
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for arch, failures in pool.map(run, jobs):
            results[arch][1].extend(failures)
    return results


@pytest.mark.parametrize("arch", ARCHS)
def test_every_emitted_cuda_kernel_compiles(nvcc_results, arch):
    if arch not in nvcc_results:
        pytest.skip(f"this nvcc ({nvcc_path()}) does not list {arch} in --list-gpu-arch")
    count, failures = nvcc_results[arch]
    assert not failures, (f"{len(failures)} of {count} kernels fail `nvcc -ptx -arch={arch}`:\n"
                          + "\n".join(failures[:5]))


def test_batching_keeps_every_kernel():
    """The batches hold each kernel once, after its own prelude."""
    from codegen.kernel_ir import Compute, KernelIR, Load, Store
    from codegen.render import kernel_from_ir

    irs = [KernelIR(dtype, 1, 1, 0, (Load(0, 0), Compute(1, op, (0,)), Store(0, 1)))
           for dtype in ("float32", "float64") for op in ("tanh", "sigmoid")]
    kernels = {ir.name: kernel_from_ir(ir).cuda_source for ir in irs}
    got = batches(kernels)
    assert sorted(n for names, _ in got for n in names) == sorted(kernels)
    assert len(got) == 2  # one per dtype
    for names, text in got:
        assert text.count(MARKER) == len(names)
        for name in names:
            assert text.startswith(split(kernels[name])[0])

