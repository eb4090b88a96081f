"""gradflow.autograd.functional (vjp, jvp, jacobian, hessian, vhp, hvp) against
torch.autograd.functional: the nesting of the results (tuples where torch gives tuples),
values, dtypes, create_graph (results that differentiate again), strict mode and bad
arguments; and inference_mode against torch.inference_mode."""
import numpy as np
import pytest
from helpers import check_gradcheck, data, require_torch, to_numpy

import gradflow as gf

torch = require_torch()


def fa(L):
    return L.autograd.functional


def tensors(L, arrays, noncontiguous=False):
    """Tensors for `arrays` (a tuple of arrays stays a tuple; one array gives one tensor)."""
    def one(a):
        if noncontiguous and a.ndim == 2:
            return L.tensor(np.ascontiguousarray(a.T)).t()
        return L.tensor(a)
    return tuple(one(a) for a in arrays) if isinstance(arrays, tuple) else one(arrays)


def assert_same(got, want, path="result"):
    """Same nesting (tuple or tensor at each level), shapes, dtypes and values."""
    if isinstance(want, tuple):
        assert isinstance(got, tuple), f"{path}: torch gives a tuple, gradflow {type(got)}"
        assert len(got) == len(want), f"{path}: {len(got)} entries, torch {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
        return
    assert isinstance(got, gf.Tensor), f"{path}: torch gives a Tensor, gradflow {type(got)}"
    assert tuple(got.shape) == tuple(want.shape), \
        f"{path}: shape {tuple(got.shape)} vs {tuple(want.shape)}"
    assert str(got.dtype) == str(want.dtype).replace("torch.", ""), f"{path}: dtype"
    assert got.requires_grad == want.requires_grad, f"{path}: requires_grad"
    np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-6, atol=1e-10,
                               err_msg=f"{path} differs from PyTorch")


# Functions written once for both libraries.
def cube_sum(x):
    return (x ** 3).sum()


def mixed(x, y):
    """Two inputs, two outputs, one of them a scalar."""
    return x.exp() * y.sum(), (x * y.t()).sum() if x.ndim == 2 else (x * y).sum()


def exp_rows(x):
    return x.exp().sum(-1)


def scalar_of_two(x, y):
    return (x.sin() * y ** 2).sum() + (x ** 2).sum() * y.sum()


X, Y = data(3, 2), data(2, 3, seed=1)
CASES = [
    # (id, name, func, inputs, v, kwargs)
    ("vjp_tensor", "vjp", exp_rows, data(4, 3), data(4, seed=2), {}),
    ("vjp_scalar_no_v", "vjp", cube_sum, data(5), None, {}),
    ("vjp_tuple", "vjp", mixed, (X, Y), (data(3, 2, seed=3), data((), seed=4)), {}),
    ("vjp_0d", "vjp", lambda x: x.sin(), data(()), None, {}),
    ("jvp_tensor", "jvp", exp_rows, data(4, 3), data(4, 3, seed=2), {}),
    ("jvp_tuple", "jvp", mixed, (X, Y), (data(3, 2, seed=3), data(2, 3, seed=4)), {}),
    ("jvp_size_1_no_v", "jvp", lambda x: x.exp() * 2, data(1), None, {}),
    ("jacobian_tensor", "jacobian", exp_rows, data(4, 3), None, {}),
    ("jacobian_tuple_in", "jacobian", scalar_of_two, (data(3), data(3, seed=1)), None, {}),
    ("jacobian_tuple_both", "jacobian", mixed, (X, Y), None, {}),
    ("jacobian_tuple_out", "jacobian", lambda x: (x.exp(), x.sum()), data(5), None, {}),
    ("jacobian_0d", "jacobian", lambda x: x * x, data(()), None, {}),
    ("jacobian_vectorize", "jacobian", exp_rows, data(2, 3), None, {"vectorize": True}),
    ("jacobian_forward_mode", "jacobian", exp_rows, data(2, 3), None,
     {"vectorize": True, "strategy": "forward-mode"}),
    ("hessian_tensor", "hessian", cube_sum, data(4), None, {}),
    ("hessian_2d", "hessian", lambda x: (x.exp() * x).sum(), data(2, 3), None, {}),
    ("hessian_tuple", "hessian", scalar_of_two, (data(3), data(3, seed=1)), None, {}),
    ("vhp_tensor", "vhp", cube_sum, data(4), data(4, seed=2), {}),
    ("vhp_tuple", "vhp", scalar_of_two, (data(3), data(3, seed=1)),
     (data(3, seed=2), data(3, seed=3)), {}),
    ("vhp_0d_no_v", "vhp", lambda x: x.exp() * x, data(()), None, {}),
    ("hvp_tensor", "hvp", cube_sum, data(4), data(4, seed=2), {}),
    ("hvp_tuple", "hvp", scalar_of_two, (data(3), data(3, seed=1)),
     (data(3, seed=2), data(3, seed=3)), {}),
]


def call(L, name, func, inputs, v, kwargs, noncontiguous=False, **extra):
    args = [func, tensors(L, inputs, noncontiguous)]
    if v is not None:
        args.append(tensors(L, v))
    return getattr(fa(L), name)(*args, **kwargs, **extra)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("noncontiguous", [False, True])
def test_matches_torch(case, noncontiguous):
    _, name, func, inputs, v, kwargs = case
    got = call(gf, name, func, inputs, v, kwargs, noncontiguous)
    want = call(torch, name, func, inputs, v, kwargs, noncontiguous)
    assert_same(got, want)


def flat(x):
    return [t for item in x for t in flat(item)] if isinstance(x, tuple) else [x]


@pytest.mark.parametrize("case", [c for c in CASES if c[1] != "jacobian" or "forward" not in c[0]],
                         ids=[c[0] for c in CASES if c[1] != "jacobian" or "forward" not in c[0]])
def test_create_graph_gives_results_that_differentiate_as_torch(case):
    """With create_graph=True the results keep their graph back to inputs that require grad:
    the gradient of their weighted sum matches torch's."""
    _, name, func, inputs, v, kwargs = case
    grads = []
    for L in (gf, torch):
        xs = tensors(L, inputs)
        leaves = [t.requires_grad_() for t in (xs if isinstance(xs, tuple) else (xs,))]
        args = [func, xs] + ([] if v is None else [tensors(L, v)])
        result = getattr(fa(L), name)(*args, create_graph=True, **kwargs)
        outs = [t for t in flat(result) if t.requires_grad]
        rng = np.random.default_rng(0)
        total = sum((o * L.tensor(rng.standard_normal(tuple(o.shape)))).sum() for o in outs)
        grads.append(L.autograd.grad(total, leaves, allow_unused=True))
    for g, t in zip(*grads):
        if t is None:
            assert g is None or not np.any(to_numpy(g)), "gradflow has a gradient torch lacks"
            continue
        np.testing.assert_allclose(to_numpy(g), to_numpy(t), rtol=1e-6, atol=1e-10)


def test_without_create_graph_the_results_are_detached_and_inputs_untouched():
    x = gf.tensor(data(3), requires_grad=True)
    out, g = fa(gf).vjp(lambda t: (t * t).sum(), x)
    assert not out.requires_grad and not g.requires_grad and x.grad is None
    jac = fa(gf).jacobian(lambda t: t.exp(), x)
    assert not jac.requires_grad


def test_hessian_passes_gradcheck_through_create_graph():
    check_gradcheck(lambda L, x: fa(L).hessian(lambda t: (t.sin() * t).sum(), x,
                                               create_graph=True), (3,), second_order=False)
    check_gradcheck(lambda L, x: fa(L).jvp(lambda t: t.exp() * t, x, x * 0 + 1,
                                           create_graph=True)[1], (4,), second_order=False)


def test_unused_inputs_get_zeros_and_strict_mode_refuses_them_as_torch():
    def f(x, y):
        return x * 2
    def args(L, v):
        return [f, (L.tensor(data(3)), L.tensor(data(3, seed=1))), tensors(L, v)]

    for name, v in (("vjp", data(3)), ("jvp", (data(3), data(3)))):
        assert_same(getattr(fa(gf), name)(*args(gf, v)), getattr(fa(torch), name)(*args(torch, v)))
    assert_same(fa(gf).jacobian(f, (gf.tensor(data(3)), gf.tensor(data(3)))),
                fa(torch).jacobian(f, (torch.tensor(data(3)), torch.tensor(data(3)))))


def both_raise(fn, text):
    """fn(L) raises the same type with the same text (gradflow's starts with the op name)."""
    with pytest.raises(Exception) as want:
        fn(torch)
    with pytest.raises(type(want.value)) as got:
        fn(gf)
    assert text.lower() in str(got.value).lower(), str(got.value)
    assert text.lower() in str(want.value).lower(), str(want.value)
    return got.value


def linear(x, y):
    return x * 2


@pytest.mark.parametrize("name, fn, text", [
    ("vjp", lambda L: fa(L).vjp(linear, (L.tensor(data(3)), L.tensor(data(3))), L.tensor(data(3)),
                                strict=True),
     "is independent of input 1. This is not allowed in strict mode."),
    ("jacobian", lambda L: fa(L).jacobian(linear, (L.tensor(data(3)), L.tensor(data(3))),
                                          strict=True),
     "output 0 of the user-provided function is independent of input 1"),
    ("vjp", lambda L: fa(L).vjp(lambda x: x.detach(), L.tensor(data(3)), L.tensor(data(3)),
                                strict=True),
     "Output 0 of the user-provided function does not require gradients"),
    ("hessian", lambda L: fa(L).hessian(lambda x: (x * 2).sum(), L.tensor(data(3)),
                                        strict=True),
     "found that the jacobian of the user-provided function with respect to input 0 is "
     "independent of the input"),
    ("vjp", lambda L: fa(L).vjp(lambda x: x * 2, L.tensor(data(3))),
     "can only be None if the user-provided function returns a single Tensor with a single "
     "element"),
    ("jvp", lambda L: fa(L).jvp(lambda x: x * 2, L.tensor(data(3))),
     "can only be None if the input to the user-provided function is a single Tensor with a "
     "single element"),
    ("vjp", lambda L: fa(L).vjp(lambda x: x * 2, L.tensor(data(3)), L.tensor(data(2))),
     "v has invalid size: should be"),
    ("jvp", lambda L: fa(L).jvp(linear, (L.tensor(data(3)), L.tensor(data(3))),
                                (L.tensor(data(3)),)),
     "v is a tuple of invalid length: should be 2 but got 1."),
    ("hvp", lambda L: fa(L).hvp(lambda x: x * 2, L.tensor(data(3)), L.tensor(data(3))),
     "returned by the function given to hvp should contain a single element"),
    ("vhp", lambda L: fa(L).vhp(lambda x: (x, x), L.tensor(data(3)), L.tensor(data(3))),
     "the function given to vhp should return a single Tensor"),
    ("hessian", lambda L: fa(L).hessian(lambda x: x * 2, L.tensor(data(3))),
     "returned by the function given to hessian should contain a single element"),
    ("jacobian", lambda L: fa(L).jacobian(lambda x: x, L.tensor(data(3)), vectorize=True,
                                          strict=True),
     "`strict=True` and `vectorize"),
    ("jacobian", lambda L: fa(L).jacobian(lambda x: x, L.tensor(data(3)),
                                          strategy="forward-mode"),
     "only implemented for `vectorize=True`"),
    ("jacobian", lambda L: fa(L).jacobian(lambda x: x, L.tensor(data(3)), strategy="sideways"),
     "expected strategy to be either"),
    ("vjp", lambda L: fa(L).vjp(lambda x: x, [1.0, 2.0]),
     "must be either a Tensor or a tuple of Tensors"),
    ("jacobian", lambda L: fa(L).jacobian(lambda x: 3.0, L.tensor(data(3))),
     "must be either a Tensor or a tuple of Tensors"),
])
def test_errors_match_torch(name, fn, text):
    err = both_raise(fn, text)
    assert str(err).startswith(f"{name}: "), str(err)


# -- inference_mode ----------------------------------------------------------------------------
def test_inference_mode_matches_torch_as_context_and_decorators():
    for L in (gf, torch):
        x = L.ones(3, requires_grad=True)
        with L.inference_mode():
            y = x * 2
            state = (L.is_grad_enabled(), L.is_inference_mode_enabled())
            with L.inference_mode(False):
                inner = (L.is_grad_enabled(), L.is_inference_mode_enabled())
        assert state == (False, True) and inner == (True, False), L.__name__
        assert not y.requires_grad
        assert (L.is_grad_enabled(), L.is_inference_mode_enabled()) == (True, False)

        @L.inference_mode()
        def called():
            return L.is_inference_mode_enabled(), (x * 2).requires_grad

        @L.inference_mode
        def bare():
            return L.is_inference_mode_enabled()

        @L.no_grad
        def bare_no_grad():
            return L.is_grad_enabled()

        assert called() == (True, False) and bare() is True and bare_no_grad() is False
        with L.no_grad():
            with L.inference_mode(False):  # leaving inference mode turns recording back on
                assert L.is_grad_enabled()
        assert L.autograd.inference_mode is L.inference_mode


def test_inference_mode_restores_on_errors_and_is_per_thread():
    import threading
    with pytest.raises(ValueError):
        with gf.inference_mode():
            raise ValueError("inside")
    assert gf.is_grad_enabled() and not gf.is_inference_mode_enabled()
    seen = []
    with gf.inference_mode():
        t = threading.Thread(target=lambda: seen.append(gf.is_inference_mode_enabled()))
        t.start()
        t.join()
    assert seen == [False]


def test_tensors_made_in_inference_mode_stay_ordinary_tensors():
    """The documented difference: torch's inference tensors refuse autograd later; gradflow's
    are ordinary tensors."""
    with gf.inference_mode():
        y = gf.ones(3) * 2
    x = gf.ones(3, requires_grad=True)
    (x * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0)


def test_functional_on_the_cupy_path(fake_cuda):
    x_np = data(3, dtype=np.float32)
    results = []
    for device in ("cpu", "cuda"):
        x = gf.tensor(x_np, device=device)
        h = fa(gf).hessian(cube_sum, x)
        _, jv = fa(gf).jvp(lambda t: t.exp() * t, x, x)
        assert h.device.type == jv.device.type == device
        results.append((h.cpu().numpy(), jv.cpu().numpy()))
    for cpu, cuda in zip(*results):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-6)
