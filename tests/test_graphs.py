"""gf.compile_step: a training step captured as a CUDA graph must train exactly like the eager
step. The CPU tests cover what runs on the host (the eager fallback, argument keys, the
optimizers' per-replay bookkeeping, the generator's capture offsets, the kernels' device
counters through the emulator); the gpu tests compare captured and eager training."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import to_numpy, train_step

import gradflow as gf
from gradflow import models, nn, random
from gradflow.cuda import graphs, step_tables
from gradflow.cuda import random as cuda_random


class _Session:
    """Stands in for an active capture on the host side."""

    def __init__(self, rng_state=None):
        self.optimizers, self.uploads, self.rng_state = {}, [], rng_state


@pytest.fixture
def fake_capture(monkeypatch):
    def start(rng_state=None):
        session = _Session(rng_state)
        monkeypatch.setattr(graphs._local, "session", session, raising=False)
        return session
    yield start
    graphs._local.session = None


def _batches(n, batch, device="cpu", seed=0):
    rng = np.random.default_rng(seed)
    return [(gf.tensor(rng.standard_normal((batch, 1, 28, 28)), dtype=gf.float32, device=device),
             gf.tensor(rng.integers(0, 10, batch), device=device)) for _ in range(n)]


def test_on_the_cpu_the_step_runs_eagerly_every_call():
    gf.manual_seed(0)
    model = models.LeNet5()
    opt = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    calls = []

    def step(x, y):
        calls.append(1)
        return train_step(model, opt)(x, y)

    compiled = gf.compile_step(step)
    gf.manual_seed(0)
    twin = models.LeNet5()
    twin_opt = gf.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    eager = train_step(twin, twin_opt)
    for x, y in _batches(4, 8):
        np.testing.assert_array_equal(to_numpy(compiled(x, y)), to_numpy(eager(x, y)))
    assert len(calls) == 4
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(to_numpy(p), to_numpy(q))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="compile_step: expected a callable, got int"):
        gf.compile_step(3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="compile_step: warmup must be an integer >= 1"):
            gf.compile_step(lambda: None, warmup=bad)
    with pytest.raises(TypeError, match="argument 1 is a list"):
        graphs._signature((gf.zeros(2), [1, 2]))


def test_each_argument_signature_gets_its_own_graph():
    key = graphs._signature((gf.zeros(2, 3), 5))
    assert key == graphs._signature((gf.ones(2, 3), 5))
    assert key != graphs._signature((gf.zeros(3, 3), 5))
    assert key != graphs._signature((gf.zeros(2, 3, dtype=gf.float64), 5))
    assert key != graphs._signature((gf.zeros(2, 3), 6))


def test_outputs_must_be_tensors():
    graphs._check_outputs((gf.zeros(1), [gf.ones(2)], None))
    with pytest.raises(TypeError, match="the step returned a float"):
        graphs._check_outputs((gf.zeros(1), 0.5))


def _quadratic_params(device):
    rng = np.random.default_rng(1)
    return [gf.tensor(rng.standard_normal(s), device=device, requires_grad=True)
            for s in ((3, 4), (5,))]


def _set_grads(params, seed):
    rng = np.random.default_rng(seed)
    for p in params:
        p.grad = gf.tensor(rng.standard_normal(tuple(p.shape)), device=p.device)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)),
                                         ("Adam", dict(lr=0.05, amsgrad=True)),
                                         ("RMSprop", dict(lr=0.01, momentum=0.5)),
                                         ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_a_replay_prepares_the_host_side_of_a_step(kernel_backend, name, kwargs):
    """step_tables.replay_host_step does what step does on the host: counts, version bumps,
    and this step's hyperparameter rows (with the scheduler's learning rate) in the device
    table."""
    with kernel_backend.active():
        params = _quadratic_params(kernel_backend.device)
        opt = getattr(gf.optim, name)(params, **kwargs)
        _set_grads(params, 0)
        opt.step()
        signature = step_tables.launch_signature(opt, params)
        steps = [opt.state[p].get("step") for p in params]
        versions = [p._version for p in params]
        opt.param_groups[0]["lr"] = 0.025
        opt.zero_grad()  # a step that drops its gradients at its end replays the same way
        step_tables.replay_host_step(opt, params)
        assert step_tables.launch_signature(opt, params) == signature
        assert [opt.state[p].get("step") for p in params] == [
            None if s is None else s + 1 for s in steps]
        assert [p._version for p in params] == [v + 1 for v in versions]
        (table,) = step_tables.tables(opt).values()
        table = to_numpy(table) if not isinstance(table, np.ndarray) else table
        want = [opt._scalars(opt.state[p], opt.param_groups[0]) for p in params]
        np.testing.assert_array_equal(table, np.array(want))
        assert table[0, 0] == pytest.approx(0.025 if name != "Adagrad" else
                                            0.025 / (1 + 1 * 0.01))


def test_the_launch_signature_notices_what_a_graph_cannot_follow(kernel_backend):
    with kernel_backend.active():
        params = _quadratic_params(kernel_backend.device)
        opt = gf.optim.SGD(params, lr=0.1, momentum=0.9)
        _set_grads(params, 0)
        opt.step()
        signature = step_tables.launch_signature(opt, params)
        opt.param_groups[0]["lr"] = 0.5  # a hyperparameter: uploaded, not baked
        _set_grads(params, 1)  # gradients: produced by the graph itself
        assert step_tables.launch_signature(opt, params) == signature
        opt.param_groups[0]["nesterov"] = True  # a flag: baked into the launch
        assert step_tables.launch_signature(opt, params) != signature
        opt.param_groups[0]["nesterov"] = False
        assert step_tables.launch_signature(opt, params) == signature
        opt.load_state_dict(opt.state_dict())  # new state arrays
        assert step_tables.launch_signature(opt, params) != signature
        signature = step_tables.launch_signature(opt, params)
        params[0].data = params[0].data.clone()  # a parameter on new memory
        assert step_tables.launch_signature(opt, params) != signature


def test_a_captured_step_defers_its_rows_and_refuses_what_it_cannot_fuse(kernel_backend,
                                                                          fake_capture):
    """During capture a step notes its optimizer and the parameters it updates, and its rows
    wait for the capture's end (the table keeps the last eager step's); a parameter whose
    state the fused kernel cannot take is refused rather than updated by the reference."""
    with kernel_backend.active():
        params = _quadratic_params(kernel_backend.device)
        opt = gf.optim.SGD(params, lr=0.1, momentum=0.9)
        _set_grads(params, 0)
        opt.step()
        (table,) = step_tables.tables(opt).values()
        before = np.array(to_numpy(table) if not isinstance(table, np.ndarray) else table)
        opt.param_groups[0]["lr"] = 0.5
        session = fake_capture()
        opt.step()
        ((noted, stepped),) = session.optimizers.values()
        assert noted is opt and [id(p) for p in stepped] == [id(p) for p in params]
        ((deferred, rows),) = session.uploads
        assert deferred is table
        np.testing.assert_array_equal(rows[:, 0], [0.5, 0.5])
        now = to_numpy(table) if not isinstance(table, np.ndarray) else table
        np.testing.assert_array_equal(now, before)
        opt.state[params[1]]["momentum_buffer"] = gf.zeros(5, 2, device=params[1].device)[:, 0]
        with pytest.raises(RuntimeError, match=r"SGD: a parameter of shape \(5,\) cannot use "
                                               "the fused update"):
            opt.step()


def test_a_fallback_update_is_refused_during_capture(fake_capture):
    p = gf.zeros(4, requires_grad=True)
    p.grad = gf.ones(4)
    opt = gf.optim.SGD([p], lr=0.1)
    fake_capture()
    with pytest.raises(RuntimeError, match="cannot be captured in a CUDA graph"):
        opt.step()


def test_the_generator_counts_a_captured_step_from_zero():
    random.seed_cuda(5)
    random.cuda_generators.take(0, 7)
    random.cuda_generators.begin_capture()
    assert random.cuda_generators.take(0, 10) == (5, 0)
    assert random.cuda_generators.take(0, 3) == (5, 10)
    assert random.cuda_generators.end_capture() == {0: 13}
    assert random.cuda_generators.take(0, 1) == (5, 7)


def test_random_kernels_read_the_capture_seed_and_counter(kernel_backend, fake_capture):
    """A captured draw at relative offset r, with the graph's device pair at (seed s, base b),
    equals an eager draw of seed s at offset b + r: replays continue the eager stream, and
    follow a reseed made after the capture (the seed the capture saw, 9, is not used)."""
    if kernel_backend.name != "emulator":
        pytest.skip("the GPU test below covers the device counter on a GPU")
    with kernel_backend.active():
        eager_uniform = cuda_random.uniform(np, (37,), np.float64, (4, 110))
        eager_normal = cuda_random.normal(np, (37,), np.float32, (4, 110), 0.5, 2.0)
        fake_capture(rng_state=np.array([4, 100], np.uint64))
        captured_uniform = cuda_random.uniform(np, (37,), np.float64, (9, 10))
        captured_normal = cuda_random.normal(np, (37,), np.float32, (9, 10), 0.5, 2.0)
    np.testing.assert_array_equal(captured_uniform, eager_uniform)
    np.testing.assert_array_equal(captured_normal, eager_normal)


# -- on a GPU ---------------------------------------------------------------------------------
def _train_pair(make_model, make_opt, batches, *, schedule=None, warmup=2):
    """The same model trained eagerly and through compile_step from the same start and RNG
    state; returns both runs' losses and final parameters."""
    runs = []
    for compiled in (False, True):
        gf.manual_seed(0)
        model = make_model().to("cuda")
        opt = make_opt(model.parameters())
        sched = schedule(opt) if schedule else None
        step = train_step(model, opt)
        if compiled:
            step = gf.compile_step(step, warmup=warmup)
        gf.manual_seed(1)
        losses = []
        for x, y in batches:
            losses.append(float(step(x, y).item()))
            if sched:
                sched.step()
        runs.append((losses, [to_numpy(p) for p in model.parameters()]))
    return runs


@pytest.mark.gpu
def test_captured_lenet_training_equals_eager_training():
    batches = _batches(8, 64, "cuda")
    (eager_losses, eager_params), (graph_losses, graph_params) = _train_pair(
        models.LeNet5, lambda ps: gf.optim.SGD(ps, lr=0.05, momentum=0.9), batches)
    np.testing.assert_allclose(graph_losses, eager_losses, rtol=1e-5, atol=1e-6)
    for p, q in zip(graph_params, eager_params):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_captured_steps_follow_the_scheduler_dropout_and_batchnorm():
    """Adam's step count, a per-step learning-rate schedule, fresh dropout masks and the
    BatchNorm running statistics all advance through replays as in eager steps."""
    def make_model():
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
                             nn.Linear(8 * 14 * 14, 10))
    batches = _batches(7, 32, "cuda", seed=3)
    (eager_losses, eager_params), (graph_losses, graph_params) = _train_pair(
        make_model, lambda ps: gf.optim.Adam(ps, lr=1e-2), batches,
        schedule=lambda opt: gf.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7))
    np.testing.assert_allclose(graph_losses, eager_losses, rtol=1e-4, atol=1e-6)
    for p, q in zip(graph_params, eager_params):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_a_new_batch_shape_is_captured_separately():
    batches = _batches(4, 32, "cuda") + _batches(4, 17, "cuda", seed=1)
    (eager_losses, _), (graph_losses, _) = _train_pair(
        models.LeNet5, lambda ps: gf.optim.SGD(ps, lr=0.05), batches, warmup=1)
    np.testing.assert_allclose(graph_losses, eager_losses, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_a_host_read_inside_the_step_fails_with_a_clear_error():
    model = models.LeNet5().to("cuda")
    opt = gf.optim.SGD(model.parameters(), lr=0.05)
    inner = train_step(model, opt)
    step = gf.compile_step(lambda x, y: print(inner(x, y).item()), warmup=1)
    x, y = _batches(1, 8, "cuda")[0]
    step(x, y)
    with pytest.raises(RuntimeError, match="could not be captured as a CUDA graph"):
        step(x, y)
    # the stream is usable afterwards
    assert np.isfinite(float(inner(x, y).item()))


@pytest.mark.gpu
def test_a_replayed_bounds_check_is_reported_at_the_next_host_read():
    """A captured device-index check runs again in each replay, and its failure surfaces at
    the next synchronisation, as an eager one does."""
    table = gf.arange(10.0, device="cuda")
    step = gf.compile_step(lambda index: table[index] * 2, warmup=1)
    good = gf.tensor([1, 2], device="cuda")
    for _ in range(3):
        np.testing.assert_array_equal(step(good).cpu().numpy(), [2.0, 4.0])
    step(gf.tensor([1, 12], device="cuda"))
    with pytest.raises(IndexError, match="getitem: a value of the index is out of bounds"):
        gf.cuda.synchronize()
