"""The GPU path as CuPy runs it, on the CPU: gradflow on tests/fakecupy.py (two fake GPUs that
enforce CuPy's current-device rule and log every sync, copy and launch), with its kernels and
GEMMs run by the emulator or, for nets too big for it, checked and logged only. Each test
holds one defect of the audit against real CuPy 14.2 fixed: where tensors land, what a
training step costs the host, what the memory statistics count, what a capture refuses, and
what an unusable CUDA installation says."""
from __future__ import annotations

import gc

import numpy as np
import pytest
from helpers import I_CUPY, X_CUPY, check_cupy_path, train_step

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import backend, models
from gradflow.cuda import blas, graphs, libraries

FACTORIES = {
    "zeros": lambda d: gf.zeros(2, 3, device=d),
    "ones": lambda d: gf.ones(4, device=d),
    "full": lambda d: gf.full((2,), 7.0, device=d),
    "empty": lambda d: gf.empty(3, device=d),
    "arange": lambda d: gf.arange(5, device=d),
    "linspace": lambda d: gf.linspace(0.0, 1.0, 5, device=d),
    "eye": lambda d: gf.eye(3, device=d),
    "randint": lambda d: gf.randint(0, 5, (4,), device=d),
    "rand": lambda d: gf.rand(3, device=d),
    "randn": lambda d: gf.randn(3, dtype=gf.float64, device=d),
    "normal": lambda d: gf.normal(1.0, 2.0, (3,), device=d),
    "randperm": lambda d: gf.randperm(4, device=d),
    "tensor": lambda d: gf.tensor([1.0, 2.0], device=d),
    "zeros_like": lambda d: gf.zeros_like(gf.ones(2, device=d)),
    "rand_like": lambda d: gf.rand_like(gf.ones(2, device=d)),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_factories_allocate_on_the_device_they_name(fake_cuda, name):
    t = FACTORIES[name]("cuda:1")
    assert (t.device, t.array.device.id) == (gf.device("cuda:1"), 1)
    assert fake_cuda.count("device_mismatch") == 0


def test_a_tensor_moved_between_gpus_is_copied_onto_the_target(fake_cuda):
    a = gf.arange(6.0, device="cuda:0").reshape(2, 3).t()  # non-contiguous on device 0
    b = a.to("cuda:1")
    assert (b.array.device.id, a.array.device.id) == (1, 0)
    assert b.array.data.ptr != a.array.data.ptr
    np.testing.assert_array_equal(b.cpu().numpy(), a.cpu().numpy())


def test_ops_on_two_gpus_keep_the_clear_error(fake_cuda):
    with pytest.raises(RuntimeError, match="expected all tensors to be on the same device"):
        gf.ones(2, device="cuda:0") + gf.ones(2, device="cuda:1")


def test_a_compiled_step_on_the_second_gpu_runs_there(fake_cuda):
    """Warm-up, capture and replay of a LeNet-5 step on cuda:1: every allocation, launch and
    cuBLAS handle is device 1's, though device 0 stays the current one outside."""
    gf.manual_seed(0)
    model = models.lenet5().to("cuda:1")
    opt = gf.optim.Adam(model.parameters(), lr=1e-3)

    step = gf.compile_step(train_step(model, opt), warmup=1)
    x = gf.randn(2, 1, 28, 28, device="cuda:1")
    y = gf.tensor([3, 7], device="cuda:1")
    fake_cuda.clear_events()
    for _ in range(3):
        loss = step(x, y)
    assert loss.device == gf.device("cuda:1")
    assert {e.device for e in fake_cuda.event_log if e.kind in ("launch", "alloc")} == {1}
    assert sorted(blas._handles) == [1]
    assert fake_cuda.count("graph_launch") == 2 and fake_cuda.count("device_mismatch") == 0


def test_one_compiled_step_captures_on_each_gpu_with_that_gpus_stream(fake_cuda):
    """A stream belongs to one device: a step called with tensors on cuda:0, then on cuda:1,
    captures and replays each on a stream of its own device."""
    gf.manual_seed(0)
    models_by_device = {d: gf.nn.Linear(3, 2).to(d) for d in ("cuda:0", "cuda:1")}

    def forward_backward(x):
        model = models_by_device[str(x.device)]
        loss = model(x).sum()
        loss.backward()
        return loss

    step = gf.compile_step(forward_backward, warmup=1)
    for device in ("cuda:0", "cuda:1"):
        x = gf.ones(4, 3, device=device)
        for _ in range(3):
            assert step(x).device == gf.device(device)
    assert {d: s.device_id for d, s in step._streams.items()} == {0: 0, 1: 1}


ZOO = {"lenet5": (1, 28), "alexnet32": (3, 32), "vgg11_bn32": (3, 32),
       "resnet18_32": (3, 32), "alexnet": (3, 224), "vgg11_bn": (3, 224), "resnet18": (3, 224)}
OPTIMIZERS = {
    "SGD": lambda ps: gf.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda ps: gf.optim.Adam(ps, lr=1e-3, amsgrad=True),
    "AdamW": lambda ps: gf.optim.AdamW(ps, lr=1e-3),
    "RMSprop": lambda ps: gf.optim.RMSprop(ps, centered=True, momentum=0.5),
    "Adagrad": lambda ps: gf.optim.Adagrad(ps),
}


def _host_cost(fake, name: str, make_opt, steps: int = 2) -> list:
    """The syncs and pageable copies of each training step of zoo net `name` on fake cuda:0,
    the data already on the device (a loader's copy happens outside the step)."""
    channels, size = ZOO[name]
    model = getattr(models, name)(num_classes=10).to("cuda")
    model.train()
    opt = make_opt(model.parameters())
    x = gf.randn(2, channels, size, size, device="cuda")
    y = gf.tensor([1, 4], device="cuda")
    costs = []
    for _ in range(steps):
        fake.clear_events()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        costs.append([(e.kind, e.where, e.caller) for e in fake.event_log
                      if e.kind == "sync" or (e.kind == "h2d" and not e.pinned)])
    return costs


@pytest.mark.parametrize("name", sorted(ZOO))
def test_a_zoo_training_step_makes_no_host_sync_and_no_pageable_copy(
        fake_cuda_launch_only, name):
    """From its second step on (the first makes the optimizer state and the random
    generator's device pair), a step never waits for the GPU."""
    costs = _host_cost(fake_cuda_launch_only, name, OPTIMIZERS["SGD"])
    assert costs[1] == []


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_steps_without_host_sync_or_pageable_copy(
        fake_cuda_launch_only, optimizer):
    costs = _host_cost(fake_cuda_launch_only, "lenet5", OPTIMIZERS[optimizer], steps=3)
    assert costs[1:] == [[], []]
    # this step's hyperparameter rows, unless unchanged since the last step (Adagrad's are)
    assert fake_cuda_launch_only.count("h2d", pinned=True) <= 1


def test_an_out_of_range_device_index_is_reported_at_the_next_host_read(fake_cuda):
    """The bounds check of a device index neither syncs nor lets a wrapped-around read pass:
    it raises, naming the op and the dimension, where the host next waits anyway."""
    x = gf.arange(10.0, device="cuda")
    index = gf.tensor([1, 12], device="cuda")
    fake_cuda.clear_events()
    picked = x[index]
    assert fake_cuda.count("sync") == 0
    with pytest.raises(IndexError, match=r"getitem: a value of the index is out of bounds for "
                       r"dimension 0 with size 10 \(tensor shape \(10,\)\)"):
        picked.sum().item()
    assert x[gf.tensor([9], device="cuda")].item() == 9.0  # the error was cleared


def test_integer_division_by_zero_is_reported_without_syncing(fake_cuda):
    """As on the CPU, an integer divisor of zero raises, naming the op; on a GPU at the next
    host read, so a division never makes the host wait."""
    a = gf.tensor([7, -7, 9], device="cuda")
    fake_cuda.clear_events()
    ok = a // gf.tensor([2, 2, 3], device="cuda")
    assert fake_cuda.count("sync") == 0
    assert ok.tolist() == [3, -4, 3]  # a host read: it may sync
    fake_cuda.clear_events()
    bad = gf.remainder(a, gf.tensor([2, 0, 1], device="cuda"))
    assert fake_cuda.count("sync") == 0
    with pytest.raises(RuntimeError, match=r"remainder: ZeroDivisionError \(an integer "
                       r"divisor, of dtype int64, is zero\)"):
        bad.sum().item()


def test_nll_loss_checks_its_targets_without_syncing(fake_cuda):
    logp = F.log_softmax(gf.randn(4, 3, device="cuda"), 1)
    good = gf.tensor([0, 2, -100, 1], device="cuda")
    fake_cuda.clear_events()
    loss = F.nll_loss(logp, good)
    assert fake_cuda.count("sync") == 0
    assert np.isfinite(loss.item())
    bad = gf.tensor([0, 3, 1, 1], device="cuda")
    loss = F.nll_loss(logp, bad)
    with pytest.raises(IndexError,
                       match=r"nll_loss: a value of the target is out of bounds for 3 classes"):
        gf.cuda.synchronize()


def test_the_fused_cross_entropy_names_a_bad_target_without_syncing(fake_cuda):
    logits = gf.randn(3, 4, device="cuda")
    target = gf.tensor([0, 4, -100], device="cuda")
    fake_cuda.clear_events()
    loss = F.cross_entropy(logits, target)
    assert fake_cuda.count("sync") == 0
    assert any(e.where.startswith("softmax_xent") for e in fake_cuda.events_of("launch"))
    with pytest.raises(IndexError, match="cross_entropy: a value of the target is out of "
                       r"bounds for 4 classes \(input shape \(3, 4\)\)"):
        loss.item()


def test_host_indices_are_checked_on_the_host_before_they_are_copied(fake_cuda):
    x = gf.arange(10.0, device="cuda")
    fake_cuda.clear_events()
    with pytest.raises(IndexError, match="getitem: index 10 is out of bounds for dimension 0"):
        x[[0, 10]]
    assert fake_cuda.count("sync") == 0 and fake_cuda.count("h2d") == 0


def test_memory_statistics_are_per_device_and_count_graph_pools(fake_cuda):
    base = [gf.cuda.memory_allocated(i) for i in (0, 1)]
    kept = gf.zeros(1024, device="cuda:1")
    assert gf.cuda.memory_allocated("cuda:1") - base[1] == 4096
    assert gf.cuda.memory_allocated(0) == base[0]
    pool = gf.cuda.memory.private_pool(0)  # what compile_step gives each captured graph
    with fake_cuda.cuda.Device(0), fake_cuda.cuda.using_allocator(pool.malloc):
        in_graph = fake_cuda.zeros(512, np.float64)
    assert gf.cuda.memory_allocated(0) - base[0] == 4096
    assert gf.cuda.max_memory_allocated(0) >= gf.cuda.memory_allocated(0)
    del kept, in_graph
    gc.collect()
    assert gf.cuda.memory_reserved(1) > gf.cuda.memory_allocated(1)
    gf.cuda.empty_cache()
    for i in (0, 1):
        assert gf.cuda.memory_reserved(i) == gf.cuda.memory_allocated(i)


def test_a_captured_step_uses_a_pool_the_statistics_count(fake_cuda):
    model = models.lenet5().to("cuda")
    opt = gf.optim.SGD(model.parameters(), lr=0.1)

    step = gf.compile_step(train_step(model, opt), warmup=1)
    x, y = gf.randn(2, 1, 28, 28, device="cuda"), gf.tensor([0, 1], device="cuda")
    step(x, y)
    step(x, y)  # captured
    default = fake_cuda.get_default_memory_pool().used_bytes()
    assert gf.cuda.memory_allocated() > default


def test_a_graph_random_state_is_made_before_the_capture_stream_waits(fake_cuda):
    """The capture stream waits only for work queued before its wait: the graph's (seed,
    base) pair must be made (zeroed) before it, or a first replay can read it unzeroed."""
    model = gf.nn.Sequential(gf.nn.Flatten(), gf.nn.Dropout(0.5), gf.nn.Linear(8, 2)).to("cuda")
    opt = gf.optim.SGD(model.parameters(), lr=0.1)

    step = gf.compile_step(train_step(model, opt), warmup=1)
    x, y = gf.randn(4, 2, 4, device="cuda"), gf.tensor([0, 1, 1, 0], device="cuda")
    step(x, y)
    fake_cuda.clear_events()
    step(x, y)  # captured
    (graph,) = step._graphs.values()
    log = fake_cuda.event_log
    made = next(i for i, e in enumerate(log)
                if e.kind == "alloc" and e.ptr == graph.rng_state.data.ptr)
    waited = next(i for i, e in enumerate(log)
                  if e.kind == "wait" and e.stream == step._capture_stream(0).ptr)
    assert graph.drawn > 0 and made < waited


@pytest.mark.parametrize("refusal, meaning", [
    (NotImplementedError("calling cuBLAS API during stream capture is currently unsupported"),
     "CuPy's cuBLAS wrappers"),
    (RuntimeError("cudaErrorStreamCaptureUnsupported: operation not permitted when stream is "
                  "capturing"), "read a GPU value on the host"),
    (RuntimeError("cudaErrorStreamCaptureImplicit: operation would make the legacy stream "
                  "depend on a capturing blocking stream"), "legacy default stream"),
])
def test_a_refused_capture_names_what_was_refused(refusal, meaning):
    err = graphs._capture_error(refusal)
    assert isinstance(err, RuntimeError)
    for part in ("compile_step: the step could not be captured", meaning, str(refusal)):
        assert part in str(err), str(err)


def test_gemms_bind_the_current_stream_and_a_workspace_made_before_capture(fake_cuda):
    a, b = gf.randn(3, 4, device="cuda"), gf.randn(4, 5, device="cuda")
    stream = fake_cuda.cuda.Stream(non_blocking=True)
    with stream:
        product = a @ b
    handle = blas._handles[0]
    assert fake_cuda.cublas_library.streams[handle.ptr] == stream.ptr
    assert handle.workspace.size >= blas.WORKSPACE_BYTES
    np.testing.assert_allclose(product.cpu().numpy(), a.cpu().numpy() @ b.cpu().numpy(),
                               rtol=1e-5)


def test_missing_cuda_libraries_make_cuda_unavailable_with_a_reason(fake_cuda, monkeypatch):
    def no_library(name, major):
        raise OSError(f"lib{name}.so.{major} could not be loaded (not found)")
    monkeypatch.setattr(libraries, "load", no_library)
    monkeypatch.setattr("gradflow.cuda.libraries.missing", _real_missing)
    monkeypatch.setattr(backend, "_unavailable", {})
    assert not gf.cuda.is_available()
    with pytest.raises(RuntimeError, match=r"device cuda: CUDA is not available: the CUDA "
                       r"libraries gradflow needs are missing: nvrtc \(compiles") as info:
        gf.zeros(1, device="cuda")
    assert "pip install 'gradflow[cuda13]'" in str(info.value)
    assert "libcublas.so.13" in str(info.value)
    with pytest.raises(RuntimeError, match="gradflow.cuda: CUDA is not available: the CUDA "
                       "libraries gradflow needs are missing"):
        gf.cuda.init()


_real_missing = libraries.missing


def test_the_cuda_extras_bring_the_libraries_a_driver_only_machine_lacks():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from "
                                  "Python 3.11")
    from pathlib import Path
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    for extra, suffix in (("cuda12", "-cu12"), ("cuda13", "")):
        names = {r.split("=")[0].split(">")[0] for r in extras[extra]}
        for lib in ("nvidia-cuda-nvrtc", "nvidia-cublas", "nvidia-cuda-runtime"):
            assert lib + suffix in names, (extra, extras[extra])


NEW_API = {  # this session's tensor-API ops: name -> call on (x float, i int) tensors
    "tan": lambda x, i: gf.tan(x), "asinh": lambda x, i: gf.asinh(x),
    "log1p": lambda x, i: gf.log1p(x.abs()), "expm1": lambda x, i: gf.expm1(x),
    "erfc": lambda x, i: gf.erfc(x), "logit": lambda x, i: gf.logit(x.sigmoid(), eps=1e-6),
    "nan_to_num": lambda x, i: gf.nan_to_num(x / 0.0), "atan2": lambda x, i: gf.atan2(x, x + 1),
    "hypot": lambda x, i: gf.hypot(x, x * 2), "xlogy": lambda x, i: gf.xlogy(x, x.abs() + 1),
    "copysign": lambda x, i: gf.copysign(x.abs(), -x), "fmod": lambda x, i: gf.fmod(x, 0.7),
    "remainder": lambda x, i: i % 3, "div_floor": lambda x, i: gf.div(i, 4, rounding_mode="floor"),
    "lerp": lambda x, i: gf.lerp(x, x * 3, 0.25), "round": lambda x, i: x.round(decimals=1),
    "isclose": lambda x, i: gf.isclose(x, x + 1e-9), "bitwise": lambda x, i: (i & 6) ^ (i << 1),
    "logical": lambda x, i: gf.logical_and(i, x), "prod": lambda x, i: x.prod(1),
    "cumsum": lambda x, i: x.cumsum(0), "cumprod": lambda x, i: x.cumprod(1),
    "cummax": lambda x, i: x.cummax(1)[0], "logcumsumexp": lambda x, i: x.logcumsumexp(1),
    "nanmean": lambda x, i: x.nanmean(0), "aminmax": lambda x, i: x.aminmax(dim=0).min,
    "all_any": lambda x, i: x.all(1) | x.any(0).all(),
    "count_nonzero": lambda x, i: i.count_nonzero(1),
    "var_mean": lambda x, i: gf.var_mean(x, 1)[0], "new_full": lambda x, i: x.new_full((2,), 3.0),
}


@pytest.mark.parametrize("name", NEW_API)
def test_new_tensor_api_ops_run_on_the_cupy_path(fake_cuda, name):
    """Each op runs on CuPy arrays (the fake's NumPy-backed stand-in) and equals its CPU
    result; differentiable ones give the CPU's gradient too."""
    check_cupy_path(NEW_API[name], X_CUPY, I_CUPY)
