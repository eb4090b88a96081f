"""Collectives on tensors (torch.distributed's), on the MPI or the NCCL engine.

A call first gathers every rank's shapes, dtypes and devices (one small allgather) and
raises the same error on every rank, naming each rank's, when they cannot work together:
a mismatch is an error, never a hang or garbage. CUDA tensors of an NCCL group go to NCCL;
everything else to MPI (CUDA tensors through host copies unless the MPI is CUDA-aware).
Results are written into the given tensors, as torch does, outside autograd.
"""
from __future__ import annotations

import math
import zlib
from typing import Any, Callable, Sequence

import numpy as np

from ..backend import CPU, move_array, on_device
from ..tensor import Tensor
from .faults import waiting
from .mpi import MPIEngine
from .process_group import ProcessGroup, resolve
from .reduce_op import ReduceOp, as_reduce_op
from .work import Work

# -- checks ------------------------------------------------------------------------------------


def _tensor(t: Any, what: str, arg: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: {arg} must be a Tensor, got {type(t).__name__}")
    return t


def _tensor_list(ts: Any, what: str, arg: str) -> list[Tensor]:
    if not isinstance(ts, (list, tuple)):
        raise TypeError(f"{what}: {arg} must be a list of Tensors, got {type(ts).__name__}")
    return [_tensor(t, what, f"{arg}[{i}]") for i, t in enumerate(ts)]


def _describe(t: Tensor) -> tuple:
    return (tuple(t.shape), str(t.dtype), t.device.type)


def _fmt(d: tuple) -> str:
    shape, dtype, dev = d
    return f"shape {shape} {dtype} on {dev}"


def _agree(g: ProcessGroup, what: str, meta: Any, problem: str | None,
           side: "_Side | None") -> None:
    """Check that every rank's `meta` is the same and no rank found a `problem` with its own
    arguments (or its `side`); raise the same error on every rank, naming each rank's,
    otherwise."""
    if problem is None and side is not None:
        problem = side.problem
    # NOTE: one small all-reduce (MAX of a hash, of its negation and of a problem flag) is
    # the check; only when it fails do the ranks gather what they hold, to say what differs.
    code = zlib.crc32(repr(meta).encode())
    probe = np.array([code, -code, problem is not None], dtype=np.int64)
    assert g.mpi is not None  # a member's group has its MPI engine
    MPI = g.mpi.MPI
    with waiting(what):
        g.comm.Allreduce(MPI.IN_PLACE, probe, op=MPI.MAX)
    if probe[0] == -probe[1] and not probe[2]:
        return
    with waiting(what):
        gathered = g.comm.allgather((meta, problem))
    problems = [(r, p) for r, (_, p) in zip(g.ranks, gathered) if p is not None]
    if problems:
        raise RuntimeError(f"{what}: " + "; ".join(f"rank {r}: {p}" for r, p in problems))
    metas = [m for m, _ in gathered]
    if any(m != metas[0] for m in metas):
        raise RuntimeError(f"{what}: the ranks' tensors differ: " + "; ".join(
            f"rank {r}: {_fmt_meta(m)}" for r, m in zip(g.ranks, metas)))


def _fmt_meta(m: Any) -> str:
    if isinstance(m, tuple) and len(m) == 3 and isinstance(m[0], tuple):
        return _fmt(m)
    return ", ".join(_fmt_meta(x) for x in m) if isinstance(m, (list, tuple)) else str(m)


def _root(g: ProcessGroup, rank: int | None, group_rank: int | None, what: str,
          arg: str) -> int:
    """The group rank that `src`/`dst` (a global rank) or `group_src`/`group_dst` names
    (group rank 0 when neither is given)."""
    if rank is not None and group_rank is not None:
        raise ValueError(f"{what}: give {arg} or group_{arg}, not both")
    if group_rank is not None:
        if not 0 <= group_rank < g.size():
            raise ValueError(f"{what}: group_{arg}={group_rank} is out of range for a group "
                             f"of {g.size()}")
        return group_rank
    return 0 if rank is None else g.group_rank(rank, f"{what}: {arg}")


# -- buffers -----------------------------------------------------------------------------------


class _Side:
    """Where an engine reads buffers: 'nccl' (the group's GPU), 'device' (a CUDA-aware MPI
    on the tensor's GPU) or 'host' (NumPy)."""

    def __init__(self, g: ProcessGroup, tensors: Sequence[Tensor], what: str) -> None:
        self.what = what
        cuda = [t for t in tensors if t.is_cuda]
        self.engine: Any
        self.problem: str | None = None  # reported by _agree, so every rank raises
        if g.nccl is not None and cuda:
            for t in tensors:
                if not t.is_cuda or t.device.index != g.nccl.device:
                    self.problem = (f"backend 'nccl' works on tensors on this rank's GPU "
                                    f"cuda:{g.nccl.device}, got one on {t.device}")
            self.kind, self.engine = "nccl", g.nccl
        else:
            assert g.mpi is not None
            self.engine = g.mpi
            self.kind = "device" if cuda and g.mpi.reads_device() else "host"
        self.device = cuda[0].device if cuda else CPU

    def stage(self, t: Tensor) -> Any:
        """`t`'s values as a contiguous array here (t's own array when it already is)."""
        if self.kind == "host":
            return np.ascontiguousarray(move_array(t.array, CPU))
        with on_device(t.device):
            return t._xp.ascontiguousarray(t.array)

    def output(self, t: Tensor, shape: tuple) -> tuple[Any, Callable[[], None]]:
        """A buffer of `shape` the engine writes `t`'s new values into (t's own memory when
        it is contiguous here) and the step that puts them into t when the op completes."""
        here = isinstance(t.array, np.ndarray) == (self.kind == "host")
        if here and t.array.flags.c_contiguous:
            return t.array.reshape(shape), lambda: _write(t, t.array)
        buf = self.empty(shape, t.dtype)
        return buf, lambda: _write(t, buf)

    def empty(self, shape: tuple, dtype: Any) -> Any:
        if self.kind == "host":
            return np.empty(shape, dtype)
        from ..backend import cupy_module
        with on_device(self.device):
            return cupy_module().empty(shape, dtype)


def _write(t: Tensor, values: Any) -> None:
    """Put `values` (same number of elements) into t's memory and mark t as changed."""
    if values is not t.array:
        values = move_array(values, t.device).reshape(t.array.shape)
        with on_device(t.device):
            t._xp.copyto(t.array, values, casting="unsafe")
    t._version_box[0] += 1


def _run(side: _Side, launch: Callable[[], Any], finish: list, buffers: tuple,
         async_op: bool, result: Any = None) -> Any:
    """Start an operation; return its Work when `async_op`, else wait and return `result`."""
    if side.kind == "nccl":
        launch()
        for step in finish:  # NOTE: stream-ordered after the NCCL call: no host wait needed
            step()
        work = Work([], [], buffers, event=side.engine.event(), result=result,
                    what=side.what)
    else:
        work = Work(launch(), finish, buffers, result=result, what=side.what)
    return work if async_op else work.result()


def _scaled(buf: Any, op: ReduceOp, n: int) -> list:
    """The finishing step of an MPI average (a SUM divided by the group size)."""
    if op != ReduceOp.AVG:
        return []

    def scale() -> None:
        buf[...] = buf / n
    return [scale]


def _member(g: ProcessGroup) -> bool:
    return g.comm is not None


# -- collectives -------------------------------------------------------------------------------


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: ProcessGroup | None = None,
               async_op: bool = False) -> Work | None:
    """Reduce `tensor` over the group's ranks, in place on every rank."""
    what = "all_reduce"
    g = resolve(group, what)
    t, op = _tensor(tensor, what, "tensor"), as_reduce_op(op, what)
    if not _member(g):
        return None
    side = _Side(g, [t], what)
    _agree(g, what, _describe(t), None, side)
    buf = side.stage(t)
    if side.kind == "nccl":
        return _run(side, lambda: side.engine.all_reduce(buf, op, what),
                    [lambda: _write(t, buf)], (buf,), async_op)
    return _run(side, lambda: side.engine.all_reduce(buf, op, what),
                _scaled(buf, op, g.size()) + [lambda: _write(t, buf)], (buf,), async_op)


def broadcast(tensor: Tensor, src: int | None = None, group: ProcessGroup | None = None,
              async_op: bool = False, group_src: int | None = None) -> Work | None:
    """Copy rank `src`'s tensor into every rank's."""
    what = "broadcast"
    g = resolve(group, what)
    t = _tensor(tensor, what, "tensor")
    if not _member(g):
        return None
    root = _root(g, src, group_src, what, "src")
    side = _Side(g, [t], what)
    _agree(g, what, _describe(t), None, side)
    buf = side.stage(t)
    return _run(side, lambda: side.engine.broadcast(buf, root, what),
                [lambda: _write(t, buf)], (buf,), async_op)


def reduce(tensor: Tensor, dst: int | None = None, op: ReduceOp = ReduceOp.SUM,
           group: ProcessGroup | None = None, async_op: bool = False,
           group_dst: int | None = None) -> Work | None:
    """Reduce the ranks' tensors into rank `dst`'s (the others' are left as they were)."""
    what = "reduce"
    g = resolve(group, what)
    t, op = _tensor(tensor, what, "tensor"), as_reduce_op(op, what)
    if not _member(g):
        return None
    root = _root(g, dst, group_dst, what, "dst")
    side = _Side(g, [t], what)
    _agree(g, what, _describe(t), None, side)
    buf = side.stage(t)
    mine = g.rank() == root
    finish = ([lambda: _write(t, buf)] if mine else [])
    if side.kind != "nccl" and mine:
        finish = _scaled(buf, op, g.size()) + finish
    return _run(side, lambda: side.engine.reduce(buf, op, root, what), finish, (buf,),
                async_op)


def _gathered_into(outs: list[Tensor], flat: Any) -> list:
    return [lambda i=i, o=o: _write(o, flat[i]) for i, o in enumerate(outs)]


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group: ProcessGroup | None = None,
               async_op: bool = False) -> Work | None:
    """Every rank's tensor, into `tensor_list` (one tensor per rank) on every rank."""
    what = "all_gather"
    g = resolve(group, what)
    t, outs = _tensor(tensor, what, "tensor"), _tensor_list(tensor_list, what, "tensor_list")
    if not _member(g):
        return None
    problem = _list_problem(outs, t, g.size(), "tensor_list")
    side = _Side(g, [t, *outs], what)
    _agree(g, what, _describe(t), problem, side)
    send, flat = side.stage(t), side.empty((g.size(), *t.shape), t.dtype)
    return _run(side, lambda: side.engine.all_gather(send, flat, what),
                _gathered_into(outs, flat), (send, flat), async_op)


def _list_problem(ts: list[Tensor], like: Tensor, n: int, arg: str) -> str | None:
    if len(ts) != n:
        return f"{arg} has {len(ts)} tensors but the group has {n} ranks"
    for i, o in enumerate(ts):
        if _describe(o) != _describe(like):
            return f"{arg}[{i}] is {_fmt(_describe(o))} but the tensor is {_fmt(_describe(like))}"
    return None


def _numel(t: Tensor) -> int:
    return int(math.prod(t.shape))


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor,
                           group: ProcessGroup | None = None,
                           async_op: bool = False) -> Work | None:
    """Every rank's input, concatenated (or stacked) in rank order into `output_tensor`,
    which holds group-size times the input's elements."""
    what = "all_gather_into_tensor"
    g = resolve(group, what)
    t, out = _tensor(input_tensor, what, "input_tensor"), _tensor(output_tensor, what,
                                                                   "output_tensor")
    if not _member(g):
        return None
    problem = _fused_problem(out, t, g.size(), "output_tensor", "input_tensor")
    side = _Side(g, [t, out], what)
    _agree(g, what, _describe(t), problem, side)
    send, (flat, done) = side.stage(t), side.output(out, (g.size(), *t.shape))
    return _run(side, lambda: side.engine.all_gather(send, flat, what), [done], (send, flat),
                async_op)


def _fused_problem(big: Tensor, small: Tensor, n: int, big_arg: str,
                   small_arg: str) -> str | None:
    if big.dtype != small.dtype:
        return f"{big_arg} is {big.dtype} but {small_arg} is {small.dtype}"
    if _numel(big) != n * _numel(small):
        return (f"{big_arg} of shape {tuple(big.shape)} must hold {n} (the group size) "
                f"times the elements of {small_arg} of shape {tuple(small.shape)}")
    return None


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group: ProcessGroup | None = None,
                          async_op: bool = False) -> Work | None:
    """Reduce the ranks' inputs and give rank i the i-th of group-size equal chunks."""
    what = "reduce_scatter_tensor"
    g = resolve(group, what)
    t, out = _tensor(input, what, "input"), _tensor(output, what, "output")
    op = as_reduce_op(op, what)
    if not _member(g):
        return None
    problem = _fused_problem(t, out, g.size(), "input", "output")
    side = _Side(g, [t, out], what)
    _agree(g, what, _describe(t), problem, side)
    send, (recv, done) = side.stage(t), side.output(out, tuple(out.shape))
    finish = [done]
    if side.kind != "nccl":
        finish = _scaled(recv, op, g.size()) + finish
    return _run(side, lambda: side.engine.reduce_scatter(send, recv, op, what), finish,
                (send, recv), async_op)


def gather(tensor: Tensor, gather_list: list[Tensor] | None = None, dst: int | None = None,
           group: ProcessGroup | None = None, async_op: bool = False,
           group_dst: int | None = None) -> Work | None:
    """Every rank's tensor, into `gather_list` on rank `dst` (None elsewhere)."""
    what = "gather"
    g = resolve(group, what)
    t = _tensor(tensor, what, "tensor")
    if not _member(g):
        return None
    root = _root(g, dst, group_dst, what, "dst")
    mine = g.rank() == root
    outs = _tensor_list(gather_list, what, "gather_list") if mine else []
    problem = _list_problem(outs, t, g.size(), "gather_list") if mine else None
    side = _Side(g, [t, *outs], what)
    _agree(g, what, _describe(t), problem, side)
    send = side.stage(t)
    flat = side.empty((g.size(), *t.shape), t.dtype) if mine else None
    if side.kind == "nccl":
        sends = [(root, send)]
        recvs = [(r, flat[r]) for r in range(g.size())] if flat is not None else []
        launch: Callable = lambda: side.engine.exchange(sends, recvs, what)  # noqa: E731
    else:
        launch = lambda: side.engine.gather(send, flat, root)  # noqa: E731
    finish = _gathered_into(outs, flat) if flat is not None else []
    return _run(side, launch, finish, (send, flat), async_op)


def scatter(tensor: Tensor, scatter_list: list[Tensor] | None = None, src: int | None = None,
            group: ProcessGroup | None = None, async_op: bool = False,
            group_src: int | None = None) -> Work | None:
    """Rank `src`'s scatter_list[i] into rank i's tensor."""
    what = "scatter"
    g = resolve(group, what)
    t = _tensor(tensor, what, "tensor")
    if not _member(g):
        return None
    root = _root(g, src, group_src, what, "src")
    mine = g.rank() == root
    ins = _tensor_list(scatter_list, what, "scatter_list") if mine else []
    problem = _list_problem(ins, t, g.size(), "scatter_list") if mine else None
    side = _Side(g, [t, *ins], what)
    _agree(g, what, _describe(t), problem, side)
    recv, done = side.output(t, tuple(t.shape))
    flat = None
    if mine:
        flat = side.empty((g.size(), *t.shape), t.dtype)
        for i, s in enumerate(ins):
            flat[i] = side.stage(s)
    if side.kind == "nccl":
        sends = [(r, flat[r]) for r in range(g.size())] if flat is not None else []
        launch: Callable = lambda: side.engine.exchange(  # noqa: E731
            sends, [(root, recv)], what)
    else:
        launch = lambda: side.engine.scatter(flat, recv, root)  # noqa: E731
    return _run(side, launch, [done], (flat, recv), async_op)


def _splits(sizes: Sequence[int] | None, t: Tensor, n: int, arg: str) -> tuple[list, str | None]:
    rows = t.shape[0] if t.ndim else 1
    if sizes is None:
        if rows % n:
            return [], f"{arg} is None, so dim 0 ({rows}) must divide by the group size {n}"
        return [rows // n] * n, None
    sizes = [int(s) for s in sizes]
    if len(sizes) != n or sum(sizes) != rows or any(s < 0 for s in sizes):
        return sizes, (f"{arg}={sizes} must be {n} sizes (one per rank) adding up to dim 0 "
                       f"({rows})")
    return sizes, None


def all_to_all_single(output: Tensor, input: Tensor,
                      output_split_sizes: Sequence[int] | None = None,
                      input_split_sizes: Sequence[int] | None = None,
                      group: ProcessGroup | None = None, async_op: bool = False) -> Work | None:
    """Split `input` along dim 0 and send the j-th piece to rank j; `output` receives the
    pieces in rank order. Rank i's input_split_sizes[j] must be rank j's
    output_split_sizes[i]."""
    what = "all_to_all_single"
    g = resolve(group, what)
    t, out = _tensor(input, what, "input"), _tensor(output, what, "output")
    if not _member(g):
        return None
    n = g.size()
    send_rows, p1 = _splits(input_split_sizes, t, n, "input_split_sizes")
    recv_rows, p2 = _splits(output_split_sizes, out, n, "output_split_sizes")
    problem = p1 or p2
    if problem is None and (out.dtype != t.dtype or tuple(out.shape[1:]) != tuple(t.shape[1:])):
        problem = (f"output is {_fmt(_describe(out))} but input is {_fmt(_describe(t))}: "
                   "they must share dtype and the sizes after dim 0")
    side = _Side(g, [t, out], what)
    _agree(g, what, (str(t.dtype), tuple(t.shape[1:]), t.device.type), problem, side)
    with waiting(what):
        plan = g.comm.allgather((send_rows, recv_rows))
    bad = [(i, j) for i in range(n) for j in range(n) if plan[i][0][j] != plan[j][1][i]]
    if bad:
        i, j = bad[0]
        raise RuntimeError(f"{what}: rank {g.ranks[i]} sends {plan[i][0][j]} rows to rank "
                           f"{g.ranks[j]}, which expects {plan[j][1][i]} "
                           f"(input_split_sizes per rank: {[p[0] for p in plan]}, "
                           f"output_split_sizes per rank: {[p[1] for p in plan]})")
    row = int(math.prod(t.shape[1:]))
    send = side.stage(t).reshape(-1)
    recv, done = side.output(out, (_numel(out),))
    if side.kind == "nccl":
        s_off = np.concatenate([[0], np.cumsum(send_rows)]).astype(int) * row
        r_off = np.concatenate([[0], np.cumsum(recv_rows)]).astype(int) * row
        sends = [(j, send[s_off[j]:s_off[j + 1]]) for j in range(n)]
        recvs = [(j, recv[r_off[j]:r_off[j + 1]]) for j in range(n)]
        launch: Callable = lambda: side.engine.exchange(sends, recvs, what)  # noqa: E731
    else:
        launch = lambda: side.engine.all_to_all(  # noqa: E731
            send, recv, [s * row for s in send_rows], [r * row for r in recv_rows])
    return _run(side, launch, [done], (send, recv), async_op)


# -- point to point ----------------------------------------------------------------------------


def _p2p(g: ProcessGroup, t: Tensor, what: str) -> _Side:
    """The side of a send or receive, which has no peers to agree with: its problem is
    raised here."""
    side = _Side(g, [t], what)
    if side.problem is not None:
        raise RuntimeError(f"{what}: {side.problem}")
    return side


def isend(tensor: Tensor, dst: int | None = None, group: ProcessGroup | None = None,
          tag: int = 0, group_dst: int | None = None) -> Work | None:
    """Send `tensor` to rank `dst`; returns a Work to wait on."""
    what = "isend"
    g = resolve(group, what)
    t = _tensor(tensor, what, "tensor")
    if not _member(g):
        return None
    if dst is None and group_dst is None:
        raise ValueError(f"{what}: give dst (or group_dst)")
    peer = _root(g, dst, group_dst, what, "dst")
    side = _p2p(g, t, what)
    buf = side.stage(t)
    if side.kind == "nccl":
        launch: Callable = lambda: side.engine.exchange([(peer, buf)], [], what)  # noqa: E731
    else:
        launch = lambda: side.engine.send(buf, peer, tag)  # noqa: E731
    return _run(side, launch, [], (buf,), True)


def irecv(tensor: Tensor, src: int | None = None, group: ProcessGroup | None = None,
          tag: int = 0, group_src: int | None = None) -> Work | None:
    """Receive into `tensor` from rank `src` (any rank when None, MPI only); the Work's
    result() is the sender's rank."""
    return _recv("irecv", tensor, src, group, tag, group_src, True)


def send(tensor: Tensor, dst: int | None = None, group: ProcessGroup | None = None,
         tag: int = 0, group_dst: int | None = None) -> None:
    work = isend(tensor, dst, group, tag, group_dst)
    if work is not None:
        work.wait()


def recv(tensor: Tensor, src: int | None = None, group: ProcessGroup | None = None,
         tag: int = 0, group_src: int | None = None) -> int:
    """Receive into `tensor` from rank `src` (any rank when None); returns the sender."""
    return _recv("recv", tensor, src, group, tag, group_src, False)


def _recv(what: str, tensor: Tensor, src: int | None, group: ProcessGroup | None, tag: int,
          group_src: int | None, async_op: bool) -> Any:
    g = resolve(group, what)
    t = _tensor(tensor, what, "tensor")
    if not _member(g):
        return None if async_op else -1
    peer = None if src is None and group_src is None else _root(g, src, group_src, what,
                                                                "src")
    side = _p2p(g, t, what)
    if side.kind == "nccl":
        if peer is None:
            raise ValueError(f"{what}: backend 'nccl' needs src: it cannot receive from any "
                             "rank")
        buf = side.stage(t)
        return _run(side, lambda: side.engine.exchange([], [(peer, buf)], what),
                    [lambda: _write(t, buf)], (buf,), async_op, g.ranks[peer])
    engine: MPIEngine = side.engine
    buf = side.stage(t)

    def received(statuses: list, error: Exception | None) -> int:
        sender = statuses[0].Get_source()
        if error is not None:  # NOTE: MPI_ERR_TRUNCATE: the message was larger than buf
            raise RuntimeError(f"{what}: rank {g.ranks[sender]} sent more than the tensor "
                               f"({_fmt(_describe(t))}) holds ({buf.nbytes} bytes): "
                               f"{error}") from None
        nbytes = statuses[0].Get_count(engine.MPI.BYTE)
        if nbytes != buf.nbytes:
            raise RuntimeError(f"{what}: rank {g.ranks[sender]} sent {nbytes} bytes but the "
                               f"tensor ({_fmt(_describe(t))}) holds {buf.nbytes}")
        return g.ranks[sender]

    work = Work(engine.recv(buf, engine.MPI.ANY_SOURCE if peer is None else peer, tag),
                [lambda: _write(t, buf)], (buf,), what=what, on_status=received)
    return work if async_op else work.result()


def barrier(group: ProcessGroup | None = None, async_op: bool = False,
            device_ids: Any = None) -> Work | None:
    """Wait until every rank of the group has reached it."""
    g = resolve(group, "barrier")
    if not _member(g):
        return None
    assert g.mpi is not None
    work = g.mpi.barrier()
    if async_op:
        return work
    work.wait()
    return None


# -- objects (pickle: for trusted peers only) ---------------------------------------------------


def broadcast_object_list(object_list: list, src: int | None = None,
                          group: ProcessGroup | None = None, device: Any = None,
                          group_src: int | None = None) -> None:
    """Rank `src`'s objects into every rank's `object_list` (same length everywhere).
    Objects travel pickled: unpickling runs code, so use it only among trusted peers."""
    what = "broadcast_object_list"
    g = resolve(group, what)
    if not _member(g):
        return
    root = _root(g, src, group_src, what, "src")
    with waiting(what):
        received = g.comm.bcast(list(object_list) if g.rank() == root else None, root=root)
    if len(received) != len(object_list):
        raise RuntimeError(f"{what}: rank {g.ranks[root]} sent {len(received)} objects but "
                           f"object_list here has {len(object_list)}")
    object_list[:] = received


def all_gather_object(object_list: list, obj: Any, group: ProcessGroup | None = None) -> None:
    """Every rank's `obj` into `object_list` (group-size long). Pickled: trusted peers only."""
    what = "all_gather_object"
    g = resolve(group, what)
    if not _member(g):
        return
    with waiting(what):
        gathered = g.comm.allgather(obj)
    if len(object_list) != len(gathered):
        raise RuntimeError(f"{what}: object_list has {len(object_list)} entries but the "
                           f"group has {len(gathered)} ranks")
    object_list[:] = gathered


def gather_object(obj: Any, object_gather_list: list | None = None, dst: int | None = None,
                  group: ProcessGroup | None = None, group_dst: int | None = None) -> None:
    """Every rank's `obj` into `object_gather_list` on rank `dst`. Pickled: trusted peers."""
    what = "gather_object"
    g = resolve(group, what)
    if not _member(g):
        return
    root = _root(g, dst, group_dst, what, "dst")
    with waiting(what):
        gathered = g.comm.gather(obj, root=root)
    if g.rank() == root:
        if object_gather_list is None or len(object_gather_list) != len(gathered):
            raise RuntimeError(f"{what}: on dst, object_gather_list must be a list of "
                               f"{len(gathered)} entries (the group size)")
        object_gather_list[:] = gathered


def scatter_object_list(scatter_object_output_list: list,
                        scatter_object_input_list: list | None = None, src: int | None = None,
                        group: ProcessGroup | None = None, group_src: int | None = None) -> None:
    """Rank `src`'s scatter_object_input_list[i] into rank i's
    scatter_object_output_list[0]. Pickled: trusted peers only."""
    what = "scatter_object_list"
    g = resolve(group, what)
    if not _member(g):
        return
    root = _root(g, src, group_src, what, "src")
    items = list(scatter_object_input_list or []) if g.rank() == root else None
    with waiting(what):
        ok = g.comm.bcast(items is not None and len(items) == g.size(), root=root)
    if not ok:
        raise RuntimeError(f"{what}: rank {g.ranks[root]}'s scatter_object_input_list must "
                           f"have {g.size()} entries (the group size)")
    with waiting(what):
        scatter_object_output_list[0] = g.comm.scatter(items, root=root)
