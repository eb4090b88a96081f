"""Run under `mpiexec -n 2`: CUDA tensors on tests/fakecupy.py (the fake_cuda fixture's
CuPy stand-in, set up here by hand) through both engines. Over MPI they are staged through
the host and come back on their GPU; over NCCL (a world-size-1 stand-in for
cupy.cuda.nccl that reads the raw device pointers it is given) every call runs on the
current stream with the right counts, types and offsets, and the Work waits on an event."""
import os
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import fakecupy  # noqa: E402

sys.modules["cupy"], sys.modules["cupyx"] = fakecupy, fakecupy.cupyx

import gradflow as gf  # noqa: E402
import gradflow.distributed as dist  # noqa: E402
from gradflow import backend  # noqa: E402
from gradflow.cuda import libraries  # noqa: E402
from gradflow.distributed import ReduceOp  # noqa: E402

backend.cupy_module.cache_clear()
backend._unavailable.clear()
libraries.missing = lambda cp: None
close = np.testing.assert_allclose
CALLS: list = []


class FakeCommunicator:
    """NcclCommunicator for one rank: each call checks its stream and device and copies
    between the device buffers its pointers name."""

    def __init__(self, ndev, uid, rank):
        self.ndev, self.device, self.pending = ndev, fakecupy.getDevice(), []
        COMMS.append((ndev, rank, uid))

    def _check(self, name, stream, datatype):
        assert self.ndev == 1, "the stand-in only models groups of one rank"
        assert stream == fakecupy.get_current_stream().ptr, (name, stream)
        assert fakecupy.getDevice() == self.device, name
        CALLS.append(name)
        return DTYPES[datatype]

    def _copy(self, src, dst, count, dtype):
        fakecupy.device_view(dst, dtype)._a[:count] = fakecupy.device_view(src, dtype)._a[:count]

    def allReduce(self, send, recv, count, datatype, op, stream):  # noqa: N802
        self._copy(send, recv, count, self._check("allReduce", stream, datatype))

    def reduce(self, send, recv, count, datatype, op, root, stream):
        assert root == 0
        self._copy(send, recv, count, self._check("reduce", stream, datatype))

    def broadcast(self, send, recv, count, datatype, root, stream):
        assert root == 0
        self._copy(send, recv, count, self._check("broadcast", stream, datatype))

    def allGather(self, send, recv, count, datatype, stream):  # noqa: N802
        self._copy(send, recv, count, self._check("allGather", stream, datatype))

    def reduceScatter(self, send, recv, count, datatype, op, stream):  # noqa: N802
        self._copy(send, recv, count, self._check("reduceScatter", stream, datatype))

    def send(self, buf, count, datatype, peer, stream):
        assert GROUP[0] and peer == 0
        self.pending.append((buf, count, self._check("send", stream, datatype)))

    def recv(self, buf, count, datatype, peer, stream):
        assert GROUP[0] and peer == 0
        src, n, dtype = self.pending.pop(0)
        assert n == count and dtype == self._check("recv", stream, datatype), (n, count)
        self._copy(src, buf, count, dtype)

    def destroy(self):
        CALLS.append("destroy")


GROUP = [False]
COMMS: list = []  # (ranks, rank, unique id) of each communicator made
DTYPES = {7: np.float32, 8: np.float64, 4: np.int64, 1: np.uint8}
nccl = types.ModuleType("cupy.cuda.nccl")
nccl.__dict__.update(
    available=True, NCCL_SUM=0, NCCL_PROD=1, NCCL_MAX=2, NCCL_MIN=3, NCCL_AVG=4, NCCL_INT8=0,
    NCCL_UINT8=1, NCCL_INT32=2, NCCL_UINT32=3, NCCL_INT64=4, NCCL_UINT64=5, NCCL_FLOAT16=6,
    NCCL_FLOAT32=7, NCCL_FLOAT64=8, get_unique_id=lambda: os.urandom(128),
    NcclCommunicator=FakeCommunicator, groupStart=lambda: GROUP.__setitem__(0, True),
    groupEnd=lambda: GROUP.__setitem__(0, False))
fakecupy.cuda.nccl = nccl
sys.modules["cupy.cuda"], sys.modules["cupy.cuda.nccl"] = fakecupy.cuda, nccl

gf.set_default_device("cuda")
assert dist.is_nccl_available()
dist.init_process_group()  # None: NCCL, as CUDA is usable and the default device is CUDA
R, W = dist.get_rank(), dist.get_world_size()
assert dist.get_backend() == "nccl" and fakecupy.getDevice() == R  # one GPU per local rank
gf.set_default_device("cpu")
ids = [None] * W
dist.all_gather_object(ids, COMMS[0])
assert [i[:2] for i in ids] == [(W, r) for r in range(W)], ids
assert all(i[2] == ids[0][2] for i in ids), "rank 0's unique id must reach every rank"


def value(r, shape=(3, 4)):
    return np.random.default_rng(100 + r).uniform(0.5, 1.5, size=shape)


def cuda(a):
    return gf.tensor(a, device=f"cuda:{R}")


# MPI with CUDA tensors: staged through the host, written back on the GPU
world_mpi = dist.new_group(backend="mpi")
t = cuda(value(R)).t()
dist.all_reduce(t, op=ReduceOp.AVG, group=world_mpi)
assert t.device == gf.device("cuda", R)
close(t.cpu().numpy(), np.mean([value(r) for r in range(W)], axis=0).T)
outs = [gf.zeros(3, 4, dtype=gf.float64, device=f"cuda:{R}") for _ in range(W)]
dist.all_gather(outs, cuda(value(R)), group=world_mpi)
for r in range(W):
    close(outs[r].cpu().numpy(), value(r))
t = cuda(value(R))
w = dist.broadcast(t, src=W - 1, group=world_mpi, async_op=True)
w.wait()
close(t.cpu().numpy(), value(W - 1))
assert CALLS == [], CALLS

# NCCL: one group per rank (world size 1), every collective
mine = [dist.new_group([r]) for r in range(W)][R]
x = value(R).astype(np.float32)
for op in (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.MAX):
    t = cuda(x).t()  # non-contiguous: staged on the device and written back
    assert dist.all_reduce(t, op=op, group=mine) is None
    close(t.cpu().numpy(), x.T)
fakecupy.clear_events()
work = dist.all_reduce(cuda(x), group=mine, async_op=True)
assert work.is_completed() and work.wait() and fakecupy.count("wait") == 1
t = cuda(x)
dist.broadcast(t, src=R, group=mine)
dist.reduce(t, dst=R, group=mine)
close(t.cpu().numpy(), x)
outs = [gf.zeros(3, 4, device=f"cuda:{R}")]
dist.all_gather(outs, cuda(x), group=mine)
close(outs[0].cpu().numpy(), x)
out = gf.zeros(3, 4, device=f"cuda:{R}")
dist.all_gather_into_tensor(out, cuda(x), group=mine)
close(out.cpu().numpy(), x)
out = gf.zeros(3, 4, dtype=gf.float64, device=f"cuda:{R}")
dist.reduce_scatter_tensor(out, cuda(value(R)), group=mine)
close(out.cpu().numpy(), value(R))
out = gf.zeros(3, 4, dtype=gf.float64, device=f"cuda:{R}")
dist.all_to_all_single(out, cuda(value(R)), group=mine)
close(out.cpu().numpy(), value(R))
lst = [gf.zeros(3, 4, device=f"cuda:{R}")]
dist.gather(cuda(x), lst, dst=R, group=mine)
close(lst[0].cpu().numpy(), x)
t = gf.zeros(2, dtype=gf.int64, device=f"cuda:{R}")
dist.scatter(t, [cuda(np.array([5, 6]))], src=R, group=mine)
close(t.cpu().numpy(), [5, 6])
b = cuda(np.array([True, False]))
dist.all_reduce(b, group=mine)
np.testing.assert_array_equal(b.cpu().numpy(), [True, False])
c = gf.tensor(x)  # a CPU tensor in an NCCL group goes over MPI
dist.all_reduce(c, group=mine)
close(c.numpy(), x)
try:
    dist.all_reduce(gf.zeros(2, device=f"cuda:{1 - R}"), group=mine)
    raise AssertionError("a tensor on another GPU must be refused")
except RuntimeError as err:
    assert f"all_reduce: rank {R}: backend 'nccl' works on tensors on this rank's GPU " \
        f"cuda:{R}, got one on cuda:{1 - R}" in str(err), err
want = ["allReduce"] * 4 + ["broadcast", "reduce", "allGather", "allGather", "reduceScatter",
                            "send", "recv", "send", "recv", "send", "recv", "allReduce"]
assert CALLS == want, CALLS
dist.destroy_process_group()
assert CALLS.count("destroy") == 2, CALLS  # the world's communicator and this rank's group's
print(f"OK fake cuda rank {R}", flush=True)
