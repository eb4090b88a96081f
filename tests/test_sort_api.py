"""Sorting and selection (sort, argsort, msort, topk, kthvalue, median, nanmedian, mode, unique,
unique_consecutive) and erfinv against PyTorch: values, indices, dtypes and first and second
derivatives, on 0-d, size-1, prime and strided inputs, with ties (in PyTorch's stable order),
NaNs (the largest) and integer inputs; their bad calls; and the CuPy path."""
import re
import sys
import types

import numpy as np
import pytest
from helpers import (
    check_cupy_path,
    check_gradcheck,
    check_op,
    check_op_raises,
    data,
    distinct,
    require_torch,
)

import gradflow as gf
from gradflow.ops import elementwise

torch = require_torch()
NAN = np.nan

TIES = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 0.5, 4.0],
                 [2.0, 2.0, 1.0, 1.0, 5.0, 5.0, 0.0]])
WITH_NANS = np.array([[3.0, NAN, 1.0, NAN, 2.0],
                      [0.5, 4.0, -1.0, 2.5, 7.0],
                      [NAN, NAN, NAN, NAN, NAN]])
INTS = np.array([[3, 0, -2, 3, 1], [1, 4, 1, 4, 1], [2, 2, 0, 0, 5]])
INTS_DISTINCT = np.random.default_rng(0).permutation(15).reshape(3, 5) - 7
DISTINCT = distinct(3, 7)
DUPLICATES = np.array([[2.0, 1.0, 2.0, -1.0], [0.5, 1.0, 2.0, 1.0], [2.0, 1.0, 2.0, -1.0]])


def _values(result):
    """The values of a (values, indices) result, sorted, for comparisons that must not depend
    on an order PyTorch leaves unspecified."""
    return result.values.sort(dim=-1, stable=True).values


# (id, fn(lib, *tensors), inputs, check_op options); `stable=True` on torch's side where ties
# are present: gradflow's order is always the stable one
CASES = [
    ("sort", lambda L, a: tuple(L.sort(a)), [DISTINCT], {}),
    ("sort_dim0_descending", lambda L, a: tuple(L.sort(a, 0, True)), [DISTINCT], {}),
    ("sort_ties", lambda L, a: tuple(L.sort(a, dim=-1, stable=True)), [TIES], {}),
    ("sort_ties_descending", lambda L, a: tuple(a.sort(dim=1, descending=True, stable=True)),
     [TIES], {}),
    ("sort_nan", lambda L, a: tuple(L.sort(a, dim=1, stable=True)), [WITH_NANS], {}),
    ("sort_nan_descending", lambda L, a: tuple(L.sort(a, dim=-1, descending=True, stable=True)),
     [WITH_NANS], {}),
    ("sort_0d", lambda L, a: tuple(L.sort(a, -1)), [data(())], {}),
    ("sort_size1", lambda L, a: tuple(L.sort(a, 0)), [data(1)], {}),
    ("sort_3d_neg_dim", lambda L, a: tuple(L.sort(a, -2, descending=True)), [distinct(3, 5, 2)],
     {}),
    ("sort_prime_strided", lambda L, a: tuple(L.sort(a, 0)), [distinct(7, 3)],
     {"noncontiguous": True}),
    ("sort_int_ties", lambda L, a: tuple(L.sort(a, dim=1, descending=True, stable=True)),
     [INTS], {}),
    ("sort_uint8", lambda L, a: tuple(L.sort(a.to(L.uint8), dim=0, stable=True)),
     [INTS * INTS], {}),
    ("sort_bool", lambda L, a: tuple(L.sort(a > 1, dim=-1, stable=True)), [INTS], {}),
    ("sort_axis", lambda L, a: tuple(L.sort(a, axis=0)), [DISTINCT], {}),
    ("argsort_ties", lambda L, a: L.argsort(a, dim=1, stable=True), [TIES], {}),
    ("argsort_descending", lambda L, a: a.argsort(dim=-1, descending=True, stable=True),
     [WITH_NANS], {}),
    ("argsort_0d_int", lambda L, a: L.argsort(a[0, 0]), [INTS], {}),
    ("argsort_strided", lambda L, a: L.argsort(a, 0, True), [distinct(5, 3)],
     {"noncontiguous": True}),
    ("msort", lambda L, a: L.msort(a), [distinct(5, 3)], {"noncontiguous": True}),
    ("msort_0d", lambda L, a: a.msort(), [data(())], {}),
    ("topk", lambda L, a: tuple(L.topk(a, 3)), [DISTINCT], {}),
    ("topk_smallest_dim0", lambda L, a: tuple(a.topk(2, 0, largest=False)), [DISTINCT], {}),
    ("topk_prime_strided", lambda L, a: tuple(L.topk(a, 5, dim=-2)), [distinct(7, 3)],
     {"noncontiguous": True}),
    ("topk_nan_largest", lambda L, a: tuple(L.topk(a, 2)), [WITH_NANS[:2]], {}),
    ("topk_nan_smallest", lambda L, a: tuple(L.topk(a, 2, largest=False)), [WITH_NANS[:2]], {}),
    ("topk_unsorted", lambda L, a: _values(L.topk(a, 4, sorted=False)), [DISTINCT], {}),
    ("topk_k0", lambda L, a: tuple(L.topk(a, 0)), [DISTINCT], {}),
    ("topk_all", lambda L, a: tuple(L.topk(a, 7)), [DISTINCT], {}),
    ("topk_0d", lambda L, a: tuple(L.topk(a, 1)), [data(())], {}),
    ("topk_0d_k0", lambda L, a: tuple(L.topk(a, 0)), [data(())], {}),
    ("topk_int", lambda L, a: tuple(L.topk(a, 2)), [INTS_DISTINCT], {}),
    ("kthvalue", lambda L, a: tuple(L.kthvalue(a, 3)), [DISTINCT], {}),
    ("kthvalue_keepdim_dim0", lambda L, a: tuple(a.kthvalue(2, 0, keepdim=True)), [DISTINCT],
     {}),
    ("kthvalue_strided", lambda L, a: tuple(L.kthvalue(a, 7, dim=0)), [distinct(7, 3)],
     {"noncontiguous": True}),
    ("kthvalue_nan", lambda L, a: tuple(L.kthvalue(a, 4)), [WITH_NANS[0]], {}),
    ("kthvalue_ties_values", lambda L, a: L.kthvalue(a.detach(), 3).values, [TIES], {}),
    ("kthvalue_0d", lambda L, a: tuple(L.kthvalue(a, 1, 0, True)), [data(())], {}),
    ("kthvalue_int", lambda L, a: tuple(L.kthvalue(a, 2, 0)), [INTS_DISTINCT], {}),
    ("median_all_odd", lambda L, a: L.median(a), [distinct(3, 1, 5)], {}),
    ("median_all_even", lambda L, a: a.median(), [distinct(2, 3)], {}),
    ("median_all_ties", lambda L, a: L.median(a), [TIES], {}),
    ("median_all_nan", lambda L, a: L.median(a), [WITH_NANS[:2]], {}),
    ("median_all_0d", lambda L, a: L.median(a), [data(())], {}),
    ("median_all_int", lambda L, a: L.median(a), [INTS], {}),
    ("median_dim", lambda L, a: tuple(L.median(a, 1)), [DISTINCT], {}),
    ("median_dim_even_keepdim", lambda L, a: tuple(a.median(0, keepdim=True)), [distinct(4, 3)],
     {}),
    ("median_dim_ties", lambda L, a: tuple(L.median(a, -1)), [TIES], {}),
    ("median_dim_nan", lambda L, a: tuple(L.median(a, 1)), [WITH_NANS], {}),
    ("median_dim_strided", lambda L, a: tuple(L.median(a, 0)), [distinct(7, 3)],
     {"noncontiguous": True}),
    ("median_dim_0d", lambda L, a: tuple(L.median(a, 0)), [data(())], {}),
    ("median_dim_int", lambda L, a: tuple(L.median(a, 1)), [INTS_DISTINCT], {}),
    ("median_axis_keepdims", lambda L, a: tuple(L.median(a, axis=1, keepdims=True)), [DISTINCT],
     {}),
    ("nanmedian_all", lambda L, a: L.nanmedian(a), [WITH_NANS], {}),
    ("nanmedian_all_nan", lambda L, a: L.nanmedian(a), [WITH_NANS[2]], {}),
    ("nanmedian_dim", lambda L, a: tuple(a.nanmedian(1)), [WITH_NANS[:2]], {}),
    ("nanmedian_dim_keepdim", lambda L, a: tuple(L.nanmedian(a, 0, True)), [WITH_NANS[:2].T],
     {}),
    # NOTE: of a slice of NaNs only, torch's index depends on its length (0 0 0 2 2 3 5 for
    # lengths 1 to 7); gradflow's is 0, the first NaN
    ("nanmedian_dim_all_nan_values", lambda L, a: L.nanmedian(a.detach(), 1).values,
     [WITH_NANS], {}),
    ("nanmedian_int", lambda L, a: L.nanmedian(a), [INTS], {}),
    ("mode", lambda L, a: tuple(L.mode(a)), [TIES], {}),
    ("mode_dim0_keepdim", lambda L, a: tuple(a.mode(0, keepdim=True)), [TIES.T.copy()], {}),
    ("mode_strided", lambda L, a: tuple(L.mode(a, 0)), [TIES.T.copy()], {"noncontiguous": True}),
    ("mode_distinct", lambda L, a: tuple(L.mode(a, -1)), [DISTINCT], {}),
    ("mode_int", lambda L, a: tuple(L.mode(a, 1)), [INTS], {}),
    ("mode_bool", lambda L, a: tuple(L.mode(a > 1)), [INTS], {}),
    ("mode_0d", lambda L, a: tuple(L.mode(a)), [data(())], {}),
    ("unique", lambda L, a: L.unique(a.detach()), [DUPLICATES], {}),
    ("unique_inverse_counts",
     lambda L, a: L.unique(a.detach(), return_inverse=True, return_counts=True), [DUPLICATES],
     {}),
    ("unique_counts_only", lambda L, a: a.unique(return_counts=True), [INTS], {}),
    ("unique_unsorted", lambda L, a: a.unique(sorted=False, return_inverse=True), [INTS], {}),
    ("unique_nan", lambda L, a: L.unique(a.detach(), return_counts=True), [WITH_NANS], {}),
    ("unique_dim0", lambda L, a: L.unique(a.detach(), dim=0, return_inverse=True,
                                          return_counts=True), [DUPLICATES], {}),
    ("unique_dim_neg", lambda L, a: L.unique(a, True, True, True, -1), [INTS[:, [0, 1, 0, 2]]],
     {}),
    ("unique_0d", lambda L, a: L.unique(a, return_inverse=True), [INTS[0, 0]], {}),
    ("unique_consecutive", lambda L, a: L.unique_consecutive(a, return_inverse=True,
                                                             return_counts=True),
     [np.array([1, 1, 2, 2, 3, 1, 1, 2])], {}),
    ("unique_consecutive_2d", lambda L, a: a.unique_consecutive(return_counts=True), [INTS], {}),
    ("unique_consecutive_nan", lambda L, a: L.unique_consecutive(a.detach()),
     [np.array([NAN, NAN, 1.0, 1.0])], {}),
    ("unique_consecutive_dim", lambda L, a: L.unique_consecutive(a.detach(), True, True, 0),
     [DUPLICATES[[0, 0, 1, 2, 2]]], {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, arrays, options, device):
    check_op(fn, *arrays, device=device, **options)


# erfinv on (-1, 1), to float64 precision: the centre, both tails, the far tails near +-1
ERFINV_GRID = np.concatenate([np.linspace(-0.999, 0.999, 41), 1 - np.logspace(-12, -3, 7),
                              -1 + np.logspace(-12, -3, 7), [0.0, 1e-300, -1e-8]])


ERFINV_CASES = [
    ("float64", lambda L, a: L.erfinv(a), [ERFINV_GRID], {"atol": 0, "rtol": 1e-13}),
    ("method_0d", lambda L, a: a.erfinv(), [data((), kind="unit")], {}),
    ("float32_strided", lambda L, a: L.erfinv(a), [data(4, 5, kind="unit", dtype=np.float32)],
     {"noncontiguous": True}),
    ("int", lambda L, a: L.erfinv(a), [np.array([-1, 0, 1, 2])], {}),
    ("edges", lambda L, a: L.erfinv(a.detach()), [np.array([-1.0, 1.0, -1.5, 2.0, NAN, -0.0])],
     {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", ERFINV_CASES,
                         ids=[c[0] for c in ERFINV_CASES])
def test_erfinv_against_torch(name, fn, arrays, options, device):
    check_op(fn, *arrays, device=device, **options)


def test_erfinv_keeps_the_sign_of_zero_and_the_dtype():
    out = gf.erfinv(gf.tensor([-0.0, 0.0], dtype=gf.float16))
    assert out.dtype == gf.float16, out.dtype
    np.testing.assert_array_equal(np.signbit(out.numpy()), [True, False])


GRADCHECK = [
    ("sort", lambda L, a: gf.sort(a, 0, descending=True).values, [distinct(4, 3)]),
    ("msort", lambda L, a: gf.msort(a), [distinct(4, 3)]),
    ("topk", lambda L, a: gf.topk(a, 2, largest=False).values, [distinct(3, 5)]),
    ("kthvalue", lambda L, a: gf.kthvalue(a, 2, 0).values, [distinct(3, 5)]),
    ("median_all", lambda L, a: gf.median(a), [distinct(3, 5)]),
    ("median_dim", lambda L, a: gf.median(a, -1, keepdim=True).values, [distinct(3, 4)]),
    ("nanmedian", lambda L, a: gf.nanmedian(a, 1).values, [WITH_NANS[:2]]),
    ("mode", lambda L, a: gf.mode(a, 1).values, [distinct(3, 4)]),
    ("erfinv", lambda L, a: gf.erfinv(a), [data(3, 4, kind="unit")]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, arrays):
    check_gradcheck(fn, *arrays)


def test_median_of_all_shares_the_gradient_among_ties_and_nans():
    """median(input)'s gradient is split evenly among the elements equal to it (the NaNs, when
    it is NaN), as PyTorch's; along a dim it goes to the one index."""
    for array in (TIES, WITH_NANS[:2]):
        x = gf.tensor(array, requires_grad=True)
        gf.median(x).backward()
        t = torch.tensor(array, requires_grad=True)
        torch.median(t).backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=0, atol=1e-15)
        assert np.count_nonzero(x.grad.numpy()) > 1, x.grad


def test_indices_are_int64_and_never_require_grad():
    x = gf.tensor(DISTINCT, requires_grad=True)
    for result in (gf.sort(x), gf.topk(x, 2), gf.kthvalue(x, 1), gf.median(x, 0),
                   gf.nanmedian(x, 1), gf.mode(x), gf.unique(x, return_inverse=True)):
        values, indices = result
        assert indices.dtype == gf.int64 and not indices.requires_grad, (indices.dtype,
                                                                         indices.requires_grad)
    assert gf.argsort(x).dtype == gf.int64 and not gf.argsort(x).requires_grad
    assert not gf.unique(x).requires_grad  # NOTE: torch's requires grad, but cannot backward


@pytest.mark.parametrize("name,call,array", [
    ("sort", lambda L, a: L.sort(a, 2), (2, 3)),
    ("argsort", lambda L, a: L.argsort(a, -3), (2, 3)),
    ("topk", lambda L, a: L.topk(a, 1, 2), (2, 3)),
    ("kthvalue", lambda L, a: L.kthvalue(a, 1, -3), (2, 3)),
    ("median", lambda L, a: L.median(a, 2), (2, 3)),
    ("nanmedian", lambda L, a: L.nanmedian(a, -3), (2, 3)),
    ("mode", lambda L, a: L.mode(a, 2), (2, 3)),
    ("unique", lambda L, a: L.unique(a, dim=2), (2, 3)),
    ("unique_consecutive", lambda L, a: L.unique_consecutive(a, dim=-3), (2, 3)),
])
def test_dim_out_of_range(name, call, array):
    error = check_op_raises(call, array, op=name)
    assert "out of range" in str(error), error


@pytest.mark.parametrize("name,call,array,text", [
    ("topk", lambda L, a: L.topk(a, 4), (2, 3), r"k \(4\) is out of range .* size 3"),
    ("topk", lambda L, a: L.topk(a, -1), (2, 3), r"k \(-1\)"),
    ("topk", lambda L, a: L.topk(a, 2), (), "size 1"),
    ("topk", lambda L, a: L.topk(a, 2.0), (2, 3), "must be int"),
    ("topk", lambda L, a: L.topk(a, np.int64(4)), (2, 3), r"k \(4\)"),
    ("topk", lambda L, a: L.topk(a > 0, 1), (2, 3), "bool"),
    ("kthvalue", lambda L, a: L.kthvalue(a, 0), (2, 3), r"k \(0\) is out of range"),
    ("kthvalue", lambda L, a: L.kthvalue(a, 3, 0), (2, 3), r"k \(3\) .* dimension 0 of size 2"),
    ("kthvalue", lambda L, a: L.kthvalue(a, 1, 1), np.zeros((2, 0)), "non-zero size"),
    ("kthvalue", lambda L, a: L.kthvalue(a > 0, 1), (2, 3), "bool"),
    ("median", lambda L, a: L.median(a, 1), np.zeros((2, 0)), "non-zero size"),
    ("median", lambda L, a: L.median(a > 0), (2, 3), "bool"),
    ("median", lambda L, a: L.median(a > 0, 0), (2, 3), "bool"),
    ("nanmedian", lambda L, a: L.nanmedian(a, 0), np.zeros((0, 3)), "non-zero size"),
    ("mode", lambda L, a: L.mode(a), np.zeros((3, 0)), r"dim 1 .* shape \(3, 0\)"),
    ("unique", lambda L, a: L.unique(a, dim=0), (), "no dimensions"),
])
def test_bad_calls(name, call, array, text):
    error = check_op_raises(call, array, op=name)
    assert re.search(text, str(error)), error


def test_empty_inputs_match_torch():
    check_op(lambda L, a: tuple(L.sort(a, 1)), np.zeros((0, 3)))
    check_op(lambda L, a: tuple(L.topk(a, 2)), np.zeros((0, 3)))
    check_op(lambda L, a: tuple(L.median(a, 1)), np.zeros((0, 3)))
    check_op(lambda L, a: L.median(a.detach()), np.zeros(0))
    check_op(lambda L, a: L.unique(a.detach(), return_inverse=True, return_counts=True),
             np.zeros(0))


# -- the CuPy path, on the fake ---------------------------------------------------------------
@pytest.fixture
def cupyx_special(fake_cuda, monkeypatch):
    """cupyx.scipy.special on the fake: erfinv computed by gradflow's NumPy body (the fake has
    no special functions); returns the dtypes it was called with."""
    calls = []

    def erfinv(a):
        calls.append(a.dtype)
        return fake_cuda.asarray(elementwise._erfinv_array(np, fake_cuda.asnumpy(a)))

    special = types.ModuleType("cupyx.scipy.special")
    special.erfinv = erfinv
    scipy = types.ModuleType("cupyx.scipy")
    scipy.special = special
    monkeypatch.setattr(fake_cuda.cupyx, "scipy", scipy, raising=False)
    monkeypatch.setitem(sys.modules, "cupyx.scipy", scipy)
    monkeypatch.setitem(sys.modules, "cupyx.scipy.special", special)
    return calls


ON_CUPY = {  # name -> call on (x float, i int) tensors
    "sort": lambda x, i: x.sort(0, descending=True).values,
    "sort_indices": lambda x, i: x.sort(1).indices,
    "argsort": lambda x, i: i.argsort(dim=1, descending=True),
    "msort": lambda x, i: x.msort(),
    "topk": lambda x, i: x.topk(2).values,
    "topk_smallest_0d": lambda x, i: x[0, 0].topk(1, largest=False).values,
    "kthvalue": lambda x, i: x.kthvalue(2, 0, keepdim=True).values,
    "median_all": lambda x, i: x.median(),
    "median_dim": lambda x, i: x.median(1).values,
    "nanmedian": lambda x, i: gf.where(x > 0, x, float("nan")).nanmedian(1).values,
    "mode": lambda x, i: (x * 0 + (i % 2)).mode(1).values,
    "mode_indices": lambda x, i: i.mode(0).indices,
    "unique": lambda x, i: i.unique(return_inverse=True)[1],
    "unique_dim": lambda x, i: (i % 2).unique(dim=1, return_counts=True)[1],
    "unique_consecutive": lambda x, i: (i % 2).unique_consecutive(return_counts=True)[1],
}


@pytest.mark.parametrize("name", ON_CUPY)
def test_ops_run_on_the_cupy_path(fake_cuda, name):
    """Each op runs on CuPy arrays (the fake's NumPy-backed stand-in) and equals its CPU
    result exactly; differentiable ones give the CPU's gradient too."""
    x_np = np.array([[0.5, -1.5, 2.0, 0.5], [0.25, 3.0, -0.75, 3.0], [1.0, 0.0, 2.5, -2.0]])
    i_np = np.array([[5, -3, 8, 5], [0, 7, -1, 0], [5, -3, 8, 5]], np.int64)
    check_cupy_path(ON_CUPY[name], x_np, i_np, rtol=0)


def test_erfinv_runs_cupy_kernel_on_the_cupy_path(fake_cuda, cupyx_special):
    """On CuPy, erfinv calls cupyx.scipy.special.erfinv, keeps the dtype, and its gradient is
    the CPU's."""
    values = np.array([-0.9, -0.3, 0.0, 0.4, 0.99], np.float32)
    results = []
    for device in ("cpu", "cuda"):
        x = gf.tensor(values, device=device, requires_grad=True)
        out = gf.erfinv(x)
        out.sum().backward()
        results.append((out.dtype, out.tolist(), x.grad.tolist()))
    assert cupyx_special == [np.float32], cupyx_special
    assert results[0][0] == results[1][0] == gf.float32
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)
    np.testing.assert_allclose(results[1][2], results[0][2], rtol=1e-6)
