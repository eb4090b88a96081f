"""The fake CuPy (tests/fakecupy.py) keeps CuPy's rules, and gradflow's GPU path runs on it:
a LeNet-5 training step on fake 'cuda' matches the CPU's, and what it costs in host syncs and
copies is printed."""
from __future__ import annotations

import collections
import gc

import numpy as np
import pytest
from helpers import train_step

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import models

# -- the fake itself --------------------------------------------------------------------------


def test_arrays_live_on_the_current_device_and_ops_refuse_other_devices(fake_cuda):
    cp = fake_cuda
    with cp.cuda.Device(1):
        a = cp.arange(6.0).reshape(2, 3)
    assert a.device.id == 1 and not isinstance(a, np.ndarray)
    with pytest.raises(ValueError, match=r"resides \(1\) is different from the current device"):
        a + 1
    assert a.T.shape == (3, 2) and a[0].device.id == 1  # views launch nothing: no check
    with cp.cuda.Device(1):
        np.testing.assert_allclose((a * 2).sum().get(), 30.0)
    b = a.copy()  # a peer copy onto the current device
    assert b.device.id == 0 and fake_cuda.count("p2p") == 1
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(a)


def test_kernel_launches_check_devices_and_refuse_host_arrays(fake_cuda):
    cp = fake_cuda
    with cp.cuda.Device(1):
        a = cp.zeros(4)
    with pytest.raises(ValueError, match="Peer access is unavailable"):
        cp.kernel_arguments("conv.im2col<float>", (a, np.int64(4)))
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.kernel_arguments("conv.im2col<float>", (np.zeros(4),))
    assert fake_cuda.count("launch") == 0


def test_host_reads_are_logged_as_copies_and_syncs(fake_cuda):
    cp = fake_cuda
    a = cp.arange(4)
    fake_cuda.clear_events()
    a.get(), int(a[1]), bool(a[2]), float(a[3]), a.sum().item(), a.tolist()
    cp.cuda.get_current_stream().synchronize()
    cp.cuda.Device().synchronize()
    assert [e.where for e in fake_cuda.events_of("d2h")] == \
        ["get", "int", "bool", "float", "item", "tolist"]
    assert fake_cuda.count("sync") == 8
    assert "test_fakecupy.py" in fake_cuda.events_of("sync")[0].caller
    with pytest.raises(TypeError):
        range(a[1])  # CuPy 14's ndarray has no __index__


def test_copies_from_pinned_memory_are_told_from_pageable_ones(fake_cuda):
    cp = fake_cuda
    rows = np.arange(8.0)
    table = cp.asarray(rows)
    block = cp.cuda.alloc_pinned_memory(rows.nbytes)
    pinned = np.frombuffer(block, rows.dtype, rows.size)
    pinned[...] = rows * 2
    table.set(pinned)
    assert [(e.where, e.pinned, e.nbytes) for e in fake_cuda.events_of("h2d")] == \
        [("asarray", False, 64), ("set", True, 64)]
    np.testing.assert_allclose(table.get(), rows * 2)


def test_pools_count_live_bytes_per_device_and_free_them_on_collection(fake_cuda):
    cp = fake_cuda
    pool = cp.get_default_memory_pool()
    a = cp.empty(1000, np.float32)  # 4000 bytes, rounded up to 4096
    assert (pool.used_bytes(), pool.total_bytes()) == (4096, 4096)
    with cp.cuda.Device(1):
        assert pool.used_bytes() == 0
    del a
    gc.collect()
    assert (pool.used_bytes(), pool.total_bytes(), pool.free_bytes()) == (0, 4096, 4096)
    pool.free_all_blocks()
    assert pool.total_bytes() == 0
    private = cp.cuda.MemoryPool()
    with cp.cuda.using_allocator(private.malloc):
        b = cp.ones(128)
    assert (private.used_bytes(), pool.used_bytes()) == (1024, 0)
    del b


def test_memory_hooks_see_allocations_and_a_device_limit_raises_cupys_error(fake_cuda):
    cp = fake_cuda
    cp.reset(memory_limit={0: 1 << 20})
    seen = []

    class Hook(cp.cuda.MemoryHook):
        name = "test"

        def malloc_postprocess(self, device_id, mem_size, **kwargs):
            seen.append((device_id, mem_size))

    with Hook():
        a = cp.zeros(100)
    assert seen == [(0, 1024)]
    with pytest.raises(cp.cuda.memory.OutOfMemoryError, match=r"allocating 2,097,152 bytes"):
        cp.zeros(1 << 18)
    with cp.cuda.Device(1):
        cp.zeros(1 << 18)  # device 1 has no limit
    del a


def test_a_capturing_stream_refuses_syncs_and_host_reads(fake_cuda):
    cp = fake_cuda
    a = cp.arange(3.0)
    stream = cp.cuda.Stream(non_blocking=True)
    assert stream.ptr not in (0, cp.cuda.get_current_stream().ptr)
    with pytest.raises(RuntimeError, match="legacy"):
        cp.cuda.Stream.null.begin_capture()
    with stream:
        stream.begin_capture()
        assert stream.is_capturing()
        cp.kernel_arguments("optim.sgd_update<double>", (a,))
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="StreamCaptureUnsupported"):
            a.sum().item()
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="Invalidated"):
            stream.end_capture()
        stream.begin_capture()
        cp.kernel_arguments("optim.sgd_update<double>", (a,))
        graph = stream.end_capture()
    assert graph.launches == ["optim.sgd_update<double>"]
    graph.launch(stream)
    assert fake_cuda.count("graph_launch", stream=stream.ptr) == 1


# -- gradflow on the fake ---------------------------------------------------------------------


def _lenet_step(device: str, x: np.ndarray, y: np.ndarray, fake=None) -> tuple:
    """One SGD step of a float64 LeNet-5 from seed 0: (loss, parameters after the step, the
    fake's log of the step alone: from zero_grad to opt.step, data already on the device)."""
    gf.manual_seed(0)
    model = models.lenet5().double().to(device)
    opt = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = gf.tensor(x, device=device), gf.tensor(y, device=device)
    if fake is not None:
        fake.clear_events()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    step_log = [] if fake is None else list(fake.event_log)
    loss = F.cross_entropy(model(x), y).item()
    return loss, [p.detach().cpu().numpy() for p in model.parameters()], step_log


def _summary(log: list) -> str:
    """Syncs, copies and launches of a log, with the gradflow lines that made them."""
    def where(kind: str, **match) -> str:
        entries = [e for e in log if e.kind == kind
                   and all(getattr(e, k) == v for k, v in match.items())]
        places = collections.Counter(e.caller.split(" < ")[-1] for e in entries)
        return f"{len(entries)} ({', '.join(f'{n} x {p}' for p, n in places.items())})"
    kernels = collections.Counter(e.where.split(".")[0] for e in log if e.kind == "launch")
    return (f"syncs {where('sync')}; pageable h2d {where('h2d', pinned=False)}; pinned h2d "
            f"{where('h2d', pinned=True)}; launches {dict(kernels)}; device violations "
            f"{where('device_mismatch')}")


@pytest.mark.parametrize("device", ["cuda:0", "cuda:1"])
def test_lenet5_sgd_step_on_fake_cuda_matches_the_cpu(fake_cuda, device):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 1, 28, 28)), rng.integers(0, 10, 4)
    want_loss, want, _ = _lenet_step("cpu", x, y)
    loss, got, step_log = _lenet_step(device, x, y, fake_cuda)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-10)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
    assert {e.device for e in step_log if e.kind == "launch"} == {gf.device(device).index}
    print(f"\nLeNet-5 SGD step on fake {device}: {_summary(step_log)}")


def test_compile_step_captures_a_lenet5_step_and_replays_it_without_syncs(fake_cuda):
    rng = np.random.default_rng(0)
    model = models.lenet5().to("cuda")
    opt = gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    step = gf.compile_step(train_step(model, opt), warmup=1)
    x = gf.tensor(rng.standard_normal((4, 1, 28, 28)).astype(np.float32), device="cuda")
    y = gf.tensor(rng.integers(0, 10, 4), device="cuda")
    logs = []
    for _ in range(3):  # warm-up, capture (then the first launch), replay
        fake_cuda.clear_events()
        step(x, y)
        logs.append(list(fake_cuda.event_log))
    print(f"\ncompile_step: capture {_summary(logs[1])}\nreplay {_summary(logs[2])}")
    assert [sum(e.kind == "graph_launch" for e in log) for log in logs] == [0, 1, 1]
    assert [e for e in logs[2] if e.kind == "sync"] == []


def test_gradflow_tensors_on_cuda_1(fake_cuda):
    t = gf.zeros(3, device="cuda:1")
    assert (t.device, t.array.device.id) == (gf.device("cuda:1"), 1)
    s = (t + 1).sum()
    assert s.array.device.id == 1 and s.item() == 3.0
    u = gf.tensor([1.0, 2.0]).to("cuda:1")
    v = (u * u).sum()
    assert (u.array.device.id, v.array.device.id, v.item()) == (1, 1, 5.0)
    assert fake_cuda.count("device_mismatch") == 0
