"""Reliability tools: anomaly detection (which op made the first NaN/Inf, and where), out of GPU
memory errors that name the op and leave the process usable, and `gf.utils.evaluate`."""
import inspect
import os
import pickle
import types

import numpy as np
import pytest
from helpers import to_numpy

import gradflow as gf
from gradflow import nn
from gradflow.autograd import anomaly
from gradflow.autograd.function import Op
from gradflow.cuda import memory, oom

GB = 2**30
# NaN and Inf are made on purpose here; NumPy's warnings about them are expected
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


@pytest.fixture(autouse=True)
def _anomaly_off_after():
    """The mode is process-wide: never let one test's mode leak into the next."""
    yield
    gf.autograd.set_detect_anomaly(False)


def _here(offset: int = 0) -> str:
    """'file:line' of the caller's line plus `offset`, as anomaly errors print it."""
    frame = inspect.currentframe().f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno + offset}"


def _assert_mentions(text: str, *parts: str) -> None:
    missing = [p for p in parts if p not in text]
    assert not missing, f"missing {missing} in the message:\n{text}"


class NanGrad(gf.autograd.Function):
    """Doubles its input; its backward returns NaN, as a buggy custom rule would."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


# -- anomaly detection: forward ----------------------------------------------------------------
def test_forward_nan_names_op_and_user_line(device):
    x = gf.tensor([1.0, -1.0, 4.0], device=device, requires_grad=True)
    site = _here(3)
    with gf.autograd.detect_anomaly():
        with pytest.raises(RuntimeError) as info:
            gf.log(x)
    _assert_mentions(str(info.value), "Function 'log' returned nan values in its 0th output",
                     "shape (3,)", site, "gf.log(x)")


def test_forward_inf_names_op():
    x = gf.tensor([1.0, 0.0])
    with gf.autograd.detect_anomaly(), pytest.raises(RuntimeError) as info:
        gf.tensor([1.0, 1.0]) / x
    _assert_mentions(str(info.value), "Function 'div' returned inf values", "shape (2,)")


def test_check_nan_false_lets_nan_through_but_records_where():
    x = gf.tensor([-1.0, 0.0], requires_grad=True)
    with gf.autograd.detect_anomaly(check_nan=False):
        site = _here(1)
        y = NanGrad.apply(gf.log(x))
        y.sum().backward()
    assert np.isnan(to_numpy(x.grad)).all(), f"expected NaN gradients, got {x.grad}"
    frame = y.grad_fn.creation_trace[-1]
    assert f"{frame.filename}:{frame.lineno}" == site


def test_anomaly_mode_does_not_change_values():
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x = gf.randn(5, 3)
    grads = []
    for ctx in (gf.autograd.set_detect_anomaly(False), gf.autograd.detect_anomaly()):
        model.zero_grad()
        with ctx:
            model(x).sum().backward()
        grads.append([to_numpy(p.grad) for p in model.parameters()])
    for off, on in zip(*grads):
        np.testing.assert_array_equal(on, off)


def test_trace_skips_gradflow_frames():
    layer = nn.Linear(2, 2)
    with gf.autograd.detect_anomaly():
        site = _here(1)
        out = layer(gf.ones(1, 2))
    trace = out.grad_fn.creation_trace
    package = os.path.dirname(gf.__file__) + os.sep
    inside = [f.filename for f in trace if f.filename.startswith(package)]
    assert inside == [], f"gradflow frames kept in the trace: {inside}"
    assert f"{trace[-1].filename}:{trace[-1].lineno}" == site


# -- anomaly detection: backward ---------------------------------------------------------------
def test_backward_nan_from_sqrt_at_zero_names_node_and_creation(device):
    x = gf.tensor([0.0, 4.0], device=device, requires_grad=True)
    with gf.autograd.detect_anomaly():
        site = _here(1)
        y = gf.sqrt(x) * 0  # forward is finite; backward is inf * 0 at x = 0
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
    _assert_mentions(str(info.value),
                     "Function 'SqrtBackward0' (op 'sqrt') returned nan values in its 0th output",
                     "Traceback of the forward call that created 'sqrt'",
                     f'File "{site.rsplit(":", 1)[0]}", line {site.rsplit(":", 1)[1]}',
                     "y = gf.sqrt(x) * 0")


def test_backward_nan_from_custom_function():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    with gf.autograd.detect_anomaly():
        y = NanGrad.apply(x)
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
    _assert_mentions(str(info.value), "Function 'NanGradBackward' (op 'NanGrad') returned nan",
                     "y = NanGrad.apply(x)")


def test_errors_in_backward_get_the_forward_traceback():
    class Broken(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x + 1

        @staticmethod
        def backward(ctx, g):
            raise ValueError("broken rule")

    x = gf.tensor([1.0], requires_grad=True)
    with gf.autograd.detect_anomaly(check_nan=False):
        y = Broken.apply(x)
        with pytest.raises(ValueError, match="broken rule") as info:
            y.backward()
    _assert_mentions("\n".join(info.value.__notes__),
                     "Traceback of the forward call that created 'Broken'",
                     "y = Broken.apply(x)")


# -- anomaly detection: the switches -----------------------------------------------------------
def test_decorator_form_enables_only_inside():
    seen = []

    @gf.autograd.detect_anomaly()
    def step(x):
        seen.append(gf.autograd.is_anomaly_enabled())
        return gf.log(x)

    assert not gf.autograd.is_anomaly_enabled(), "decorating alone switched the mode on"
    with pytest.raises(RuntimeError, match="Function 'log' returned nan"):
        step(gf.tensor([-1.0]))
    assert seen == [True]
    assert not gf.autograd.is_anomaly_enabled()


def test_nested_switches_restore_state_even_on_error():
    ad = gf.autograd

    def state():
        return ad.is_anomaly_enabled(), ad.is_anomaly_check_nan_enabled()

    assert state() == (False, False)
    with ad.detect_anomaly():
        assert state() == (True, True)
        with ad.detect_anomaly(check_nan=False):
            assert state() == (True, False)
            with pytest.raises(KeyError), ad.set_detect_anomaly(False):
                assert state() == (False, False)
                raise KeyError("inside")
            assert state() == (True, False)
        assert state() == (True, True)
    assert state() == (False, False)
    ad.set_detect_anomaly(True)  # a plain call switches at once, as in PyTorch
    assert state() == (True, True)
    ad.set_detect_anomaly(False)
    assert state() == (False, False)


def test_off_mode_records_no_stacks(monkeypatch):
    def forbidden():
        raise AssertionError("the stack was walked with anomaly detection off")

    monkeypatch.setattr(anomaly, "user_stack", forbidden)
    x = gf.tensor([-1.0, 2.0], requires_grad=True)
    y = NanGrad.apply(gf.log(x))
    y.sum().backward()  # NaN everywhere, and nothing checks
    assert y.grad_fn.creation_trace is None
    with gf.autograd.detect_anomaly(), pytest.raises(AssertionError, match="stack was walked"):
        gf.log(x)  # the seam is live: with the mode on, the stack is walked


# -- out of GPU memory -------------------------------------------------------------------------
class FakeCupyOOM(MemoryError):
    """Stands in for cupy.cuda.memory.OutOfMemoryError, with its message."""

    def __init__(self, size: int, total: int) -> None:
        super().__init__(f"Out of memory allocating {size:,} bytes "
                         f"(allocated so far: {total:,} bytes).")


class HugeOp(Op):
    op_name = "huge_op"

    @staticmethod
    def forward(ctx, x):
        raise FakeCupyOOM(2 * GB, 7 * GB)


class HugeFunction(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        raise FakeCupyOOM(2 * GB, 7 * GB)


class HugeBackward(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        raise FakeCupyOOM(2 * GB, 7 * GB)


@pytest.fixture
def fake_pool(monkeypatch):
    """CuPy's OOM type and a pool that holds 5 GiB (3 GiB in use) until emptied; yields the
    list of empty_cache calls."""
    pool = {"used": 3 * GB, "held": 5 * GB}
    calls = []

    def empty_cache():
        calls.append(dict(pool))
        pool["held"] = pool["used"]

    monkeypatch.setattr(oom, "error_types", lambda: (FakeCupyOOM,))
    monkeypatch.setattr(memory, "memory_allocated", lambda: pool["used"])
    monkeypatch.setattr(memory, "memory_reserved", lambda: pool["held"])
    monkeypatch.setattr(memory, "empty_cache", empty_cache)
    return calls


def _check_oom(err: Exception, op: str, calls: list) -> None:
    assert isinstance(err, gf.cuda.OutOfMemoryError) and isinstance(err, RuntimeError)
    assert (err.op, err.requested_bytes, err.used_bytes, err.held_bytes) == (
        op, 2 * GB, 3 * GB, 5 * GB)
    _assert_mentions(str(err), f"{op}: CUDA out of memory",
                     "tried to allocate 2.00 GiB (2,147,483,648 bytes)", "3.00 GiB", "5.00 GiB",
                     "smaller batch size", "gf.cuda.empty_cache()")
    assert calls == [{"used": 3 * GB, "held": 5 * GB}], f"empty_cache calls: {calls}"


@pytest.mark.parametrize("fn, op", [(HugeOp, "huge_op"), (HugeFunction, "HugeFunction")])
def test_forward_oom_names_op_and_frees_cache(fake_pool, fn, op):
    x = gf.ones(3)
    with pytest.raises(gf.cuda.OutOfMemoryError) as info:
        fn.apply(x)
    _check_oom(info.value, op, fake_pool)
    np.testing.assert_allclose(to_numpy((x * 2).sum()), 6.0)  # the next, smaller step runs


def test_backward_oom_names_op(fake_pool):
    x = gf.ones(3, requires_grad=True)
    y = HugeBackward.apply(x).sum()
    with pytest.raises(gf.cuda.OutOfMemoryError) as info:
        y.backward()
    _check_oom(info.value, "HugeBackward (backward)", fake_pool)


def test_oom_error_survives_pickling(fake_pool):
    with pytest.raises(gf.cuda.OutOfMemoryError) as info:
        HugeOp.apply(gf.ones(1))
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.op, copy.requested_bytes, copy.used_bytes, copy.held_bytes) == (
        "huge_op", 2 * GB, 3 * GB, 5 * GB)
    assert str(copy) == str(info.value)


def test_oom_with_unreadable_message(monkeypatch, fake_pool):
    class OddOOM(MemoryError):
        pass

    class Odd(Op):
        op_name = "odd"

        @staticmethod
        def forward(ctx, x):
            raise OddOOM("allocation failed")

    monkeypatch.setattr(oom, "error_types", lambda: (OddOOM,))
    with pytest.raises(gf.cuda.OutOfMemoryError) as info:
        Odd.apply(gf.ones(1))
    assert info.value.requested_bytes is None
    _assert_mentions(str(info.value), "an unknown number of bytes", "CuPy: allocation failed")


class FakeCudaRuntimeError(RuntimeError):
    """Stands in for cupy.cuda.runtime.CUDARuntimeError: a CUDA status and its name."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def test_oom_types_resolve_lazily(monkeypatch):
    monkeypatch.setattr(oom, "cupy_module", lambda: None)
    assert oom.error_types() == ()
    fake_cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        memory=types.SimpleNamespace(OutOfMemoryError=FakeCupyOOM),
        runtime=types.SimpleNamespace(CUDARuntimeError=FakeCudaRuntimeError)))
    monkeypatch.setattr(oom, "cupy_module", lambda: fake_cupy)
    assert oom.error_types() == (FakeCupyOOM, FakeCudaRuntimeError)


def test_a_raw_cudamalloc_failure_is_out_of_memory_and_other_cuda_errors_pass(
        monkeypatch, fake_pool):
    """With CuPy's pool switched off (as .ci/gpu_step.py does for memcheck) an allocation
    fails as a CUDARuntimeError(cudaErrorMemoryAllocation), which is an out-of-memory too;
    any other CUDA error keeps its own type."""
    errors = {"oom": FakeCudaRuntimeError(2, "cudaErrorMemoryAllocation: out of memory"),
              "fault": FakeCudaRuntimeError(700, "cudaErrorIllegalAddress: illegal address")}
    monkeypatch.setattr(oom, "error_types", lambda: (FakeCudaRuntimeError,))

    class Failing(Op):
        op_name = "failing"

        @staticmethod
        def forward(ctx, x, kind):
            raise errors[kind]

    with pytest.raises(gf.cuda.OutOfMemoryError, match="failing: CUDA out of memory"):
        Failing.apply(gf.ones(1), kind="oom")
    with pytest.raises(FakeCudaRuntimeError, match="cudaErrorIllegalAddress"):
        Failing.apply(gf.ones(1), kind="fault")


def test_host_memory_error_is_not_called_gpu_oom(monkeypatch):
    class HostOOM(Op):
        op_name = "host"

        @staticmethod
        def forward(ctx, x):
            raise MemoryError("host allocation failed")

    monkeypatch.setattr(oom, "cupy_module", lambda: None)
    with pytest.raises(MemoryError, match="host allocation failed") as info:
        HostOOM.apply(gf.ones(1))
    assert not isinstance(info.value, gf.cuda.OutOfMemoryError)


@pytest.mark.gpu
def test_real_gpu_oom_then_small_step_runs():
    cp = gf.backend.cupy_module()
    total = cp.cuda.runtime.memGetInfo()[1]
    x = gf.zeros(1, device="cuda").expand(total // 2)  # a view; x * 2 needs 2x the device
    with pytest.raises(gf.cuda.OutOfMemoryError) as info:
        x * 2
    err = info.value
    assert err.op == "mul"
    assert err.requested_bytes >= 2 * total - 2**20, f"requested {err.requested_bytes}"
    assert 0 <= err.used_bytes <= err.held_bytes, f"used {err.used_bytes}, held {err.held_bytes}"
    _assert_mentions(str(err), "mul: CUDA out of memory", "gf.cuda.empty_cache()")
    del info, err
    np.testing.assert_allclose(to_numpy((gf.ones(1000, device="cuda") * 2).sum()), 2000.0)


# -- evaluate ----------------------------------------------------------------------------------
def _model():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    model[1].eval()  # a frozen BatchNorm inside a training model
    return model


def _modes(model) -> list:
    return [m.training for m in model.modules()]


def test_evaluate_sets_eval_and_no_grad_then_restores_each_flag():
    model = _model()
    before = _modes(model)
    assert before == [True, True, False, True, True]
    x = gf.randn(8, 3)
    with gf.utils.evaluate(model) as m:
        assert m is model
        assert _modes(model) == [False] * 5
        assert not gf.is_grad_enabled()
        out = model(x)
        assert not out.requires_grad
        np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(out))  # dropout is off
    assert _modes(model) == before
    assert gf.is_grad_enabled()


def test_evaluate_keeps_grad_off_when_it_was_off():
    model = _model()
    with gf.no_grad():
        with gf.utils.evaluate(model):
            assert not gf.is_grad_enabled()
        assert not gf.is_grad_enabled()
    assert gf.is_grad_enabled()


def test_evaluate_restores_on_exception():
    model = _model()
    before = _modes(model)
    with pytest.raises(ZeroDivisionError), gf.utils.evaluate(model):
        1 / 0
    assert _modes(model) == before
    assert gf.is_grad_enabled()
