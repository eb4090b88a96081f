"""The engine and the autograd API: accumulation, freeing, hooks, grad modes, custom
Functions, higher-order gradients, deep graphs and the errors PyTorch users know."""
import gc
import weakref

import numpy as np
import pytest
from helpers import require_torch, to_numpy

import gradflow as gf


def test_gradients_accumulate_in_leaves(device):
    x = gf.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [5.0, 7.0, 9.0])
    assert x.grad.device == x.device


def test_leaf_used_twice_sums_both_paths():
    x = gf.tensor(2.0, requires_grad=True)
    y = x * x + x.exp() * x
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 2 * 2 + np.exp(2) * (1 + 2), rtol=1e-6)


def test_second_backward_through_freed_graph_raises():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_saved_buffers_are_freed_after_backward():
    x = gf.randn(1000, requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h.grad_fn._saved_outputs[0].array)
    loss = (h * 2).sum()
    del h
    loss.backward()
    gc.collect()
    assert ref() is None, "exp's saved output survived backward without retain_graph"


def test_backward_on_non_scalar_needs_gradient():
    x = gf.ones(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"implicitly created only for scalar outputs.*\(2, 3\)"):
        y.backward()
    y.backward(gf.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 3)))


def test_backward_gradient_shape_is_checked():
    y = gf.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3, 2\).*\(2, 3\)"):
        y.backward(gf.ones(3, 2))


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        gf.ones(2).sum().backward()


def test_deep_chain_has_no_recursion_limit():
    x = gf.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001 ** 10_000, rtol=1e-3)


def test_no_grad_and_enable_grad_as_context_and_decorator():
    x = gf.ones(2, requires_grad=True)
    with gf.no_grad():
        assert not gf.is_grad_enabled()
        assert not (x * 2).requires_grad
        with gf.enable_grad():
            assert (x * 2).requires_grad
    assert gf.is_grad_enabled()

    @gf.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and gf.is_grad_enabled()
    with gf.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert gf.is_grad_enabled()


def test_detach_and_requires_grad_():
    x = gf.ones(3, requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    z = gf.zeros(2).requires_grad_()
    assert z.requires_grad and z.is_leaf
    with pytest.raises(RuntimeError, match="floating point"):
        gf.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf variables"):
        (x * 2).requires_grad_(False)


def test_hooks_on_leaf_and_non_leaf():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: g * 10)
    y = x * 3
    handle = y.register_hook(lambda g: seen.append(g.numpy().copy()))
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [30.0, 30.0])
    handle.remove()
    x.grad = None
    y2 = x * 3
    y2.sum().backward()
    assert len(seen) == 1


def test_retain_grad_keeps_intermediate_gradient():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    (y * 3).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0, 3.0])


def test_autograd_grad_returns_without_accumulating():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    w = gf.tensor([3.0, 4.0], requires_grad=True)
    (gx,) = gf.autograd.grad((x * w).sum(), x)
    np.testing.assert_allclose(gx.numpy(), [3.0, 4.0])
    assert x.grad is None and w.grad is None


def test_autograd_grad_unused_input():
    x = gf.tensor(1.0, requires_grad=True)
    z = gf.tensor(1.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        gf.autograd.grad(x * 2, [x, z])
    gx, gz = gf.autograd.grad(x * 2, [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0


def test_grad_of_non_leaf_input():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    (gh,) = gf.autograd.grad((h * 3).sum(), h)
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0])


def test_third_derivative_with_create_graph():
    x = gf.tensor(1.5, requires_grad=True)
    y = x ** 4
    (g1,) = gf.autograd.grad(y, x, create_graph=True)
    (g2,) = gf.autograd.grad(g1, x, create_graph=True)
    g2.backward()
    np.testing.assert_allclose([g1.item(), g2.item(), x.grad.item()],
                               [4 * 1.5 ** 3, 12 * 1.5 ** 2, 24 * 1.5], rtol=1e-6)


def test_backward_create_graph_matches_torch():
    torch = require_torch()
    a = np.array([[0.3, -1.2], [0.7, 0.5]])
    x, xt = gf.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for lib, t in ((gf, x), (torch, xt)):
        y = (lib.tanh(t @ t) * t.sigmoid()).sum()
        y.backward(create_graph=True)
        (t.grad * t.grad).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), xt.grad.detach().numpy(), rtol=1e-6)


class Cube(gf.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


class ScaleAndShift(gf.autograd.Function):
    """Two inputs, one non-tensor argument, saves its own output."""

    @staticmethod
    def forward(ctx, x, y, alpha):
        out = (x * alpha + y).exp()
        ctx.save_for_backward(out)
        ctx.alpha = alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * ctx.alpha, grad * out, None


def test_custom_function_matches_finite_differences():
    x = gf.tensor([0.5, -1.0, 2.0], dtype=gf.float64, requires_grad=True)
    y = gf.tensor([0.1, 0.2, 0.3], dtype=gf.float64, requires_grad=True)
    assert gf.autograd.gradcheck(Cube.apply, [x])
    assert gf.autograd.gradgradcheck(Cube.apply, [x])
    assert gf.autograd.gradcheck(lambda a, b: ScaleAndShift.apply(a, b, 0.7), [x, y])
    assert gf.autograd.gradgradcheck(lambda a, b: ScaleAndShift.apply(a, b, 0.7), [x, y])


def test_custom_function_graph_and_ctx():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    out = Cube.apply(x)
    assert type(out.grad_fn).__name__ == "Cube" and out.grad_fn.needs_input_grad == (True,)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(gf.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, grad):
            return grad * 3

    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    with pytest.raises(gf.autograd.GradcheckError, match="Jacobian mismatch"):
        gf.autograd.gradcheck(Wrong.apply, [x])
    assert gf.autograd.gradcheck(Wrong.apply, [x], raise_exception=False) is False


def test_gradcheck_rejects_float32():
    with pytest.raises(ValueError, match="float64"):
        gf.autograd.gradcheck(lambda t: t * 2, [gf.ones(2, requires_grad=True)])


def test_inplace_on_saved_tensor_is_detected():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    w = gf.tensor([3.0, 4.0])
    y = (x * w).sum()
    w.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_inplace_on_leaf_requiring_grad_is_refused():
    x = gf.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with gf.no_grad():
        x.add_(1)
    np.testing.assert_allclose(x.detach().numpy(), [2.0, 2.0])


def test_backward_rules_run_without_grad_by_default():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    (x.exp() * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None


def test_a_custom_functions_gradients_take_their_inputs_dtypes():
    """A backward returning float64 for a float32 input and float32 for a float64 one: the
    engine casts each to its input's dtype, as torch's (validate_outputs)."""
    torch = require_torch()

    def run(lib):
        class Mixed(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                return a * 2 + b.float()

            @staticmethod
            def backward(ctx, grad):
                return grad.double() * 2, grad.float()

        a = lib.ones(3, dtype=lib.float32, requires_grad=True)
        b = lib.ones(3, dtype=lib.float64, requires_grad=True)
        Mixed.apply(a, b).sum().backward()
        return [str(g.dtype).replace("torch.", "") for g in (a.grad, b.grad)], \
            [to_numpy(g).tolist() for g in (a.grad, b.grad)]

    assert run(gf) == run(torch) == (["float32", "float64"], [[2.0] * 3, [1.0] * 3])
