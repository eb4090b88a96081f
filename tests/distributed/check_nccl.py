"""The NCCL backend with world size 1 (`python check_nccl.py` or mpiexec -n 1): each
collective on CUDA tensors against NumPy; CPU tensors of the group go over MPI."""
import numpy as np

import gradflow as gf
import gradflow.distributed as dist
from gradflow.distributed import ReduceOp

dist.init_process_group("nccl")
assert dist.get_backend() == "nccl" and dist.get_world_size() == 1
close = np.testing.assert_allclose
x = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
for op in (ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT, ReduceOp.MAX, ReduceOp.MIN):
    t = gf.tensor(x, device="cuda")
    dist.all_reduce(t, op=op)
    close(t.cpu().numpy(), x)
t = gf.tensor(x, device="cuda").t()
work = dist.all_reduce(t, async_op=True)
work.wait()
gf.cuda.synchronize()
assert work.is_completed()
close(t.cpu().numpy(), x.T)
t = gf.tensor(x, device="cuda")
dist.broadcast(t, src=0)
dist.reduce(t, dst=0)
close(t.cpu().numpy(), x)
outs = [gf.zeros(3, 4, device="cuda")]
dist.all_gather(outs, gf.tensor(x, device="cuda"))
close(outs[0].cpu().numpy(), x)
out = gf.zeros(3, 4, device="cuda")
dist.reduce_scatter_tensor(out, gf.tensor(x, device="cuda"))
close(out.cpu().numpy(), x)
out = gf.zeros(3, 4, device="cuda")
dist.all_to_all_single(out, gf.tensor(x, device="cuda"))
close(out.cpu().numpy(), x)
lst = [gf.zeros(3, 4, device="cuda")]
dist.gather(gf.tensor(x, device="cuda"), lst, dst=0)
close(lst[0].cpu().numpy(), x)
t = gf.zeros(3, 4, device="cuda")
dist.scatter(t, [gf.tensor(x, device="cuda")], src=0)
close(t.cpu().numpy(), x)
c = gf.tensor(x)  # a CPU tensor in an NCCL group: over MPI
dist.all_reduce(c)
close(c.numpy(), x)
dist.destroy_process_group()
print("OK nccl", flush=True)
