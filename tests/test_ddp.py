"""DistributedDataParallel, SyncBatchNorm and DistributedSampler (issue 18, items 2 and 3).

The checks that need real ranks run in one `mpiexec -n 2` and one `-n 3` launch of
tests/distributed/ddp_checks.py, each test reading its check's result on every rank. The
rest runs here: DistributedSampler against torch's for every rank, SyncBatchNorm outside a
process group against torch's, and the sync paths of SyncBatchNorm and DDP on a stand-in
for gradflow.distributed (a second rank identical to this one), on the CPU and the CuPy path.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import check_cupy_path, torch

import gradflow as gf
import gradflow.distributed as dist
from gradflow import nn
from gradflow.nn.modules import sync_batchnorm
from gradflow.nn.parallel import DistributedDataParallel
from gradflow.utils.data import DistributedSampler

ROOT = Path(__file__).resolve().parents[1]
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed: the parity "
                                 "reference is unavailable")
MPIEXEC = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}"
                       f"{os.environ.get('PATH', '')}")
needs_mpi = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                       reason="needs mpi4py: pip install 'gradflow[distributed]'"),
    pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec (the mpich wheel has one)"),
]
CHECKS = ["sync_batchnorm_ddp_equals_one_process", "batchnorm_ddp_equals_per_half_statistics",
          "no_sync_accumulation_equals_one_batch", "buckets_launch_during_backward",
          "unused_parameters_raise_without_the_flag", "unused_parameters_work_with_the_flag",
          "sync_batchnorm_matches_batchnorm_on_all_samples", "state_dict_and_sampler"]


# -- on two ranks -------------------------------------------------------------------------
@pytest.fixture(scope="module", params=[2, 3], ids=["2 ranks", "3 ranks"])
def ranks(request, tmp_path_factory):
    """Every rank's {check: "ok" or its traceback} from one `mpiexec -n N` launch."""
    n = request.param
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([MPIEXEC, "-n", str(n), sys.executable,
                           str(ROOT / "tests" / "distributed" / "ddp_checks.py"), str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]


@pytest.mark.parametrize("check", CHECKS)
@needs_mpi[0]
@needs_mpi[1]
def test_on_several_ranks(ranks, check):
    for rank, results in enumerate(ranks):
        assert results.get(f"check_{check}") == "ok", f"rank {rank}:\n{results}"


@needs_mpi[0]
@needs_mpi[1]
def test_the_script_runs_every_check(ranks):
    assert sorted(ranks[0]) == sorted(f"check_{c}" for c in CHECKS)


@pytest.mark.gpu
@needs_mpi[0]
@needs_mpi[1]
def test_nccl_world_of_one_runs_the_bucketing_code(tmp_path):
    """Backend 'nccl' on one rank: DDP's buckets and SyncBatchNorm's statistics go through
    NCCL (the averages of one rank are its own gradients)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([MPIEXEC, "-n", "1", sys.executable,
                           str(ROOT / "tests" / "distributed" / "ddp_nccl.py")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ddp_nccl ok" in done.stdout, done.stdout + done.stderr


def test_nn_parallel_imports_without_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None; import gradflow as gf; "
            "print(gf.nn.parallel.DistributedDataParallel.__name__, gf.nn.SyncBatchNorm.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DistributedDataParallel", "SyncBatchNorm"]


@needs_torch
# -- DistributedSampler -------------------------------------------------------------------
@pytest.mark.parametrize("n, replicas", [(10, 2), (11, 3), (3, 4), (1, 1), (7, 7), (0, 2)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_without_shuffle_is_torchs(n, replicas, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch.utils.data.distributed.DistributedSampler(
            range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs), (n, replicas, rank)
        assert (len(ours), ours.total_size) == (len(theirs), theirs.total_size)


@pytest.mark.parametrize("n, replicas", [(32, 2), (11, 3), (5, 4)])
def test_distributed_sampler_covers_the_dataset_once_per_epoch(n, replicas):
    def epoch(e, drop_last=False):
        samplers = [DistributedSampler(range(n), replicas, r, seed=3, drop_last=drop_last)
                    for r in range(replicas)]
        for s in samplers:
            s.set_epoch(e)
        return [list(s) for s in samplers]

    first = epoch(0)
    taken = sorted(i for share in first for i in share)
    total = -(-n // replicas) * replicas
    assert len(taken) == total and set(taken) == set(range(n))
    # the padding repeats the start of the epoch's permutation, as torch's does
    order = [first[i % replicas][i // replicas] for i in range(total)]
    assert order[n:] == order[:total - n]
    assert len({len(s) for s in first}) == 1
    assert epoch(0) == first, "the same epoch must give the same shares"
    assert epoch(1) != first, "set_epoch must reshuffle"
    dropped = epoch(1, drop_last=True)
    taken = [i for share in dropped for i in share]
    assert len(taken) == len(set(taken)) == (n // replicas) * replicas


def test_distributed_sampler_seed_and_generator():
    a = list(DistributedSampler(range(20), 2, 0, seed=1))
    b = list(DistributedSampler(range(20), 2, 0, seed=1))
    c = list(DistributedSampler(range(20), 2, 0, seed=2))
    assert a == b and a != c
    s = DistributedSampler(range(20), 2, 0, seed=1)
    s.set_epoch(4)
    perm = gf.randperm(20, generator=gf.Generator().manual_seed(5)).tolist()
    assert list(s) == perm[0::2], "permutation seeded by seed + epoch"


@needs_torch
@pytest.mark.parametrize("replicas, rank", [(2, 2), (2, -1), (0, 0)])
def test_distributed_sampler_bad_rank(replicas, rank):
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.distributed.DistributedSampler(range(4), replicas, rank)
    with pytest.raises(ValueError, match="DistributedSampler: ") as ours:
        DistributedSampler(range(4), replicas, rank)
    assert str(rank) in str(ours.value) or "num_replicas" in str(ours.value), theirs


def test_distributed_sampler_needs_a_group_for_its_defaults():
    with pytest.raises(RuntimeError, match="process group has not been initialized"):
        DistributedSampler(range(4))


# -- SyncBatchNorm ------------------------------------------------------------------------
def _bn_pair(c, dtype=np.float64, **kw):
    ours = nn.SyncBatchNorm(c, **kw).to(dtype=getattr(gf, np.dtype(dtype).name))
    theirs = torch.nn.SyncBatchNorm(c, **kw).to(getattr(torch, np.dtype(dtype).name))
    with gf.no_grad(), torch.no_grad():
        if ours.affine:
            w, b = np.linspace(0.5, 2, c), np.linspace(-1, 1, c)
            ours.weight.copy_(gf.tensor(w.astype(dtype)))
            ours.bias.copy_(gf.tensor(b.astype(dtype)))
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
    return ours, theirs


@needs_torch
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (3, 3, 2, 4), (2, 3, 1, 2, 3)])
@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"track_running_stats": False},
                                {"momentum": None}])
def test_sync_batchnorm_alone_is_torchs(shape, kw):
    """Outside a process group, SyncBatchNorm is BatchNorm, as torch's is: outputs,
    gradients and running statistics over two training steps and one eval step."""
    ours, theirs = _bn_pair(shape[1], **kw)
    rng = np.random.default_rng(0)
    for step in range(3):
        if step == 2:
            ours.eval(), theirs.eval()
        a = rng.standard_normal(shape) * 2 + 1
        g = rng.standard_normal(shape)
        x, xt = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        y, yt = ours(x), theirs(xt)
        (y * gf.tensor(g)).sum().backward()
        (yt * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-12)
        for name, t in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[name].numpy(), t.numpy(), atol=1e-12,
                                       err_msg=name)
    if ours.affine:
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                                   atol=1e-12)


@needs_torch
def test_sync_batchnorm_bad_inputs():
    for shape, channels in (((4,), 4), ((2, 3), 4)):
        with pytest.raises(ValueError, match="SyncBatchNorm: expected"):
            nn.SyncBatchNorm(channels)(gf.zeros(shape))
    with pytest.raises(ValueError):
        torch.nn.SyncBatchNorm(4)(torch.zeros(4))
    with pytest.raises(ValueError, match="SyncBatchNorm: num_features"):
        nn.SyncBatchNorm(0)


@needs_torch
def test_convert_sync_batchnorm_is_torchs():
    def build(lib):
        torch_like = lib.nn
        return torch_like.Sequential(torch_like.Conv2d(2, 3, 1), torch_like.BatchNorm2d(3),
                                     torch_like.Sequential(torch_like.BatchNorm1d(3, affine=False),
                                                           torch_like.InstanceNorm1d(3)))
    ours, theirs = build(gf), build(torch)
    ours.eval()
    bn = ours[1]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(ours, process_group="pg")
    expected = torch.nn.SyncBatchNorm.convert_sync_batchnorm(theirs)
    assert [type(m).__name__ for m in converted.modules()] == [
        type(m).__name__ for m in expected.modules()]
    assert converted[1].weight is bn.weight and converted[1].running_mean is bn.running_mean
    assert converted[1].process_group == "pg" and not converted[1].training
    assert list(converted.state_dict()) == list(expected.state_dict())
    single = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(3))
    assert type(single) is nn.SyncBatchNorm


class TwinRank:
    """A stand-in for gradflow.distributed: a world of two whose other rank holds the same
    tensors as this one (a sum doubles them, a min or max or broadcast leaves them)."""

    def __init__(self) -> None:
        self.calls: list = []

    ReduceOp = dist.ReduceOp

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def get_world_size(self, group=None) -> int:
        return 2

    def get_rank(self, group=None) -> int:
        return 0

    def all_reduce(self, tensor, op=dist.ReduceOp.SUM, group=None, async_op=False):
        self.calls.append(("all_reduce", tensor.numel(), async_op))
        if op == dist.ReduceOp.SUM:
            tensor.array[...] = tensor.array * 2
        return _Done() if async_op else None

    def broadcast(self, tensor, src=0, group=None, async_op=False):
        self.calls.append(("broadcast", tensor.numel(), async_op))
        return _Done() if async_op else None


class _Done:
    def wait(self):
        return True


@pytest.fixture
def twin(monkeypatch):
    stand_in = TwinRank()
    for name in ("is_initialized", "get_world_size", "get_rank", "all_reduce", "broadcast"):
        monkeypatch.setattr(dist, name, getattr(stand_in, name))
    return stand_in


def _twin_reference(a, g, weight, bias):
    """torch's BatchNorm on the batch twice over (this rank's and its twin's): the output
    and input gradient of the first copy, and half the parameter gradients (this rank's)."""
    xt = torch.tensor(np.concatenate([a, a]), requires_grad=True)
    w = torch.tensor(weight, requires_grad=True)
    b = torch.tensor(bias, requires_grad=True)
    y = torch.nn.functional.batch_norm(xt, None, None, w, b, training=True)
    (y * torch.tensor(np.concatenate([g, g]))).sum().backward()
    n = a.shape[0]
    return (y.detach().numpy()[:n], xt.grad.numpy()[:n], w.grad.numpy() / 2,
            b.grad.numpy() / 2)


@needs_torch
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 5), (1, 4, 3, 2)])
def test_sync_batchnorm_statistics_span_the_ranks(twin, shape):
    rng = np.random.default_rng(1)
    a, g = rng.standard_normal(shape) * 3 + 2, rng.standard_normal(shape)
    m = nn.SyncBatchNorm(shape[1], momentum=0.5).double()
    with gf.no_grad():
        m.weight.copy_(gf.tensor(np.linspace(0.5, 2, shape[1])))
    x = gf.tensor(a, requires_grad=True)
    y = m(x)
    (y * gf.tensor(g)).sum().backward()
    want = _twin_reference(a, g, m.weight.detach().numpy(), m.bias.detach().numpy())
    for got, expected, what in zip((y.detach(), x.grad, m.weight.grad, m.bias.grad), want,
                                   ("output", "input grad", "weight grad", "bias grad")):
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-10, err_msg=what)
    count = 2 * a.size // shape[1]
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(m.running_mean.numpy(), 0.5 * a.mean(axes), atol=1e-12)
    np.testing.assert_allclose(m.running_var.numpy(),
                               0.5 + 0.5 * a.var(axes) * count / (count - 1), atol=1e-12)
    assert [c[0] for c in twin.calls] == ["all_reduce", "all_reduce"], twin.calls


def test_sync_batchnorm_refuses_double_backward(twin):
    m = nn.SyncBatchNorm(2).double()
    x = gf.tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    (gx,) = gf.autograd.grad((m(x) ** 3).sum(), x, create_graph=False)
    with pytest.raises(RuntimeError, match="sync_batch_norm: double backward"):
        gf.autograd.grad((m(x) ** 3).sum(), x, create_graph=True)
    assert gx.shape == x.shape


def test_sync_batchnorm_on_the_cupy_path(twin, fake_cuda):
    def fn(x):
        m = nn.SyncBatchNorm(3, dtype=gf.float32, device=x.device)
        with gf.no_grad():
            m.weight.copy_(gf.tensor([0.5, 1.0, 2.0], device=x.device))
        return m(x) * 1
    a = np.random.default_rng(2).standard_normal((4, 3, 5)).astype(np.float32) * 2 + 1
    check_cupy_path(fn, a, rtol=1e-5, atol=1e-5)


# -- DDP on the stand-in ------------------------------------------------------------------
def _net(device="cpu"):
    gf.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).to(device)


@pytest.mark.parametrize("as_view", [False, True])
def test_ddp_averages_in_buckets_during_backward(twin, as_view):
    # 50 bytes: 0.weight (60) alone, then 0.bias (20) with 2.weight (40), then 2.bias (8)
    ddp = DistributedDataParallel(_net(), bucket_cap_mb=50.5 / 2**20,
                                  gradient_as_bucket_view=as_view)
    plain = _net()
    x = gf.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    for _ in range(2):  # the second iteration reuses the buckets
        ddp.zero_grad(), plain.zero_grad()
        ddp(x).pow(2).sum().backward()
        plain(x).pow(2).sum().backward()
    for (name, p), q in zip(ddp.module.named_parameters(), plain.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-6, err_msg=name)
    assert ddp.bucket_parameter_names == [["2.bias"], ["0.bias", "2.weight"], ["0.weight"]]
    reduces = [c for c in twin.calls if c[0] == "all_reduce"]
    assert reduces[-3:] == [("all_reduce", 2, True), ("all_reduce", 15, True),
                            ("all_reduce", 15, True)], twin.calls
    flat = ddp.reducer.buckets[2].flat.array
    assert (np.shares_memory(ddp.module[0].weight.grad.array, flat)) == as_view


def test_ddp_no_sync_and_module_surface(twin):
    ddp = DistributedDataParallel(_net())
    x = gf.tensor(np.ones((2, 3), np.float32))
    before = len(twin.calls)
    with ddp.no_sync():
        ddp(x).sum().backward()
    assert twin.calls[before:] == [], "no all-reduce under no_sync (and no buffers to send)"
    assert ddp.reduction_trace is None
    ddp(x).sum().backward()
    assert ddp.reduction_trace is not None and len(ddp.reduction_trace.launched) == 1
    assert list(ddp.state_dict()) == ["module." + k for k in ddp.module.state_dict()]
    assert ddp.module.state_dict().keys() == _net().state_dict().keys()


def test_ddp_bad_arguments(twin):
    with pytest.raises(RuntimeError, match="doesn't have any parameter"):
        DistributedDataParallel(nn.ReLU())
    with pytest.raises(ValueError, match="device_ids should be None"):
        DistributedDataParallel(_net(), device_ids=[0])
    with pytest.raises(TypeError, match="must be a gradflow.nn.Module"):
        DistributedDataParallel(lambda x: x)


def test_ddp_needs_a_process_group():
    with pytest.raises(RuntimeError, match="process group has not been initialized"):
        DistributedDataParallel(_net())


def test_ddp_on_the_cupy_path(twin, fake_cuda):
    ddp = DistributedDataParallel(_net("cuda"), bucket_cap_mb=1e-5)
    plain = _net("cuda")
    x = gf.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32),
                  device="cuda")
    ddp(x).pow(2).sum().backward()
    plain(x).pow(2).sum().backward()
    for p, q in zip(ddp.parameters(), plain.parameters()):
        assert p.grad.device.type == "cuda"
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.cpu().numpy(), rtol=1e-5)


def test_sync_batchnorm_module_exports():
    assert sync_batchnorm.__all__ == ["SyncBatchNorm"]
    assert "SyncBatchNorm" in gf.nn.modules.__all__
    assert gf.nn.SyncBatchNorm is sync_batchnorm.SyncBatchNorm
