"""The communicator under `DataParallel`: MPI through mpi4py, or one process alone.

Every collective is non-blocking and waited with a deadline (`wait`), so that a rank whose
peer died or stalled raises `RankFailed` after `timeout` seconds instead of hanging; and with
more than one rank an uncaught exception aborts the whole job (`abort_on_uncaught`), so that
a rank that raises takes the others down at once, with its traceback printed first.
"""
from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np

from runtime.errors import BackendUnavailable, SymRNNError

# What launchers set: MPICH/Hydra and Intel MPI (PMI_*), Open MPI, MVAPICH.
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
DEFAULT_TIMEOUT = 600.0  # seconds; the first collective waits for the slowest compile


class RankFailed(SymRNNError, RuntimeError):
    """A peer rank died or stalled: a collective did not complete within the timeout."""


def launcher_size() -> int:
    """How many ranks the launcher (`mpiexec`) started, 1 when not launched by one."""
    for var in LAUNCHER_SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def world(timeout: float = DEFAULT_TIMEOUT):
    """`MpiComm(COMM_WORLD)`, or `SingleComm()` when run alone without mpi4py. Launched as
    one of several ranks without a usable mpi4py: BackendUnavailable, naming what is wrong."""
    asked = launcher_size()
    try:
        from mpi4py import MPI
    except ImportError:
        if asked > 1:
            raise BackendUnavailable(
                f"DataParallel: launched as one of {asked} ranks but mpi4py is not installed; "
                f"pip install 'symrnn[mpi]' (mpi4py and mpich)") from None
        return SingleComm()
    comm = MpiComm(MPI.COMM_WORLD, timeout)
    if asked > 1 and comm.size == 1:
        raise BackendUnavailable(
            f"DataParallel: the launcher started {asked} ranks but mpi4py's MPI sees 1: "
            f"mpi4py is built against a different MPI ({MPI.Get_library_version()[:40]!r}) "
            f"than the mpiexec that ran this; use that MPI's mpiexec")
    return comm


def wrap(comm, timeout: float = DEFAULT_TIMEOUT):
    """A `comm` argument -> MpiComm/SingleComm: None is `world()`, an mpi4py communicator
    is wrapped, an already wrapped one passes."""
    if comm is None:
        return world(timeout)
    if isinstance(comm, (MpiComm, SingleComm)):
        return comm
    if hasattr(comm, "Iallreduce") and hasattr(comm, "Get_size"):
        return MpiComm(comm, timeout)
    raise BackendUnavailable(f"DataParallel: 'comm' must be an mpi4py communicator or None, "
                             f"given {type(comm).__name__}")


class SingleComm:
    """One process: every collective is the identity."""

    rank, size, timeout = 0, 1, DEFAULT_TIMEOUT

    def iallreduce(self, buf: np.ndarray):
        return None

    def wait(self, requests, what: str) -> None:
        pass

    def poke(self, requests) -> None:
        pass

    def bcast_array(self, a: np.ndarray, root: int = 0) -> None:
        pass

    def bcast_object(self, obj, root: int = 0):
        return obj

    def allgather_bytes(self, data: bytes) -> list:
        return [data]

    def allgather_object(self, obj) -> list:
        return [obj]

    def sum_floats(self, values) -> np.ndarray:
        return np.asarray(values, np.float64)

    def abort(self, code: int = 1) -> None:
        sys.exit(code)


class MpiComm:
    """An mpi4py communicator, with deadlines on every wait."""

    def __init__(self, comm, timeout: float = DEFAULT_TIMEOUT):
        from mpi4py import MPI

        self.MPI, self.comm, self.timeout = MPI, comm, float(timeout)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def iallreduce(self, buf: np.ndarray):
        """Starts an in-place sum of `buf` over the ranks."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)

    def poke(self, requests) -> None:
        """Lets MPI progress the started collectives (MPICH progresses only inside calls)."""
        if requests:
            self.MPI.Request.Testall(requests)

    def wait(self, requests, what: str) -> None:
        """Waits for `requests`; RankFailed after `timeout` seconds."""
        requests = [r for r in requests if r is not None]
        deadline, pause = time.monotonic() + self.timeout, 1e-6
        while not self.MPI.Request.Testall(requests):
            if time.monotonic() > deadline:
                raise RankFailed(
                    f"{what}: rank {self.rank} of {self.size} waited more than "
                    f"{self.timeout:g} s for the other ranks: one has failed or stalled "
                    f"(see its error above)")
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)

    def bcast_array(self, a: np.ndarray, root: int = 0) -> None:
        self.wait([self.comm.Ibcast(a, root=root)], "broadcast_params")

    def bcast_object(self, obj, root: int = 0):
        data = np.frombuffer(_pickle(obj), np.uint8) if self.rank == root else None
        size = np.array([0 if data is None else data.size], np.int64)
        self.bcast_array(size, root)
        buf = data.copy() if data is not None else np.empty(int(size[0]), np.uint8)
        self.bcast_array(buf, root)
        return obj if self.rank == root else _unpickle(buf.tobytes())

    def allgather_bytes(self, data: bytes) -> list:
        """Every rank's `data` (all of one length), in rank order."""
        mine = np.frombuffer(data, np.uint8).copy()
        out = np.empty((self.size, mine.size), np.uint8)
        self.wait([self.comm.Iallgather(mine, out)], "DataParallel")
        return [row.tobytes() for row in out]

    def allgather_object(self, obj) -> list:
        return self.comm.allgather(obj)  # only after allgather_bytes showed all ranks here

    def sum_floats(self, values) -> np.ndarray:
        buf = np.array(values, np.float64)
        self.wait([self.iallreduce(buf)], "train")
        return buf

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


def _pickle(obj) -> bytes:
    import pickle

    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickle(data: bytes):
    import pickle

    return pickle.loads(data)  # from rank 0 of our own job, never from a file


def abort_on_uncaught(comm) -> None:
    """With more than one rank, an uncaught exception prints its traceback, then aborts every
    rank (MPI_Abort): the others would otherwise wait for this one forever."""
    if comm.size <= 1 or getattr(sys.excepthook, "symrnn_abort", False):
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        print(f"symrnn: rank {comm.rank} of {comm.size} failed ({kind.__name__}); aborting "
              f"every rank", file=sys.stderr, flush=True)
        _let_mpiexec_relay_output()
        comm.abort(1)

    hook.symrnn_abort = True
    sys.excepthook = hook


def report_and_abort(comm, error: BaseException, where: str) -> None:
    """For a command that catches its errors: print this rank's error, abort the job."""
    text = " ".join(str(error).split()) or type(error).__name__
    print(f"{where}: rank {comm.rank} of {comm.size}: {type(error).__name__}: {text}; "
          f"aborting every rank", file=sys.stderr, flush=True)
    if os.environ.get("SYMRNN_DEBUG", "0") not in ("", "0"):
        traceback.print_exception(error)
    _let_mpiexec_relay_output()
    comm.abort(1)


def _let_mpiexec_relay_output(seconds: float = 0.5) -> None:
    """mpiexec forwards a rank's output asynchronously and stops at MPI_Abort: without a
    pause, the lines that say why a rank failed were seen lost on a loaded machine."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(seconds)
