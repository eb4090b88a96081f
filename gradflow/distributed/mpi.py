"""The MPI engine: collectives through mpi4py on NumPy buffers (CPU tensors), or on CuPy
buffers where the MPI library is CUDA-aware; otherwise CUDA tensors are staged through the
host. Every operation is MPI's nonblocking form (Iallreduce, Ibcast, ...), so one code path
serves `async_op=True` and blocking calls (which wait at once)."""
from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

import numpy as np

from .. import dtypes
from .reduce_op import ReduceOp
from .work import Work


@functools.lru_cache(maxsize=None)
def cuda_aware() -> bool:
    """Whether the MPI library reads device memory: GRADFLOW_MPI_CUDA_AWARE=0/1 decides when
    set, else the library is asked (Open MPI's MPIX_Query_cuda_support, MPICH's
    MPIX_GPU_query_support), and no answer is no."""
    env = os.environ.get("GRADFLOW_MPI_CUDA_AWARE")
    if env is not None:
        return env.strip() not in ("", "0", "false", "no")
    try:
        lib = ctypes.CDLL(None)
    except OSError:
        return False
    query = getattr(lib, "MPIX_Query_cuda_support", None)
    if query is not None:
        return bool(query())
    query = getattr(lib, "MPIX_GPU_query_support", None)
    if query is not None:
        flag = ctypes.c_int(0)
        return query(0, ctypes.byref(flag)) == 0 and bool(flag.value)  # 0: MPIX_GPU_SUPPORT_CUDA
    return False


def mpi_op(MPI: Any, op: ReduceOp, dtype: np.dtype, what: str) -> Any:
    """MPI's reduction for `op` on `dtype` (AVG is a SUM, scaled when it completes)."""
    if dtype == np.bool_:
        table = {ReduceOp.SUM: MPI.LOR, ReduceOp.MAX: MPI.LOR, ReduceOp.BOR: MPI.LOR,
                 ReduceOp.PRODUCT: MPI.LAND, ReduceOp.MIN: MPI.LAND, ReduceOp.BAND: MPI.LAND,
                 ReduceOp.BXOR: MPI.LXOR}
    else:
        table = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
                 ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN, ReduceOp.BAND: MPI.BAND,
                 ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}
    if op not in table:
        raise ValueError(f"{what}: ReduceOp.{op.name} is not defined on {dtype} tensors")
    if dtype.kind == "c" and op in (ReduceOp.MAX, ReduceOp.MIN):
        raise ValueError(f"{what}: ReduceOp.{op.name} is not defined on complex tensors")
    if dtypes.is_floating(dtype) and op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR):
        raise ValueError(f"{what}: ReduceOp.{op.name} is not defined on {dtype} tensors")
    if op == ReduceOp.AVG and dtypes.kind(dtype) not in "fc":
        raise ValueError(f"{what}: ReduceOp.AVG needs a floating-point tensor, got {dtype}")
    return table[op]


class MPIEngine:
    """Collectives on one MPI communicator; buffers are contiguous arrays on `side()`."""

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm

    def reads_device(self) -> bool:
        """Whether CUDA buffers go to MPI as they are (else through host copies)."""
        return cuda_aware()

    @staticmethod
    def _ready(*arrays: Any) -> None:
        # NOTE: MPI reads device memory outside CUDA's streams: the work queued on the
        # current stream that writes the buffers must be done first.
        for a in arrays:
            if a is not None and not isinstance(a, np.ndarray):
                import cupy
                cupy.cuda.get_current_stream().synchronize()
                return

    def all_reduce(self, buf: Any, op: ReduceOp, what: str) -> list:
        self._ready(buf)
        return [self.comm.Iallreduce(self.MPI.IN_PLACE, buf,
                                     mpi_op(self.MPI, op, buf.dtype, what))]

    def broadcast(self, buf: Any, root: int, what: str) -> list:
        self._ready(buf)
        return [self.comm.Ibcast(buf, root=root)]

    def reduce(self, buf: Any, op: ReduceOp, root: int, what: str) -> list:
        self._ready(buf)
        mop = mpi_op(self.MPI, op, buf.dtype, what)
        if self.comm.Get_rank() == root:
            return [self.comm.Ireduce(self.MPI.IN_PLACE, buf, mop, root=root)]
        return [self.comm.Ireduce(buf, None, mop, root=root)]

    def all_gather(self, send: Any, recv: Any, what: str) -> list:
        self._ready(send, recv)
        return [self.comm.Iallgather(send, recv)]

    def reduce_scatter(self, send: Any, recv: Any, op: ReduceOp, what: str) -> list:
        self._ready(send, recv)
        return [self.comm.Ireduce_scatter_block(send, recv,
                                                mpi_op(self.MPI, op, send.dtype, what))]

    def gather(self, send: Any, recv: Any, root: int) -> list:
        self._ready(send, recv)
        return [self.comm.Igather(send, recv, root=root)]

    def scatter(self, send: Any, recv: Any, root: int) -> list:
        self._ready(send, recv)
        return [self.comm.Iscatter(send, recv, root=root)]

    def all_to_all(self, send: Any, recv: Any, send_counts: list[int],
                   recv_counts: list[int]) -> list:
        """Element counts per peer; offsets follow in rank order (MPI_Ialltoallv)."""
        self._ready(send, recv)
        send_off = np.concatenate([[0], np.cumsum(send_counts)[:-1]]).astype(int).tolist()
        recv_off = np.concatenate([[0], np.cumsum(recv_counts)[:-1]]).astype(int).tolist()
        return [self.comm.Ialltoallv([send, (send_counts, send_off)],
                                     [recv, (recv_counts, recv_off)])]

    def send(self, buf: Any, peer: int, tag: int) -> list:
        self._ready(buf)
        return [self.comm.Isend(buf, dest=peer, tag=tag)]

    def recv(self, buf: Any, peer: int, tag: int) -> list:
        return [self.comm.Irecv(buf, source=peer, tag=tag)]

    def barrier(self) -> Work:
        return Work([self.comm.Ibarrier()], [], what="barrier")
