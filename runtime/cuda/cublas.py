"""A small ctypes binding to cuBLAS: a handle on one stream, `gemm` and `geam`.

Only what the CUDA engine needs: `cublasCreate_v2`, `cublasSetStream_v2`,
`cublasSetWorkspace_v2` (so that stream capture never has to allocate), and the single and
double precision `gemm` and `geam`. The calls take device pointers as plain integers (PyCUDA's
`int(allocation)`) and use cuBLAS's own column-major convention; mapping row-major operands
onto them is the caller's business (`runtime.cuda.commands.gemm_call`).

The library is searched in this order: `SYMRNN_CUBLAS` (a path), `ctypes.util.find_library`,
the CUDA toolkit (`CUDA_HOME`, `CUDA_PATH`, the parent of `nvcc`'s folder, `/usr/local/cuda`:
`lib64`, `lib`, `targets/x86_64-linux/lib`), then the `nvidia/cu13/lib`, `nvidia/cu12/lib` and
`nvidia/cublas/lib` folders of installed packages (the `nvidia-cublas` wheels). `libcublasLt`
from the same folder is loaded first, so that no `LD_LIBRARY_PATH` is needed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import site
import sys

from runtime.errors import BackendUnavailable

OPS = {"N": 0, "T": 1}  # cublasOperation_t
STATUS = {0: "SUCCESS", 1: "NOT_INITIALIZED", 3: "ALLOC_FAILED", 7: "INVALID_VALUE",
          8: "ARCH_MISMATCH", 11: "MAPPING_ERROR", 13: "EXECUTION_FAILED",
          14: "INTERNAL_ERROR", 15: "NOT_SUPPORTED", 16: "LICENSE_ERROR"}
REAL = {"float32": ("S", ctypes.c_float), "float64": ("D", ctypes.c_double)}
PACKAGE_DIRS = ("nvidia/cu13/lib", "nvidia/cu12/lib", "nvidia/cublas/lib")
INSTALL_HINT = ("install the CUDA toolkit or `pip install nvidia-cublas`, or set SYMRNN_CUBLAS "
                "to the library's path; or use backend='cpu'")


def search_dirs() -> list[str]:
    """Folders that may hold `libcublas.so*`, best first."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    roots.append("/usr/local/cuda")
    dirs = [os.path.join(r, sub) for r in roots if r
            for sub in ("lib64", "lib", "targets/x86_64-linux/lib")]
    packages = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    dirs += [os.path.join(p, sub) for p in packages if p for sub in PACKAGE_DIRS]
    return list(dict.fromkeys(d for d in dirs if os.path.isdir(d)))


def candidates() -> list[str]:
    """Paths (or loader names) to try, best first."""
    found = [os.environ["SYMRNN_CUBLAS"]] if os.environ.get("SYMRNN_CUBLAS") else []
    name = ctypes.util.find_library("cublas")
    if name:
        found.append(name)
    for d in search_dirs():
        found += sorted(glob.glob(os.path.join(d, "libcublas.so*")), key=_version, reverse=True)
    return list(dict.fromkeys(found))


def load_library() -> ctypes.CDLL:
    """The first loadable cuBLAS of `candidates()`, or BackendUnavailable naming the search."""
    errors = []
    for path in candidates():
        folder = os.path.dirname(path)
        for lt in sorted(glob.glob(os.path.join(folder, "libcublasLt.so*")) if folder else []):
            try:
                ctypes.CDLL(lt, mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
    searched = ", ".join(search_dirs()) or "no CUDA library folder exists"
    tried = "; ".join(errors) or "no libcublas.so* found"
    raise BackendUnavailable(f"backend 'cuda' needs cuBLAS (libcublas.so), which was not found "
                             f"({tried}; searched {searched}): {INSTALL_HINT}")


class Cublas:
    """A cuBLAS handle bound to `stream` (a CUstream as an int; 0 for the default stream)."""

    def __init__(self, stream: int = 0, lib: ctypes.CDLL | None = None):
        self.lib = load_library() if lib is None else lib
        self.handle = ctypes.c_void_p()
        self._check(self.lib.cublasCreate_v2(ctypes.byref(self.handle)), "cublasCreate_v2")
        self._check(self.lib.cublasSetStream_v2(self.handle, ctypes.c_void_p(stream)),
                    "cublasSetStream_v2")
        self._fns = {dtype: self._bind(letter, real) for dtype, (letter, real) in REAL.items()}

    def _bind(self, letter: str, real) -> tuple:
        ptr, p_real, i = ctypes.c_void_p, ctypes.POINTER(real), ctypes.c_int
        gemm = getattr(self.lib, f"cublas{letter}gemm_v2")
        gemm.argtypes = [ptr, i, i, i, i, i, p_real, ptr, i, ptr, i, p_real, ptr, i]
        geam = getattr(self.lib, f"cublas{letter}geam")
        geam.argtypes = [ptr, i, i, i, i, p_real, ptr, i, p_real, ptr, i, ptr, i]
        return gemm, geam, real

    def set_workspace(self, ptr: int, nbytes: int) -> bool:
        """Gives cuBLAS its workspace; False where this cuBLAS predates the call."""
        fn = getattr(self.lib, "cublasSetWorkspace_v2", None)
        if fn is None:
            return False
        self._check(fn(self.handle, ctypes.c_void_p(ptr), ctypes.c_size_t(nbytes)),
                    "cublasSetWorkspace_v2")
        return True

    def gemm(self, dtype, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        """`C = alpha op(A) op(B) + beta C`, column-major, exactly cuBLAS's `?gemm`."""
        fn, _, real = self._fns[dtype]
        status = fn(self.handle, OPS[transa], OPS[transb], m, n, k, ctypes.byref(real(alpha)),
                    a, lda, b, ldb, ctypes.byref(real(beta)), c, ldc)
        self._check(status, "gemm")

    def geam(self, dtype, transa, transb, m, n, alpha, a, lda, beta, b, ldb, c, ldc):
        """`C = alpha op(A) + beta op(B)`, column-major, exactly cuBLAS's `?geam`."""
        _, fn, real = self._fns[dtype]
        status = fn(self.handle, OPS[transa], OPS[transb], m, n, ctypes.byref(real(alpha)),
                    a, lda, ctypes.byref(real(beta)), b, ldb, c, ldc)
        self._check(status, "geam")

    @staticmethod
    def _check(status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"cuBLAS {what} failed: CUBLAS_STATUS_"
                               f"{STATUS.get(status, status)}")


def _version(path: str) -> tuple:
    """`libcublas.so.13.1.0` -> (13, 1, 0), so that the newest comes first."""
    tail = os.path.basename(path).partition(".so")[2]
    return tuple(int(p) for p in tail.split(".") if p.isdigit())
