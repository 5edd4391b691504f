"""One entry of the kernel cache on disk: its `.so`, the `.sha256` of the `.so`'s bytes, a
lock file across processes, and the writes that make each appear whole or not at all
(runtime.compile_cache, which keys and counts the entries, is its only user)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from runtime.errors import CompileError


def checksum_path(lib_path: Path) -> Path:
    return lib_path.with_suffix(".sha256")


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry_problem(lib_path: Path) -> str | None:
    """None for a whole cache entry, else what is wrong with it ("missing": nothing there)."""
    if not lib_path.exists():
        return "missing"
    try:
        recorded = checksum_path(lib_path).read_text().strip()
    except OSError:
        return "has no checksum (written by an older symrnn, or half-written)"
    try:
        actual = file_sha(lib_path)
    except OSError as e:
        return f"cannot be read ({e})"
    if actual != recorded:
        return "fails its SHA-256 check (truncated or changed after it was built)"
    return None


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock across processes (fcntl.flock) on `path`; a no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX: fall back to the atomic renames alone
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def compile_into(command: tuple, src: Path, dst: Path, flags: tuple, what: str) -> None:
    """`cc` into a temporary file renamed into place, so readers never see half a library."""
    compile_flags = [f for f in flags if not f.startswith("-l")]
    libs = [f for f in flags if f.startswith("-l")]
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.stem, suffix=".tmp")
    os.close(fd)
    try:
        cmd = [*command, *compile_flags, str(src), "-o", tmp, *libs]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CompileError(f"{shlex.join(cmd)} failed on {src} ({what}):\n{done.stderr}")
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
