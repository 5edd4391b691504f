"""Data-parallel training over MPI (mpi4py): `DataParallel` averages an executor's gradients
over the ranks; `symrnn.train(..., data_parallel=True)` shards the batch by rank.

    mpiexec -n 4 python -m symrnn train --steps 200      # four ranks, one global batch
"""
from symrnn.parallel.comm import RankFailed, launcher_size, world
from symrnn.parallel.data_parallel import DataParallel, RankMismatch, program_digest

__all__ = ["DataParallel", "RankFailed", "RankMismatch", "launcher_size", "program_digest",
           "world"]
