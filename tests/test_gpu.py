"""Checks that need a GPU: kernels compile on the device, whole models on the GPU match the
CPU, memory stays flat over a training loop, and 64-bit indexing past 2**31 elements.
(The per-kernel comparisons are in test_kernels.py, under the `cuda` kernel backend.)"""
from __future__ import annotations

import numpy as np
import pytest
from helpers import to_numpy

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import models, nn
from gradflow.cuda import compiler
from gradflow.datasets import bundled_mnist
from gradflow.kernels_path import kernel_dir

pytestmark = pytest.mark.gpu


def test_every_kernel_compiles_once_per_process():
    for path in sorted(kernel_dir().glob("*.cu")):
        module = compiler.load_module(path.stem)
        assert compiler.load_module(path.stem) is module, "compiled twice"
        for name in compiler.name_expressions(path.read_text()):
            assert module.get_function(name) is not None


def _twins(make):
    """The same freshly initialised model on the CPU and on the GPU, dropout off."""
    gf.manual_seed(0)
    cpu = make()
    gpu = make()
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    for model in (cpu, gpu):
        model.train()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
    return cpu, gpu


def _relative(got, want):
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def test_vgg11_bn_loss_and_gradients_match_cpu():
    cpu, gpu = _twins(models.vgg11_bn32)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    losses = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        loss = F.cross_entropy(model(gf.tensor(x, device=device)), gf.tensor(y, device=device))
        loss.backward()
        losses.append(loss.item())
    assert abs(losses[1] - losses[0]) <= 1e-4 * abs(losses[0]), losses
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        err = _relative(to_numpy(q.grad), to_numpy(p.grad))
        assert err <= 1e-4, f"{name}: gradient differs by {err:.2e} (relative norm)"
    for (name, b), c in zip(cpu.named_buffers(), gpu.buffers()):
        if b.dtype.kind == "f":
            assert _relative(to_numpy(c), to_numpy(b)) <= 1e-4, name


def test_lenet5_ten_sgd_steps_match_cpu():
    cpu, gpu = _twins(models.lenet5)
    images, labels = bundled_mnist("train")
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        opt = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for step in range(10):
            x = images[step * 64:(step + 1) * 64].to(device)
            y = labels[step * 64:(step + 1) * 64].to(device)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        err = _relative(to_numpy(q), to_numpy(p))
        assert err <= 1e-4, f"{name}: weights differ by {err:.2e} after 10 steps"


def test_training_loop_memory_stays_flat():
    """1,000 steps of a conv net with batch norm leave the memory pool where step 1 left it:
    no graph, saved buffer or optimizer state leaks from step to step."""
    gf.manual_seed(0)
    model = models.vgg11_bn32().to("cuda")
    opt = gf.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = gf.randn(16, 3, 32, 32, device="cuda")
    y = gf.randint(0, 10, (16,), device="cuda")
    used = []
    for _ in range(1000):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        gf.cuda.synchronize()
        used.append(gf.cuda.memory_allocated())
    assert used[-1] <= used[0], f"memory grew from {used[0]} to {used[-1]} bytes"
    assert max(used[1:]) <= used[0], f"memory peaked at {max(used)} after step 1 ({used[0]})"


def test_kernels_index_past_two_to_the_31():
    """A pooling input of more than 2**31 elements: the last plane is pooled correctly."""
    planes = 2 ** 31 // (1024 * 1024) + 3
    x = gf.zeros(planes, 1, 1024, 1024, device="cuda")
    tail = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    x[-1, 0] = gf.tensor(tail, device="cuda")
    out = F.max_pool2d(x, 2)
    want = tail.reshape(512, 2, 512, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(to_numpy(out[-1, 0]), want)
    del x, out


def test_peak_memory_statistics_follow_allocations():
    gf.zeros(1, device="cuda")
    gf.cuda.reset_peak_memory_stats()
    base = gf.cuda.memory_allocated()
    assert gf.cuda.max_memory_allocated() == base
    big = gf.zeros(16 * 2 ** 20, device="cuda")  # 64 MiB
    assert gf.cuda.memory_allocated() >= base + 64 * 2 ** 20
    del big
    assert gf.cuda.memory_allocated() < base + 64 * 2 ** 20
    assert gf.cuda.max_memory_allocated() >= base + 64 * 2 ** 20, "the peak forgot the array"
    assert gf.cuda.memory_reserved() >= gf.cuda.max_memory_allocated()
    gf.cuda.reset_peak_memory_stats()
    assert gf.cuda.max_memory_allocated() == gf.cuda.memory_allocated()
    held = gf.cuda.memory_reserved()
    gf.cuda.empty_cache()
    assert gf.cuda.memory_reserved() <= held - 64 * 2 ** 20, "the freed block stayed cached"
