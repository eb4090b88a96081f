"""DistributedDataParallel, SyncBatchNorm and DistributedSampler on real ranks: run as
`mpiexec -n N python tests/distributed/ddp_checks.py OUT_DIR`, N >= 2 (tests/test_ddp.py
runs 2 and 3).

Each rank runs every check, each against one process computing the same thing locally, and
writes OUT_DIR/rank{r}.json: {check name: "ok" or the failure}. A check compares only after
its collectives are done, so one failing check leaves the ranks in step for the next.
"""
from __future__ import annotations

import json
import sys
import time
import traceback

import numpy as np

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn
from gradflow.nn import functional as F
from gradflow.nn.parallel import DistributedDataParallel as DDP

N_PER_RANK, STEPS = 16, 20


def conv_net(seed: int, norm=nn.BatchNorm2d) -> nn.Module:
    gf.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norm(4), nn.ReLU(),
                         nn.Conv2d(4, 6, 3), norm(6), nn.ReLU(), nn.Flatten(),
                         nn.Linear(6 * 4 * 4, 5)).double()


def data(n: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    x = gf.tensor(rng.standard_normal((n, 3, 6, 6)) * 2 + 0.5)
    y = gf.tensor(rng.integers(0, 5, n))
    return x, y


def params_of(model: nn.Module) -> dict:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def assert_same(got: dict, want: dict, atol: float, what: str) -> None:
    assert got.keys() == want.keys(), (what, sorted(got), sorted(want))
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=atol, err_msg=f"{what}: {k}")


def rank_slice(rank: int) -> slice:
    return slice(rank * N_PER_RANK, (rank + 1) * N_PER_RANK)


def train(model, batches, steps: int) -> None:
    """SGD with momentum; `batches()` gives a list of (x, y, weight) for one step, whose
    weighted cross-entropies are summed into the loss."""
    opt = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(w * F.cross_entropy(model(x), y) for x, y, w in batches())
        loss.backward()
        opt.step()


# -- the checks ---------------------------------------------------------------------------
def check_sync_batchnorm_ddp_equals_one_process(rank: int, world: int) -> None:
    """DDP over SyncBatchNorm on 16 samples a rank = BatchNorm in one process on all of them
    (32 on two ranks)."""
    x, y = data(N_PER_RANK * world)
    # NOTE: rank 1 starts from other weights: DDP's broadcast from rank 0 must fix them.
    model = nn.SyncBatchNorm.convert_sync_batchnorm(conv_net(seed=rank))
    ddp = DDP(model)
    mine = rank_slice(rank)
    train(ddp, lambda: [(x[mine], y[mine], 1.0)], STEPS)
    reference = conv_net(seed=0)
    train(reference, lambda: [(x, y, 1.0)], STEPS)
    assert_same({k[len("module."):]: v for k, v in params_of(ddp).items()},
                params_of(reference), 1e-6, "SyncBatchNorm under DDP")


def check_batchnorm_ddp_equals_per_half_statistics(rank: int, world: int) -> None:
    """DDP over plain BatchNorm = one process whose BatchNorm takes each rank's half alone
    (torch's DDP: per-rank statistics), the loss averaged over the halves."""
    x, y = data(N_PER_RANK * world)
    ddp = DDP(conv_net(seed=0))
    mine = rank_slice(rank)
    train(ddp, lambda: [(x[mine], y[mine], 1.0)], STEPS)
    reference = conv_net(seed=0)
    halves = [(x[rank_slice(r)], y[rank_slice(r)], 1.0 / world) for r in range(world)]
    train(reference, lambda: halves, STEPS)
    # each forward first takes rank 0's buffers (broadcast_buffers), then moves its own
    before = ddp.module[1].running_mean.clone()
    everyone = [gf.zeros_like(before) for _ in range(world)]
    dist.all_gather(everyone, before)
    ddp.eval()
    with gf.no_grad():
        ddp(x[:2])
    after = ddp.module[1].running_mean.numpy()
    got, want = params_of(ddp.module), params_of(reference)
    assert not np.allclose(everyone[0].numpy(), everyone[1].numpy()), "ranks' own statistics"
    np.testing.assert_array_equal(after, everyone[0].numpy(), err_msg="rank 0's buffers")
    for name in [k for k in want if "running" in k or "num_batches" in k]:
        del got[name], want[name]  # the reference's ran once per half
    assert_same(got, want, 1e-6, "BatchNorm under DDP")


def mlp(seed: int) -> nn.Module:
    gf.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 8), nn.Tanh(), nn.Linear(8, 5)).double()


def check_no_sync_accumulation_equals_one_batch(rank: int, world: int) -> None:
    """no_sync over 3 micro-batches then a synced 4th = one batch of all 4 on every rank."""
    x, y = data(N_PER_RANK * world, seed=1)
    ddp = DDP(mlp(0), bucket_cap_mb=0.001)
    reference = mlp(0)
    opt = gf.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    ref_opt = gf.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    mine = np.arange(N_PER_RANK) + rank * N_PER_RANK
    new_trace = []
    for _ in range(3):
        opt.zero_grad()
        for m, micro in enumerate(np.split(mine, 4)):
            idx = gf.tensor(micro)
            if m < 3:
                with ddp.no_sync():
                    (F.cross_entropy(ddp(x[idx]), y[idx]) / 4).backward()
            else:
                before = ddp.reduction_trace
                local = ddp.module[0].weight.grad.numpy().copy()
                (F.cross_entropy(ddp(x[idx]), y[idx]) / 4).backward()
                new_trace.append(before is None or before is not ddp.reduction_trace)
        gathered = [gf.zeros_like(ddp.module[0].weight.grad) for _ in range(world)]
        dist.all_gather(gathered, gf.tensor(local))
        opt.step()
        ref_opt.zero_grad()
        F.cross_entropy(reference(x), y).backward()
        ref_opt.step()
    assert all(new_trace), "the synced backward made no new reduction trace"
    # NOTE: under no_sync the gradients stayed each rank's own
    assert not np.allclose(gathered[0].numpy(), gathered[1].numpy())
    assert_same(params_of(ddp.module), params_of(reference), 1e-9, "no_sync accumulation")


def check_buckets_launch_during_backward(rank: int, world: int) -> None:
    """With small buckets, every bucket but the last is launched before the last gradient
    of backward is ready, and all before backward returns."""
    x, y = data(N_PER_RANK * world)
    ddp = DDP(conv_net(seed=0), bucket_cap_mb=0.0005)
    mine = rank_slice(rank)
    loss = F.cross_entropy(ddp(x[mine]), y[mine])
    start = time.perf_counter()
    loss.backward()
    end = time.perf_counter()
    trace = ddp.reduction_trace
    buckets = len(ddp.bucket_parameter_names)
    assert buckets >= 4, ddp.bucket_parameter_names
    assert len(trace.launched) == buckets, trace
    assert start < trace.launched[0], (start, trace)
    assert all(t < trace.last_grad_ready for t in trace.launched[:-1]), trace
    assert trace.last_grad_ready <= trace.finished <= end, (trace, end)
    # bucket 0 holds the last layer, whose gradients backward gives first
    assert ddp.bucket_parameter_names[0][-1] == "7.bias", ddp.bucket_parameter_names


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        gf.manual_seed(0)
        self.body = nn.Linear(4, 4).double()
        self.used = nn.Linear(4, 3).double()
        self.unused = nn.Linear(4, 3).double()
        self.rank_zero_only = nn.Linear(4, 3).double()

    def forward(self, x, rank):
        h = self.body(x).tanh()
        out = self.used(h)
        return out + self.rank_zero_only(h) if rank == 0 else out


def check_unused_parameters_raise_without_the_flag(rank: int, world: int) -> None:
    ddp = DDP(TwoHeads())
    x = gf.tensor(np.random.default_rng(rank).standard_normal((5, 4)))
    ddp(x, rank).sum().backward()
    try:
        ddp(x, rank)
    except RuntimeError as err:
        text = str(err)
        assert "find_unused_parameters=True" in text, text
        assert "unused.weight" in text and "unused.bias" in text, text
        assert "used.weight" not in text.replace("unused.weight", ""), text
        return
    raise AssertionError("the forward after an incomplete reduction did not raise")


def check_unused_parameters_work_with_the_flag(rank: int, world: int) -> None:
    ddp = DDP(TwoHeads(), find_unused_parameters=True)
    rng = np.random.default_rng(5)
    xs = [gf.tensor(rng.standard_normal((5, 4))) for _ in range(world)]
    for _ in range(2):
        ddp.zero_grad()
        ddp(xs[rank], rank).sum().backward()
    reference = TwoHeads()
    sum(reference(xs[r], r).sum() for r in range(world)).backward()
    m = ddp.module
    assert m.unused.weight.grad is None and m.unused.bias.grad is None
    for name in ("body", "used", "rank_zero_only"):
        for p in ("weight", "bias"):
            got = getattr(getattr(m, name), p).grad.numpy()
            want = getattr(getattr(reference, name), p).grad.numpy() / world
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"{name}.{p}")


def check_sync_batchnorm_matches_batchnorm_on_all_samples(rank: int, world: int) -> None:
    """Outputs, input and parameter gradients and running statistics, for uneven local
    batches, 2D to 4D inputs, float64 and float32."""
    counts = [3 + 2 * r for r in range(world)]
    offsets = np.cumsum([0] + counts)
    for shape, dtype, tol in (((2, 5), "float64", 1e-12), ((3, 5, 7), "float64", 1e-12),
                              ((4, 3, 5, 2), "float32", 2e-5)):
        rng = np.random.default_rng(11)
        full = rng.standard_normal((offsets[-1],) + shape[1:]).astype(dtype) * 3 + 1
        weights = rng.standard_normal(full.shape).astype(dtype)
        c = shape[1]
        sync = nn.SyncBatchNorm(c, momentum=0.3).to(dtype=getattr(gf, dtype))
        bn = nn.BatchNorm1d(c, momentum=0.3) if len(shape) < 4 else nn.BatchNorm2d(
            c, momentum=0.3)
        bn = bn.to(dtype=getattr(gf, dtype))
        with gf.no_grad():
            for m in (sync, bn):
                m.weight.copy_(gf.tensor(np.linspace(0.5, 2, c).astype(dtype)))
                m.bias.copy_(gf.tensor(np.linspace(-1, 1, c).astype(dtype)))
        part = slice(offsets[rank], offsets[rank + 1])
        x = gf.tensor(full[part], requires_grad=True)
        out = sync(x)
        (out * gf.tensor(weights[part])).sum().backward()
        grads = [sync.weight.grad.clone(), sync.bias.grad.clone()]
        for g in grads:
            dist.all_reduce(g)
        xr = gf.tensor(full, requires_grad=True)
        ref = bn(xr)
        (ref * gf.tensor(weights)).sum().backward()
        what = f"SyncBatchNorm {shape} {dtype}"
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy()[part], atol=tol,
                                   rtol=0, err_msg=what + " output")
        np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy()[part], atol=tol, rtol=0,
                                   err_msg=what + " input gradient")
        for g, p in zip(grads, (bn.weight, bn.bias)):
            np.testing.assert_allclose(g.numpy(), p.grad.numpy(), atol=tol * 10, rtol=0,
                                       err_msg=what + " parameter gradient")
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(sync, name).numpy(), getattr(bn, name).numpy(),
                                       atol=tol, rtol=0, err_msg=f"{what} {name}")


def check_state_dict_and_sampler(rank: int, world: int) -> None:
    ddp = DDP(conv_net(seed=0))
    keys = list(ddp.state_dict())
    assert keys == ["module." + k for k in ddp.module.state_dict()], keys
    assert ddp.module.state_dict().keys() == conv_net(seed=0).state_dict().keys()
    sampler = gf.utils.data.DistributedSampler(range(11))
    assert (sampler.num_replicas, sampler.rank) == (world, rank)
    mine = gf.tensor(list(sampler))
    everyone = [gf.zeros_like(mine) for _ in range(world)]
    dist.all_gather(everyone, mine)
    seen = sorted(i for t in everyone for i in t.tolist())
    assert len(seen) == sampler.total_size == 12 and set(seen) == set(range(11)), seen


CHECKS = [v for k, v in dict(globals()).items() if k.startswith("check_")]


def main() -> None:
    out_dir = sys.argv[1]
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    for check in CHECKS:
        try:
            check(rank, world)
            results[check.__name__] = "ok"
        except Exception:  # noqa: BLE001  (reported per check, the ranks go on together)
            results[check.__name__] = traceback.format_exc()
        dist.barrier()
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
