"""PyTorch's reductions and scans beyond sum/mean/max (prod, all/any, aminmax, count_nonzero,
nansum/nanmean, var_mean/std_mean, cumsum/cumprod/cummax/cummin/logcumsumexp) against PyTorch:
values, dtypes, first and second derivatives, on 0-d, size-1, prime and strided inputs, with
zeros inside products, ties inside running extremes and NaNs inside the nan-reductions."""
import numpy as np
import pytest
from helpers import check_gradcheck, check_op, check_op_raises, data, require_torch

import gradflow as gf
from gradflow.ops import reduce, scan

torch = require_torch()


def op(L, name):
    """torch.<name>, or gradflow's function of that name from its reduce or scan module."""
    if L is torch:
        return getattr(torch, name)
    return getattr(reduce, name, None) or getattr(scan, name)


def with_zeros(*where, shape=(3, 1, 5)) -> np.ndarray:
    a = data(shape)
    for index in where:
        a[index] = 0.0
    return a


def with_nans(shape=(3, 4)) -> np.ndarray:
    a = data(shape)
    a[0, 1] = a[2, 0] = a[2, 3] = np.nan
    return a


TIES = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 0.5, 4.0],
                 [2.0, 2.0, 1.0, 1.0, 5.0, 5.0, 0.0]])
INTS = np.array([[3, 0, -2], [1, 4, 2]])
ZEROS_1 = with_zeros((0, 0, 2), (2, 0, 0))  # one zero in two of the slices
ZEROS_2 = with_zeros((1, 0, 1), (1, 0, 3))  # two zeros in one slice

# (id, fn(lib, *tensors), inputs, check_op options)
CASES = [
    ("prod_all", lambda L, a: op(L, "prod")(a), [(3, 1, 5)], {}),
    ("prod_dim_keepdim", lambda L, a: op(L, "prod")(a, -1, keepdim=True), [(3, 1, 5)], {}),
    ("prod_0d", lambda L, a: op(L, "prod")(a, 0), [()], {}),
    ("prod_prime_strided", lambda L, a: op(L, "prod")(a, 0), [(7, 3)], {"noncontiguous": True}),
    ("prod_one_zero", lambda L, a: op(L, "prod")(a, 2), [ZEROS_1], {}),
    ("prod_one_zero_all", lambda L, a: op(L, "prod")(a), [with_zeros((1, 0, 4))], {}),
    ("prod_two_zeros", lambda L, a: op(L, "prod")(a, -1), [ZEROS_2], {"second_order": False}),
    ("prod_int", lambda L, a: op(L, "prod")(a, 1), [INTS], {}),
    ("prod_bool", lambda L, a: op(L, "prod")(a > 0), [INTS], {}),
    ("prod_dtype", lambda L, a: op(L, "prod")(a, 0, dtype=L.float64),
     [data(3, 2, dtype=np.float32)], {}),
    ("sum_dtype", lambda L, a: op(L, "sum")(a, dtype=L.float64), [data(5, dtype=np.float32)], {}),
    ("sum_int_to_float", lambda L, a: op(L, "sum")(a, 1, dtype=L.float32), [INTS], {}),
    ("mean_dtype", lambda L, a: op(L, "mean")(a, dtype=L.float64), [INTS], {}),
    ("all", lambda L, a: op(L, "all")(a), [ZEROS_1], {}),
    ("all_dims_keepdim", lambda L, a: op(L, "all")(a, (0, -1), keepdim=True), [ZEROS_1], {}),
    ("any_dim", lambda L, a: op(L, "any")(a, 1), [INTS], {}),
    ("any_bool_0d", lambda L, a: op(L, "any")(a > 0), [data(())], {}),
    ("aminmax", lambda L, a: tuple(op(L, "aminmax")(a)), [(3, 1, 5)], {}),
    ("aminmax_dim", lambda L, a: tuple(op(L, "aminmax")(a, dim=-1, keepdim=True)),
     [(3, 1, 5)], {}),
    ("count_nonzero", lambda L, a: op(L, "count_nonzero")(a), [ZEROS_1], {}),
    ("count_nonzero_dims", lambda L, a: op(L, "count_nonzero")(a, dim=(0, 2)), [ZEROS_1], {}),
    ("nansum", lambda L, a: op(L, "nansum")(a, 1), [with_nans()], {}),
    ("nansum_all_int", lambda L, a: op(L, "nansum")(a), [INTS], {}),
    ("nanmean", lambda L, a: op(L, "nanmean")(a, -1, keepdim=True), [with_nans()], {}),
    ("nanmean_all", lambda L, a: op(L, "nanmean")(a), [with_nans()], {}),
    ("var_mean", lambda L, a: op(L, "var_mean")(a, (0, 2)), [(3, 1, 5)], {}),
    ("var_mean_correction", lambda L, a: op(L, "var_mean")(a, 1, keepdim=True, correction=0),
     [(3, 4)], {}),
    ("std_mean_unbiased", lambda L, a: op(L, "std_mean")(a, -1, unbiased=False),
     [(2, 7)], {"noncontiguous": True}),
    ("std_mean_all", lambda L, a: op(L, "std_mean")(a), [(3, 1, 5)], {}),
    ("cumsum", lambda L, a: op(L, "cumsum")(a, -1), [(3, 1, 5)], {}),
    ("cumsum_0d", lambda L, a: op(L, "cumsum")(a, 0), [()], {}),
    ("cumsum_prime_strided", lambda L, a: op(L, "cumsum")(a, 0), [(7,)], {"noncontiguous": True}),
    ("cumsum_int", lambda L, a: op(L, "cumsum")(a, 1), [INTS], {}),
    ("cumsum_bool", lambda L, a: op(L, "cumsum")(a > 0, 0), [INTS], {}),
    ("cumsum_dtype", lambda L, a: op(L, "cumsum")(a, 0, dtype=L.float64),
     [data(4, 3, dtype=np.float32)], {}),
    ("cumprod", lambda L, a: op(L, "cumprod")(a, 0), [(3, 1, 5)], {}),
    ("cumprod_one_zero", lambda L, a: op(L, "cumprod")(a, -1), [ZEROS_1], {}),
    ("cumprod_two_zeros", lambda L, a: op(L, "cumprod")(a, 2), [ZEROS_2],
     {"second_order": False}),
    ("cumprod_int", lambda L, a: op(L, "cumprod")(a, 1), [INTS], {}),
    ("cumprod_dtype", lambda L, a: op(L, "cumprod")(a, 1, dtype=L.float64), [INTS], {}),
    ("cummax_ties", lambda L, a: tuple(op(L, "cummax")(a, 1)), [TIES], {}),
    ("cummin_ties", lambda L, a: tuple(op(L, "cummin")(a, -1)), [TIES], {}),
    ("cummax_dim0_strided", lambda L, a: tuple(op(L, "cummax")(a, 0)), [(5, 3)],
     {"noncontiguous": True}),
    ("cummin_0d", lambda L, a: tuple(op(L, "cummin")(a, -1)), [()], {}),
    ("logcumsumexp", lambda L, a: op(L, "logcumsumexp")(a, 0), [(3, 1, 5)], {}),
    ("logcumsumexp_large", lambda L, a: op(L, "logcumsumexp")(a + 1000, -1), [(2, 7)], {}),
    ("sum_axis_keepdims", lambda L, a: op(L, "sum")(a, axis=(0, 2), keepdims=True),
     [(3, 1, 5)], {}),
    ("mean_axis", lambda L, a: op(L, "mean")(a, axis=-1), [(3, 1, 5)], {}),
    ("amax_axis", lambda L, a: op(L, "amax")(a, axis=0), [(3, 4)], {}),
    ("prod_axis", lambda L, a: op(L, "prod")(a, axis=1, keepdims=True), [(3, 4)], {}),
    ("cumsum_axis", lambda L, a: op(L, "cumsum")(a, axis=1), [(3, 4)], {}),
    ("std_axis", lambda L, a: op(L, "std")(a, axis=1, keepdims=True), [(3, 4)], {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, arrays, options, device):
    check_op(fn, *arrays, device=device, **options)


GRADCHECK = [
    ("prod", lambda L, a: reduce.prod(a, 1), [data(3, 4)]),
    ("prod_one_zero", lambda L, a: reduce.prod(a, -1), [ZEROS_1]),
    ("cumsum", lambda L, a: scan.cumsum(a, 0), [data(4, 3)]),
    ("cumprod_one_zero", lambda L, a: scan.cumprod(a, -1), [ZEROS_1]),
    ("cummax", lambda L, a: scan.cummax(a, 1).values, [data(3, 5)]),
    ("logcumsumexp", lambda L, a: scan.logcumsumexp(a, 1), [data(3, 5)]),
    ("nanmean", lambda L, a: reduce.nanmean(a, 0), [with_nans()]),
    ("var_mean", lambda L, a: reduce.var_mean(a, 1), [data(3, 5)]),
    ("std_mean", lambda L, a: reduce.std_mean(a, 0, correction=0), [data(4, 3)]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, arrays):
    check_gradcheck(fn, *arrays)


@pytest.mark.parametrize("name,call", [
    ("prod", lambda f, a: f(a, 3)),
    ("all", lambda f, a: f(a, (0, -4))),
    ("any", lambda f, a: f(a, -4)),
    ("count_nonzero", lambda f, a: f(a, dim=3)),
    ("aminmax", lambda f, a: f(a, dim=3)),
    ("nansum", lambda f, a: f(a, 3)),
    ("var_mean", lambda f, a: f(a, 3)),
    ("std_mean", lambda f, a: f(a, -4)),
    ("cumsum", lambda f, a: f(a, 3)),
    ("cumprod", lambda f, a: f(a, -4)),
    ("cummax", lambda f, a: f(a, 3)),
    ("cummin", lambda f, a: f(a, 3)),
    ("logcumsumexp", lambda f, a: f(a, 3)),
])
def test_dim_out_of_range(name, call):
    error = check_op_raises(lambda L, a: call(op(L, name), a), (2, 3, 4), op=name)
    assert "out of range" in str(error) and ("3" in str(error) or "-4" in str(error)), error


@pytest.mark.parametrize("name,call,array", [
    ("prod", lambda f, a: f(a, (0, 1)), (2, 3)),  # one dim only, as in PyTorch
    ("aminmax", lambda f, a: f(a, dim=(0, 1)), (2, 3)),
    ("nanmean", lambda f, a: f(a), INTS),
])
def test_bad_calls(name, call, array):
    check_op_raises(lambda L, a: call(op(L, name), a), array, op=name)


def test_dtype_cast_keeps_the_gradient_in_the_input_dtype():
    x = gf.tensor(data(3, 2, dtype=np.float32), requires_grad=True)
    for out in (reduce.sum(x, dtype=gf.float64), reduce.prod(x, 0, dtype=gf.float64),
                scan.cumsum(x, 1, dtype=gf.float64)):
        g, = gf.autograd.grad(reduce.sum(out), [x])
        assert out.dtype == gf.float64 and g.dtype == gf.float32, (out.dtype, g.dtype)


def test_alias_and_name_together_is_refused():
    with pytest.raises(TypeError, match="sum: got both dim= and its alias axis="):
        reduce.sum(gf.tensor(data(2, 3)), dim=0, axis=1)


@pytest.mark.parametrize("call", [
    lambda x: x.prod(1), lambda x: x.sum(axis=1, keepdims=True), lambda x: x.mean(dim=0),
    lambda x: x.cumsum(-1), lambda x: x.cumprod(0), lambda x: x.cummax(1)[0],
    lambda x: x.logcumsumexp(1), lambda x: x.nansum(), lambda x: x.nanmean(1),
    lambda x: x.all(1), lambda x: x.any(), lambda x: x.count_nonzero(0),
    lambda x: x.aminmax(dim=1).max,
], ids=["prod", "sum_axis", "mean", "cumsum", "cumprod", "cummax", "logcumsumexp", "nansum",
        "nanmean", "all", "any", "count_nonzero", "aminmax"])
def test_tensor_methods_match_torch(call):
    check_op(lambda lib, x: call(x), np.array([[1.5, -2.0, 0.0], [3.0, 0.5, -1.0]]))
