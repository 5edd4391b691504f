"""Gradient reduction on the GPU for the `cuda` engine (runtime.cuda.CudaEngine).

After the backward's kernels, each gradient's device memory is summed over the ranks in
place, by NCCL (CuPy's binding, `pip install cupy-cuda12x`) on the engine's stream, or by a
CUDA-aware MPI (`MPI.Query_cuda_support()`); then the sums are downloaded and divided by the
rank count on the host, the same operation on every rank. Where neither is available the
cuda engine's gradients are downloaded first and reduced on the host (symrnn.parallel.buckets),
which works everywhere.

The reduction runs inside `CudaEngine.backward(head_grads, on_device=...)`, between the
backward's kernels and the download. Status: tested on cuda-sim with a stand-in allreduce
(tests/symrnn/test_parallel.py); NCCL and CUDA-aware MPI have not run on a GPU.
"""
from __future__ import annotations

import numpy as np

NCCL_TYPES = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}


def device_reducer(comm, engine):
    """A DeviceReducer for `engine`, or None (one rank, not a CudaEngine, or neither NCCL
    nor a CUDA-aware MPI here: the host reduction runs instead)."""
    if comm.size == 1 or type(engine).__name__ != "CudaEngine":
        return None
    allreduce = _nccl_allreduce(comm, engine) or _mpi_allreduce(comm)
    return None if allreduce is None else DeviceReducer(engine, allreduce)


class DeviceReducer:
    def __init__(self, engine, allreduce):
        self.engine, self.allreduce = engine, allreduce
        self.spans = [s for v in engine.program.grads.values() for s in _spans(engine, v)]

    def backward(self, head_grads: list) -> dict:
        """The engine's backward with every gradient summed over the ranks on the device."""
        return self.engine.backward(head_grads, on_device=self._reduce)

    def _reduce(self, engine) -> None:
        sync = getattr(getattr(engine.device, "stream", None), "synchronize", None)
        if sync is not None:  # MPI reads the memory outside the stream
            sync()
        self.allreduce(self.spans)


def _spans(engine, v) -> list:
    """(device address, elements, dtype) of the view's memory: one span when its rows are
    adjacent, else one per row (the gaps belong to other values)."""
    dtype, item = engine.dtype(v), engine.itemsize(v)
    if v.ld == v.cols or v.rows == 1:
        return [(engine.pointer(v), v.rows * v.cols, dtype)]
    return [(engine.pointer(v) + r * v.ld * item, v.cols, dtype) for r in range(v.rows)]


def _nccl_allreduce(comm, engine):
    try:
        from cupy.cuda import nccl
    except ImportError:
        return None
    uid = comm.bcast_object(nccl.get_unique_id() if comm.rank == 0 else None)
    communicator = nccl.NcclCommunicator(comm.size, uid, comm.rank)
    stream = getattr(getattr(engine.device, "stream", None), "handle", 0)

    def allreduce(spans):
        nccl.groupStart()
        for ptr, count, dtype in spans:
            communicator.allReduce(ptr, ptr, count, getattr(nccl, NCCL_TYPES[dtype]),
                                   nccl.NCCL_SUM, stream)
        nccl.groupEnd()  # the download that follows waits on the same stream

    return allreduce


def _mpi_allreduce(comm):
    mpi = getattr(comm, "MPI", None)
    if mpi is None or not getattr(mpi, "Query_cuda_support", lambda: False)():
        return None
    types = {"float32": mpi.FLOAT, "float64": mpi.DOUBLE}

    def allreduce(spans):
        for ptr, count, dtype in spans:
            buf = mpi.buffer.fromaddress(ptr, count * np.dtype(dtype).itemsize)
            comm.comm.Allreduce(mpi.IN_PLACE, [buf, count, types[dtype]], op=mpi.SUM)

    return allreduce
