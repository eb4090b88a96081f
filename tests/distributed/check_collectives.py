"""Run under `mpiexec -n N`: every collective and ReduceOp against NumPy on each rank,
async handles, object collectives, new_group, and mismatches raising on every rank."""
import datetime
import sys

import numpy as np

import gradflow as gf
import gradflow.distributed as dist
from gradflow.distributed import ReduceOp

dist.init_process_group("mpi")
R, W = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and dist.get_backend() == "mpi"
assert sys.excepthook is not sys.__excepthook__, "init_process_group installs its abort hook"
close = np.testing.assert_allclose


def value(r, shape=(3, 4), dtype=np.float64):
    """Rank r's input: distinct per rank, the same on every rank that computes it."""
    rng = np.random.default_rng(100 + r)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(1, 5, size=shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.uniform(0.5, 1.5, size=shape).astype(dtype)


everyone = lambda shape=(3, 4), dtype=np.float64: [value(r, shape, dtype) for r in range(W)]  # noqa
REDUCE = {ReduceOp.SUM: np.sum, ReduceOp.AVG: np.mean, ReduceOp.PRODUCT: np.prod,
          ReduceOp.MAX: np.max, ReduceOp.MIN: np.min}

# all_reduce: each op on float64, float32, float16 and int64; a transposed (non-contiguous)
# tensor; bool tensors as logical or/and
for op, fn in REDUCE.items():
    for dtype in (np.float64, np.float32, np.float16, np.int64):
        if op == ReduceOp.AVG and dtype == np.int64:
            continue
        t = gf.tensor(value(R, dtype=dtype))
        assert dist.all_reduce(t, op=op) is None
        tol = 1e-3 if dtype == np.float16 else 1e-6
        want = fn(np.stack(everyone(dtype=dtype)).astype(np.float64), axis=0)
        close(t.numpy().astype(np.float64), want, rtol=tol, err_msg=f"all_reduce {op} {dtype}")
        assert t.dtype == dtype
    t = gf.tensor(value(R)).t()  # a transposed view: written back through its strides
    dist.all_reduce(t, op=op)
    close(t.numpy(), fn(np.stack(everyone()), axis=0).T, rtol=1e-6)
b = gf.tensor(value(R, dtype=np.bool_))
dist.all_reduce(b, op=ReduceOp.SUM)
np.testing.assert_array_equal(b.numpy(), np.any(everyone(dtype=np.bool_), axis=0))
b = gf.tensor(value(R, dtype=np.bool_))
dist.all_reduce(b, op=ReduceOp.MIN)
np.testing.assert_array_equal(b.numpy(), np.all(everyone(dtype=np.bool_), axis=0))
t = gf.tensor(value(R, dtype=np.int32))
dist.all_reduce(t, op=ReduceOp.BXOR)
np.testing.assert_array_equal(t.numpy(), np.bitwise_xor.reduce(everyone(dtype=np.int32)))
t0 = gf.tensor(float(R + 1))  # 0-d
dist.all_reduce(t0)
close(t0.item(), W * (W + 1) / 2)
t = gf.tensor(value(R))
version = t._version
dist.all_reduce(t)
assert t._version == version + 1, "all_reduce must count as an in-place change"

# async: a work handle, completed after wait; the result is only there after wait
t = gf.tensor(value(R))
work = dist.all_reduce(t, op=ReduceOp.AVG, async_op=True)
assert work.wait() is True and work.is_completed()
close(t.numpy(), np.mean(everyone(), axis=0), rtol=1e-12)
ts = [gf.tensor(value(R + k)) for k in range(3)]  # several in flight, waited out of order
works = [dist.all_reduce(t, async_op=True) for t in ts]
for w in reversed(works):
    assert w.wait(timeout=datetime.timedelta(seconds=20))
for k, t in enumerate(ts):
    close(t.numpy(), np.sum([value(r + k) for r in range(W)], axis=0), rtol=1e-12)
assert dist.group.WORLD is dist.GroupMember.WORLD and dist.group.WORLD is not None
t2 = gf.tensor(value(R, (5,)))
works = [dist.broadcast(t2, src=W - 1, async_op=True), dist.barrier(async_op=True)]
for w in works:
    w.wait()
close(t2.numpy(), value(W - 1, (5,)))

# broadcast, reduce
t = gf.tensor(value(R, (2, 3, 5)))
dist.broadcast(t, src=1)
close(t.numpy(), value(1, (2, 3, 5)))
for op, fn in REDUCE.items():
    t = gf.tensor(value(R))
    dist.reduce(t, dst=1, op=op)
    close(t.numpy(), fn(np.stack(everyone()), axis=0) if R == 1 else value(R), rtol=1e-12)

# all_gather, all_gather_into_tensor (stacked and concatenated), reduce_scatter_tensor
outs = [gf.zeros(3, 4, dtype=gf.float64) for _ in range(W)]
dist.all_gather(outs, gf.tensor(value(R)))
for r in range(W):
    close(outs[r].numpy(), value(r))
out = gf.zeros(W, 3, 4, dtype=gf.float64)
dist.all_gather_into_tensor(out, gf.tensor(value(R)))
close(out.numpy(), np.stack(everyone()))
out = gf.zeros(W * 3, 4, dtype=gf.float64)
w = dist.all_gather_into_tensor(out, gf.tensor(value(R)), async_op=True)
w.wait()
close(out.numpy(), np.concatenate(everyone()))
for op, fn in REDUCE.items():
    out = gf.zeros(2, 4, dtype=gf.float64)
    dist.reduce_scatter_tensor(out, gf.tensor(value(R, (2 * W, 4))), op=op)
    full = fn(np.stack(everyone((2 * W, 4))), axis=0)
    close(out.numpy(), full[2 * R:2 * R + 2], rtol=1e-12)

out = gf.zeros(4, 2, dtype=gf.float64).t()  # a non-contiguous output: written back
dist.reduce_scatter_tensor(out, gf.tensor(value(R, (2 * W, 4))))
close(out.numpy(), np.sum(everyone((2 * W, 4)), axis=0)[2 * R:2 * R + 2], rtol=1e-12)
out = gf.zeros(4, 3 * W, dtype=gf.float64).t()
dist.all_gather_into_tensor(out, gf.tensor(value(R)))
close(out.numpy(), np.concatenate(everyone()))

# gather, scatter
lst = [gf.zeros(3, 4, dtype=gf.float64) for _ in range(W)] if R == 0 else None
dist.gather(gf.tensor(value(R)), lst, dst=0)
if R == 0:
    for r in range(W):
        close(lst[r].numpy(), value(r))
t = gf.zeros(3, 4, dtype=gf.float64)
dist.scatter(t, [gf.tensor(value(10 + r)) for r in range(W)] if R == W - 1 else None,
             src=W - 1)
close(t.numpy(), value(10 + R))

# all_to_all_single: equal pieces, then uneven ones (rank i sends i + j + 1 rows to rank j)
inp = gf.tensor(np.arange(W * 2 * 3, dtype=np.float32).reshape(W * 2, 3) + 100 * R)
out = gf.zeros(W * 2, 3)
dist.all_to_all_single(out, inp)
want = np.concatenate([(np.arange(W * 2 * 3, dtype=np.float32).reshape(W * 2, 3)
                        + 100 * r)[2 * R:2 * R + 2] for r in range(W)])
close(out.numpy(), want)
send_rows = [R + j + 1 for j in range(W)]
recv_rows = [i + R + 1 for i in range(W)]
inp = gf.tensor(np.concatenate([np.full((n, 2), 10.0 * R + j) for j, n in enumerate(send_rows)]))
out = gf.zeros(sum(recv_rows), 2, dtype=gf.float64)
dist.all_to_all_single(out, inp, recv_rows, send_rows)
close(out.numpy(), np.concatenate([np.full((n, 2), 10 * i + R) for i, n in enumerate(recv_rows)]))

# send and recv around the ring; irecv from any rank says who sent
nxt, prv = (R + 1) % W, (R - 1) % W
t = gf.zeros(4, dtype=gf.float64)
sw = dist.isend(gf.tensor(value(R, (4,))), dst=nxt)
assert dist.recv(t, src=prv) == prv
sw.wait()
close(t.numpy(), value(prv, (4,)))
if R == 0:
    for _ in range(W - 1):
        t = gf.zeros(2, dtype=gf.int64)
        w = dist.irecv(t, tag=7)
        sender = w.result()
        np.testing.assert_array_equal(t.numpy(), [sender, sender * 2])
else:
    dist.send(gf.tensor([R, R * 2]), dst=0, tag=7)

# objects
objs = [{"rank": R}, None, "x"]
dist.broadcast_object_list(objs, src=W - 1)
assert objs == [{"rank": W - 1}, None, "x"], objs
gathered = [None] * W
dist.all_gather_object(gathered, ("r", R))
assert gathered == [("r", r) for r in range(W)], gathered
got = [None] * W if R == 1 else None
dist.gather_object(R * 10, got, dst=1)
assert R != 1 or got == [r * 10 for r in range(W)], got
mine = [None]
dist.scatter_object_list(mine, [f"to {r}" for r in range(W)] if R == 0 else None, src=0)
assert mine == [f"to {R}"], mine

# new_group: the first and last ranks; the others are outside it
ends = dist.new_group([0, W - 1])
assert dist.get_process_group_ranks(ends) == [0, W - 1]
t = gf.tensor(value(R))
if R in (0, W - 1):
    assert dist.get_rank(ends) == (0 if R == 0 else 1) and dist.get_world_size(ends) == 2
    dist.all_reduce(t, group=ends)
    close(t.numpy(), value(0) + value(W - 1))
    dist.broadcast(t, src=W - 1, group=ends)  # src is a global rank
    assert dist.get_global_rank(ends, 1) == W - 1 and dist.get_group_rank(ends, W - 1) == 1
else:
    assert dist.get_rank(ends) == -1
    assert dist.all_reduce(t, group=ends) is None
    close(t.numpy(), value(R))
dist.destroy_process_group(ends)


# mismatches raise the same clear error on every rank, and the world goes on
def raises(fn, *texts):
    try:
        fn()
    except (RuntimeError, ValueError) as err:
        for text in texts:
            assert text in str(err), (text, str(err))
        return
    raise AssertionError(f"rank {R}: no error; expected one naming {texts}")


raises(lambda: dist.all_reduce(gf.zeros(R + 1)), "all_reduce", "rank 0: shape (1,) float32",
       "rank 1: shape (2,) float32")
raises(lambda: dist.broadcast(gf.zeros(2, dtype=gf.float64 if R else gf.float32), src=0),
       "broadcast", "rank 0: shape (2,) float32", "rank 1: shape (2,) float64")
raises(lambda: dist.all_gather([gf.zeros(2)] * (W + (R == 1)), gf.zeros(2)),
       "all_gather", f"rank 1: tensor_list has {W + 1} tensors but the group has {W} ranks")
raises(lambda: dist.all_to_all_single(gf.zeros(W), gf.zeros(W + (R == 0)), [1] * W,
                                      [2] + [1] * (W - 1) if R == 0 else [1] * W),
       "all_to_all_single", "rank 0 sends 2 rows to rank 0, which expects 1")
raises(lambda: dist.all_reduce(gf.tensor([1, 2]), op=ReduceOp.AVG), "ReduceOp.AVG",
       "floating-point")
t = gf.zeros(3)
if R == 0:
    dist.send(gf.zeros(2), dst=1)
    dist.send(gf.zeros(5), dst=1)
elif R == 1:
    raises(lambda: dist.recv(t, src=0), "recv: rank 0 sent 8 bytes but the tensor (shape "
           "(3,) float32 on cpu) holds 12")
    raises(lambda: dist.recv(t), "recv: rank 0 sent more than the tensor (shape (3,) "
           "float32 on cpu) holds (12 bytes)")
# a Work waited with a timeout: rank 0's receive cannot complete before rank 1 sends
if R == 0:
    w = dist.irecv(gf.zeros(2), src=1, tag=5)
    assert not w.is_completed()
    raises(lambda: w.wait(timeout=datetime.timedelta(seconds=0.2)), "irecv: not completed "
           "by the other ranks within 0.2 s")
    dist.barrier()
    assert w.wait() and w.result() == 1
elif R == 1:
    dist.barrier()
    dist.send(gf.ones(2), dst=0, tag=5)
else:
    dist.barrier()
dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized() and dist.group.WORLD is None
assert sys.excepthook is sys.__excepthook__
print(f"OK rank {R} of {W}", flush=True)
