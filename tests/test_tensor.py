"""Tensors, dtypes and promotion, devices, creation, randomness, and clear errors for bad
input."""
import numpy as np
import pytest
from helpers import check_op, check_op_raises, require_torch

import gradflow as gf


def test_creation_dtypes_follow_pytorch():
    assert gf.tensor([1, 2]).dtype == gf.int64
    assert gf.tensor([1.0, 2]).dtype == gf.float32
    assert gf.tensor([True, False]).dtype == gf.bool
    assert gf.tensor(np.zeros(2)).dtype == gf.float64
    assert gf.zeros(2, 3).dtype == gf.float32 and gf.zeros(2, 3).shape == (2, 3)
    assert gf.full((2,), 7).dtype == gf.int64 and gf.full((2,), 7.0).dtype == gf.float32
    assert gf.arange(5).dtype == gf.int64 and gf.arange(0, 1, 0.25).dtype == gf.float32
    assert gf.ones((2, 2), dtype=gf.float16).dtype == gf.float16
    assert gf.randint(0, 5, (3,)).dtype == gf.int64


def test_creation_functions_values_and_flags(device):
    np.testing.assert_allclose(gf.arange(1, 7, 2, device=device).tolist(), [1, 3, 5])
    np.testing.assert_allclose(gf.linspace(0, 1, 5, device=device).tolist(),
                               [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(gf.eye(2, 3, device=device).tolist(), np.eye(2, 3))
    x = gf.full((2, 3), 1.5, device=device, requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.device == gf.device(device)
    for like in (gf.zeros_like, gf.ones_like, gf.empty_like, gf.rand_like, gf.randn_like):
        y = like(x)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    np.testing.assert_allclose(gf.full_like(x, 4).tolist(), np.full((2, 3), 4.0))


def test_from_numpy_shares_memory():
    a = np.arange(4.0)
    t = gf.from_numpy(a)
    a[0] = 10.0
    assert t[0].item() == 10.0 and t.dtype == gf.float64


def test_manual_seed_reproduces_random_tensors(device):
    def draw():
        gf.manual_seed(42)
        return [gf.rand(3, device=device).tolist(), gf.randn(2, 2, device=device).tolist(),
                gf.randint(0, 10, (4,), device=device).tolist(),
                gf.normal(2.0, 0.5, (3,), device=device).tolist()]

    assert draw() == draw()


def test_random_distributions_are_plausible():
    u = gf.rand(20000).numpy()
    n = gf.normal(3.0, 2.0, (20000,)).numpy()
    r = gf.randint(-2, 3, (20000,)).numpy()
    assert 0 <= u.min() and u.max() < 1
    np.testing.assert_allclose([u.mean(), n.mean(), n.std()], [0.5, 3.0, 2.0], atol=0.05)
    assert set(np.unique(r)) == {-2, -1, 0, 1, 2}


def test_generator_streams_are_independent():
    g1, g2 = gf.Generator().manual_seed(1), gf.Generator().manual_seed(1)
    np.testing.assert_array_equal(gf.rand(4, generator=g1).numpy(),
                                  gf.rand(4, generator=g2).numpy())


@pytest.mark.parametrize("left,right", [
    ("float32", "float64"), ("int64", "float32"), ("int64", "float16"), ("bool", "int64"),
    ("int32", "int64"), ("uint8", "int8"), ("bool", "float32"),
])
def test_tensor_promotion_matches_torch(left, right):
    torch = require_torch()
    a, b = gf.ones(2, dtype=left), gf.ones(2, dtype=right)
    ta, tb = torch.ones(2, dtype=getattr(torch, left)), torch.ones(2, dtype=getattr(torch, right))
    assert str((a + b).dtype) == str((ta + tb).dtype).replace("torch.", "")
    assert str((a * b).dtype) == str((ta * tb).dtype).replace("torch.", "")


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int64", "bool"])
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_scalar_promotion_matches_torch(dtype, scalar):
    torch = require_torch()
    a = gf.ones(2, dtype=dtype)
    ta = torch.ones(2, dtype=getattr(torch, dtype))
    for op in (lambda x: x * scalar, lambda x: scalar + x, lambda x: x / scalar):
        assert str(op(a).dtype) == str(op(ta).dtype).replace("torch.", ""), (dtype, scalar)


def test_zero_dim_tensor_promotes_like_a_scalar():
    a = gf.ones(3, dtype=gf.float32)
    assert (a * gf.tensor(2.0, dtype=gf.float64)).dtype == gf.float32
    assert (gf.ones(3, dtype=gf.int64) * gf.tensor(2.0)).dtype == gf.float32


def test_comparisons_return_bool_without_grad():
    x = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for m in (x > 1.5, x <= 2, x == 2.0, x != 2.0, 2 < x):
        assert m.dtype == gf.bool and not m.requires_grad
    np.testing.assert_array_equal(((x > 1) & (x < 3)).numpy(), [False, True, False])


def test_device_model():
    assert gf.device("cpu") == "cpu" and str(gf.device("cuda:1")) == "cuda:1"
    assert gf.device("cuda", 0) == gf.device("cuda:0") == gf.device("cuda")
    assert gf.ones(2).device == gf.device("cpu") and not gf.ones(2).is_cuda
    with pytest.raises(ValueError, match="unknown device type 'tpu'"):
        gf.device("tpu")


def test_cuda_unavailable_is_clear():
    if gf.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gf.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        gf.ones(2).cuda()
    stats = (gf.cuda.memory_allocated(), gf.cuda.max_memory_allocated(),
             gf.cuda.memory_reserved())
    assert stats == (0, 0, 0)
    gf.cuda.reset_peak_memory_stats()
    gf.cuda.empty_cache()


@pytest.mark.gpu
def test_to_cuda_and_back_keeps_values_and_grad():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    y = x.cuda()
    assert y.device == gf.device("cuda:0") and y.grad_fn is not None
    (y * y).sum().backward()
    assert x.grad.device == gf.device("cpu")
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    with pytest.raises(TypeError, match="cpu"):
        y.detach().numpy()
    with pytest.raises(RuntimeError, match="same device.*cuda:0 and cpu|cpu and cuda:0"):
        y + x


def test_mixed_devices_raise_naming_both():
    a, b = gf.ones(2), gf.ones(2)
    b._device = gf.device("cuda:0")  # stands in for a CUDA tensor on machines without one
    with pytest.raises(RuntimeError, match=r"mul: expected all tensors to be on the same "
                                           r"device.*cpu and cuda:0"):
        a * b


def test_conversions_and_item():
    x = gf.tensor([[1.5]])
    assert x.item() == 1.5 and float(x) == 1.5 and x.tolist() == [[1.5]]
    assert x.to(gf.float64).dtype == gf.float64 and x.double().dtype == gf.float64
    assert x.long().dtype == gf.int64 and x.to("cpu", gf.float16).dtype == gf.float16
    with pytest.raises(RuntimeError, match="2 elements cannot be converted"):
        gf.ones(2).item()
    with pytest.raises(RuntimeError, match="requires grad.*detach"):
        gf.ones(2, requires_grad=True).numpy()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(gf.ones(2))


def test_cast_is_differentiable():
    x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    (x.float() * 3).sum().backward()
    assert x.grad.dtype == gf.float64
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_inplace_updates_and_setitem():
    x = gf.zeros(2, 3)
    x[0, 1] = 5.0
    x[1] = gf.tensor([1.0, 2.0, 3.0])
    x[x > 2] = -1.0
    np.testing.assert_allclose(x.numpy(), [[0, -1, 0], [1, 2, -1]])
    x.mul_(2).add_(1).clamp_(min=0)
    np.testing.assert_allclose(x.numpy(), [[1, 0, 1], [3, 5, 0]])
    x.zero_()
    assert x.sum().item() == 0 and x._version > 0


def test_max_with_dim_returns_values_and_indices():
    x = gf.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(dim=1)
    np.testing.assert_allclose(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == gf.int64 and x.min(0).indices.tolist() == [0, 1, 0]
    assert x.argmax().item() == 3 and x.argmin(dim=1, keepdim=True).shape == (2, 1)


# -- bad input: clear errors that name the op and the shapes or values --------------------------
@pytest.mark.parametrize("action,error,pattern", [
    (lambda: gf.ones(2, 3) + gf.ones(4), RuntimeError, r"add: .*\(2, 3\), \(4,\)"),
    (lambda: gf.ones(2, 3) @ gf.ones(4, 5), RuntimeError,
     r"matmul: shapes \(2, 3\) and \(4, 5\)"),
    (lambda: gf.ones(2, 3) @ gf.ones(3, dtype=gf.float64), RuntimeError,
     "matmul: expected both operands to have the same dtype"),
    (lambda: gf.ones(3)[5], IndexError, r"getitem: index 5 is out of bounds for dimension 0 "
                                         r"with size 3"),
    (lambda: gf.ones(3, 2)[gf.tensor([0, 3])], IndexError, "index 3 is out of bounds"),
    (lambda: gf.ones(3)[gf.tensor([True, False])], IndexError, r"boolean mask of shape \(2,\)"),
    (lambda: gf.ones(3)[gf.tensor([0.5])], IndexError, "must be long, int or bool"),
    (lambda: gf.ones(2, 2)[0, 0, 0], IndexError, "too many indices"),
    (lambda: gf.tensor([[1, 2], [3]]), ValueError, "ragged"),
    (lambda: gf.tensor(["a"]), TypeError, "could not convert"),
    (lambda: gf.ones(6).reshape(4, -1), RuntimeError, r"reshape: shape \(4, -1\) is invalid "
                                                      r"for input of size 6"),
    (lambda: gf.ones(2, 3).sum(dim=2), IndexError, r"sum: dimension out of range.*got 2"),
    (lambda: gf.ones(2, 3).permute(0, 0), RuntimeError, "not a permutation"),
    (lambda: gf.ones(2, 3).expand(4, 3), RuntimeError, r"expand: the expanded size"),
    (lambda: gf.cat([gf.ones(2, 3), gf.ones(2, 4)]), RuntimeError, r"cat: sizes of tensors "
                                                                   r"must match"),
    (lambda: gf.stack([gf.ones(2), gf.ones(3)]), RuntimeError, r"stack: expects each tensor"),
    (lambda: gf.ones(5).split([2, 2]), RuntimeError, r"split: sizes \[2, 2\]"),
    (lambda: gf.where(gf.ones(2), gf.ones(2), 0.0), TypeError,
     "where: expected condition to be a bool tensor"),
    (lambda: gf.ones(2) + "x", TypeError, "add: expected a Tensor or a number"),
    (lambda: gf.ones(2, dtype=gf.int64).mean(), RuntimeError, "mean: .*floating point"),
    (lambda: gf.ones(0, 2).max(0), RuntimeError, r"max: cannot reduce over an empty"),
    (lambda: gf.ones(2).clamp(), ValueError, "clamp: at least one"),
    (lambda: gf.ones(2, dtype="complex64"), TypeError, "not supported"),
    (lambda: gf.tensor([1, 2]) ** -1, RuntimeError, "pow: integers to negative"),
    (lambda: gf.zeros(-1), ValueError, "non-negative"),
])
def test_bad_input_gives_clear_errors(action, error, pattern):
    with pytest.raises(error, match=pattern):
        action()


def test_augmented_assignment_updates_in_place():
    w = gf.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    params = [w]
    with gf.no_grad():
        for p in params:
            p -= 0.5 * p.grad
    np.testing.assert_allclose(w.detach().numpy(), [0.0, 0.0, 0.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w += 1
    x = gf.ones(2)
    alias = x
    x *= 3
    x /= 2
    assert alias is x and x.tolist() == [1.5, 1.5]


@pytest.mark.parametrize("start,end,steps", [(5, -5, 20), (-3, 7, 9), (-10, -1, 6), (0, 10, 7)])
def test_integer_linspace_truncates_toward_zero_as_torch(start, end, steps):
    check_op(lambda lib: lib.linspace(start, end, steps, dtype=lib.int32))


@pytest.mark.parametrize("dim", [0, -1, (0,)])
def test_squeeze_of_a_0d_tensor_takes_dim_0_or_minus_1(dim):
    check_op(lambda lib, x: x.squeeze(dim), np.array(2.5))


def test_squeeze_of_a_0d_tensor_refuses_other_dims():
    check_op_raises(lambda lib, x: x.squeeze(1), np.array(2.5), op="squeeze")


@pytest.mark.parametrize("call", [
    lambda lib, x: x.new_zeros(2, 3), lambda lib, x: x.new_ones((4,)),
    lambda lib, x: x.new_full((2, 2), 7), lambda lib, x: x.new_tensor([1, 2, 3]),
    lambda lib, x: x.new_zeros(3, dtype=lib.int64), lambda lib, x: x.new_empty(0, 2),
], ids=["new_zeros", "new_ones", "new_full", "new_tensor", "new_zeros_int64", "new_empty"])
def test_new_factories_take_the_tensors_dtype_as_torch(call):
    check_op(call, np.array([[1.5, -2.0]], np.float32))


def test_tensor_basics_match_torch():
    torch = require_torch()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    for x in (gf.tensor(a), torch.tensor(a)):
        assert (x.nbytes, x.itemsize, x.nelement(), x.ndimension()) == (24, 4, 6, 2)
        assert (4.0 in x, 9 in x, x.is_complex()) == (True, False, False)
        assert f"{x.sum():.3f}" == "15.000" and format(x[0, 1], "g") == "1"
    with pytest.raises(RuntimeError, match="__contains__ only supports Tensor or scalar"):
        "a" in gf.tensor(a)
    assert f"{gf.tensor(a)}" == str(gf.tensor(a))  # not 0-d: the tensor's own text


def test_accelerator_names_cuda_where_it_is_usable(fake_cuda):
    """torch.accelerator's questions: on the GPU path (the fake), CUDA and its devices."""
    assert gf.accelerator.is_available()
    assert gf.accelerator.current_accelerator() == gf.device("cuda")
    assert gf.accelerator.device_count() == gf.cuda.device_count() >= 1


def test_no_accelerator_without_cuda(monkeypatch):
    monkeypatch.setattr(gf.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gf.cuda, "device_count", lambda: 0)
    assert (gf.accelerator.is_available(), gf.accelerator.current_accelerator(),
            gf.accelerator.device_count()) == (False, None, 0)
