"""gradcheck's fast mode (Chainer's random-direction check, torch's `fast_mode`): it agrees with
the full Jacobian check on correct ops, catches wrong backward rules, names the input whose
gradient is wrong, and leaves the inputs as it found them."""
import numpy as np
import pytest
from helpers import data, distinct

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import GradcheckError, gradcheck, gradgradcheck


def leaves(*arrays, device="cpu"):
    return [gf.tensor(a, device=device, requires_grad=True) for a in arrays]


# (id, fn(*tensors), inputs): broadcasting, reductions, several outputs, conv, pooling, norms
CORRECT = [
    ("matmul_tanh", lambda a, b: (a @ b).tanh(), [data(4, 5), data(5, 3, seed=1)]),
    ("mul_broadcast_sum", lambda a, b: (a * b).sum(dim=1), [data(3, 1, 4), data(5, 4, seed=1)]),
    ("two_outputs", lambda a, b: (a * b, (a - b).exp()), [data(2, 3), data(2, 3, seed=1)]),
    ("softmax", lambda a: F.softmax(a, dim=-1), [data(3, 5)]),
    ("conv2d", lambda x, w: F.conv2d(x, w, padding=1), [data(2, 2, 5, 4), data(3, 2, 3, 3)]),
    ("max_pool", lambda x: F.max_pool2d(x, 2), [distinct(1, 2, 4, 6)]),
    ("batch_norm", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     [data(4, 3, 2, 2), data(3, kind="pos", seed=1), data(3, seed=2)]),
]


@pytest.mark.parametrize("name,fn,arrays", CORRECT, ids=[c[0] for c in CORRECT])
def test_fast_mode_agrees_with_the_full_check_on_correct_ops(name, fn, arrays, device):
    inputs = leaves(*arrays, device=device)
    for fast_mode in (False, True):
        assert gradcheck(fn, inputs, fast_mode=fast_mode)
        assert gradgradcheck(fn, inputs, fast_mode=fast_mode)


class Square(gf.autograd.Function):
    """x * x with a backward that is off by `Square.error` at element 0 (0: correct)."""
    error = 0.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        wrong = np.zeros(tuple(x.shape))
        wrong.reshape(-1)[0] = Square.error
        return grad * (x * 2 + gf.tensor(wrong, device=x.device))


@pytest.fixture
def square_error():
    def set_error(value):
        Square.error = value
    yield set_error
    Square.error = 0.0


@pytest.mark.parametrize("shape", [(3,), (40, 50)], ids=["small", "large"])
def test_fast_mode_catches_a_wrong_backward_where_the_full_check_does(shape, square_error):
    x = leaves(data(shape))
    assert gradcheck(Square.apply, x, fast_mode=True), "the correct rule must pass"
    # NOTE: one wrong Jacobian entry among 2000 moves the directional derivative by about
    # error * |d_0 v_0|, well above the tolerance for an error of 0.5
    square_error(0.5)
    for fast_mode in (True, False):
        assert gradcheck(Square.apply, x, fast_mode=fast_mode, raise_exception=False) is False
    with pytest.raises(GradcheckError, match=r"fast_mode.*input 0 \(shape "
                                             + str(shape).replace("(", r"\(").replace(")", r"\)")):
        gradcheck(Square.apply, x, fast_mode=True)


def test_fast_mode_names_the_input_with_the_wrong_gradient():
    class WrongSecond(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            return grad * b, grad * a * 1.1

    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(6, 7\)\)"):
        gradcheck(WrongSecond.apply, leaves(data(6, 7), data(6, 7, seed=1)), fast_mode=True)


def test_fast_mode_catches_a_missing_gradient():
    class Forgets(gf.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(Forgets.apply, leaves(data(5), data(5, seed=1)), fast_mode=True)


def test_fast_mode_catches_a_wrong_second_derivative():
    class FlatGradient(gf.autograd.Function):
        """exp with a first derivative that is right but detached: no second derivative."""

        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, grad):
            (out,) = ctx.saved_tensors
            return grad * out.detach()

    x = leaves(data(8, 9))
    assert gradcheck(FlatGradient.apply, x, fast_mode=True)
    with pytest.raises(GradcheckError, match="fast_mode"):
        gradgradcheck(FlatGradient.apply, x, fast_mode=True)


def test_fast_mode_leaves_the_inputs_unchanged_and_checks_them_like_the_full_mode():
    arrays = [data(7, 8), data(8, 3, seed=1)]
    inputs = leaves(*arrays)
    assert gradcheck(lambda a, b: (a @ b).sin(), inputs, fast_mode=True)
    for x, a in zip(inputs, arrays):
        np.testing.assert_array_equal(x.detach().numpy(), a)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2, [gf.ones(2, requires_grad=True)], fast_mode=True)
    with pytest.raises(ValueError, match="contiguous"):
        gradcheck(lambda t: t * 2, [gf.tensor(data(3, 4), requires_grad=True).t()],
                  fast_mode=True)
