"""The NCCL engine: collectives on CUDA tensors through CuPy's `cupy.cuda.nccl`.

One GPU per process (init_process_group picks it by local rank); the communicator's unique
id is made on the group's first rank and sent to the others over MPI, as ChainerMN does.
Calls are queued on the current CUDA stream; their Work makes the current stream wait.
"""
from __future__ import annotations

from typing import Any

from .. import dtypes
from .reduce_op import ReduceOp


def _nccl():
    try:
        from cupy.cuda import nccl
    except ImportError as err:
        raise RuntimeError("backend 'nccl': CuPy's NCCL binding is not available; install "
                           "the nvidia-nccl-cu12 (or -cu13) wheel that CuPy finds") from err
    if not getattr(nccl, "available", True):
        raise RuntimeError("backend 'nccl': CuPy could not load libnccl; install the "
                           "nvidia-nccl-cu12 (or -cu13) wheel that CuPy finds")
    return nccl


def nccl_dtype(nccl: Any, dtype: Any, what: str) -> int:
    table = {"b": nccl.NCCL_INT8, "B": nccl.NCCL_UINT8, "?": nccl.NCCL_UINT8,
             "i": nccl.NCCL_INT32, "I": nccl.NCCL_UINT32, "l": nccl.NCCL_INT64,
             "L": nccl.NCCL_UINT64, "q": nccl.NCCL_INT64, "Q": nccl.NCCL_UINT64,
             "e": nccl.NCCL_FLOAT16, "f": nccl.NCCL_FLOAT32, "d": nccl.NCCL_FLOAT64}
    if dtype == dtypes.bfloat16:  # NOTE: ml_dtypes' char 'E' is no NumPy type code
        return nccl.NCCL_BFLOAT16
    if dtype.char not in table:
        raise TypeError(f"{what}: backend 'nccl' has no {dtype} type")
    return table[dtype.char]


def nccl_op(nccl: Any, op: ReduceOp, dtype: Any, what: str) -> int:
    if dtype.char == "?":  # NOTE: bool as uint8: MAX is logical or, MIN logical and
        table = {ReduceOp.SUM: nccl.NCCL_MAX, ReduceOp.MAX: nccl.NCCL_MAX,
                 ReduceOp.PRODUCT: nccl.NCCL_MIN, ReduceOp.MIN: nccl.NCCL_MIN}
    else:
        table = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_AVG,
                 ReduceOp.PRODUCT: nccl.NCCL_PROD, ReduceOp.MAX: nccl.NCCL_MAX,
                 ReduceOp.MIN: nccl.NCCL_MIN}
    if op not in table:
        raise ValueError(f"{what}: backend 'nccl' has no ReduceOp.{op.name} on {dtype}")
    if op == ReduceOp.AVG and not dtypes.is_floating(dtype):
        raise ValueError(f"{what}: ReduceOp.AVG needs a floating-point tensor, got {dtype}")
    return table[op]


def _ptr(a: Any) -> int:
    return 0 if a is None else a.data.ptr


class NCCLEngine:
    """An NcclCommunicator over the ranks of an MPI communicator, on the current GPU."""

    def __init__(self, comm: Any) -> None:
        import cupy
        nccl = _nccl()
        self.nccl, self.cupy = nccl, cupy
        uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
        uid = comm.bcast(uid, root=0)
        self.device = cupy.cuda.Device().id
        self.comm = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())
        self.size, self.rank = comm.Get_size(), comm.Get_rank()

    def _stream(self) -> int:
        return self.cupy.cuda.get_current_stream().ptr

    def event(self) -> Any:
        """An event recorded on the current stream after the calls just queued."""
        ev = self.cupy.cuda.Event(disable_timing=True)
        ev.record()
        return ev

    def all_reduce(self, buf: Any, op: ReduceOp, what: str) -> None:
        self.comm.allReduce(_ptr(buf), _ptr(buf), buf.size,
                            nccl_dtype(self.nccl, buf.dtype, what),
                            nccl_op(self.nccl, op, buf.dtype, what), self._stream())

    def broadcast(self, buf: Any, root: int, what: str) -> None:
        self.comm.broadcast(_ptr(buf), _ptr(buf), buf.size,
                            nccl_dtype(self.nccl, buf.dtype, what), root, self._stream())

    def reduce(self, buf: Any, op: ReduceOp, root: int, what: str) -> None:
        self.comm.reduce(_ptr(buf), _ptr(buf), buf.size,
                         nccl_dtype(self.nccl, buf.dtype, what),
                         nccl_op(self.nccl, op, buf.dtype, what), root, self._stream())

    def all_gather(self, send: Any, recv: Any, what: str) -> None:
        self.comm.allGather(_ptr(send), _ptr(recv), send.size,
                            nccl_dtype(self.nccl, send.dtype, what), self._stream())

    def reduce_scatter(self, send: Any, recv: Any, op: ReduceOp, what: str) -> None:
        self.comm.reduceScatter(_ptr(send), _ptr(recv), recv.size,
                                nccl_dtype(self.nccl, send.dtype, what),
                                nccl_op(self.nccl, op, send.dtype, what), self._stream())

    def exchange(self, sends: list, recvs: list, what: str) -> None:
        """Point-to-point transfers in one NCCL group: `sends` and `recvs` are lists of
        (peer, contiguous array); gather, scatter and all_to_all are made of these."""
        stream = self._stream()
        self.nccl.groupStart()
        try:
            for peer, a in sends:
                if a.size:
                    self.comm.send(_ptr(a), a.size, nccl_dtype(self.nccl, a.dtype, what),
                                   peer, stream)
            for peer, a in recvs:
                if a.size:
                    self.comm.recv(_ptr(a), a.size, nccl_dtype(self.nccl, a.dtype, what),
                                   peer, stream)
        finally:
            self.nccl.groupEnd()

    def destroy(self) -> None:
        self.comm.destroy()
