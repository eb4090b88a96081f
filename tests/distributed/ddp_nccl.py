"""DistributedDataParallel and SyncBatchNorm on backend 'nccl': run as
`mpiexec -n 1 python tests/distributed/ddp_nccl.py` on a machine with a GPU (tests/test_ddp.py,
marked gpu, does). One rank's average is its own gradient, so three SGD steps through DDP's
buckets must match the plain model's, and SyncBatchNorm's op BatchNorm's; prints
"ddp_nccl ok".
"""
from __future__ import annotations

import numpy as np

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn
from gradflow.nn import functional as F
from gradflow.nn.modules.sync_batchnorm import SyncBatchNormTrain
from gradflow.nn.parallel import DistributedDataParallel as DDP


def net() -> nn.Module:
    gf.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 5)).cuda()


def main() -> None:
    dist.init_process_group("nccl")
    assert dist.get_backend() == "nccl"
    ddp = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(net()),
              device_ids=[gf.cuda.current_device()], bucket_cap_mb=0.0005)
    plain = net()
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.standard_normal((8, 3, 6, 6)).astype(np.float32), device="cuda")
    y = gf.tensor(rng.integers(0, 5, 8), device="cuda")
    for model in (ddp, plain):
        opt = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for (name, p), q in zip(ddp.module.named_parameters(), plain.parameters()):
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().cpu().numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)
    trace = ddp.reduction_trace
    assert len(trace.launched) == len(ddp.bucket_parameter_names) >= 2, trace
    # NOTE: a group of one makes SyncBatchNorm fall back to BatchNorm; its op, called
    # directly, all-reduces its statistics and gradient sums over NCCL all the same
    a = rng.standard_normal((5, 3, 4)).astype(np.float32) * 2 + 1
    outs = []
    for fn in (lambda t: SyncBatchNormTrain.apply(t, None, None, running_mean=None,
                                                  running_var=None, momentum=0.1, eps=1e-5,
                                                  group=None),
               lambda t: F.batch_norm(t, None, None, training=True)):
        t = gf.tensor(a, device="cuda", requires_grad=True)
        out = fn(t)
        (out * out).sum().backward()
        outs.append((out.detach().cpu().numpy(), t.grad.cpu().numpy()))
    for got, want in zip(*outs):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    print("ddp_nccl ok", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
