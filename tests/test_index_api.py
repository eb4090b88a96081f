"""Indexing with PyTorch's rules (an int among tensor indices is a select, applied first; lists,
ranges, bools, None, Ellipsis, masks, empty indices) for getitem and, through index_put, for
setitem; and the gathering, scattering and mask ops (gather, scatter, scatter_add,
scatter_reduce, index_select/add/copy/fill, take, take_along_dim, masked_fill/select/scatter,
nonzero, argwhere, where(condition)) against PyTorch: values, dtypes, first and second
derivatives, on awkward shapes, duplicate indices, strided inputs and negative dims; their
errors; finite differences; and the CuPy path (the fake_cuda stand-in)."""
import re

import numpy as np
import pytest
from helpers import check_gradcheck, check_op, check_op_raises, data, distinct, require_torch

import gradflow as gf

torch = require_torch()

I64 = np.int64
X6 = data(2, 5, 6, 5, 3, 4)  # the issue's example, with D indexing its dim 3 (size 5)
D = np.random.default_rng(0).integers(0, 5, (2, 1, 1, 5, 1, 1))
X3 = data(3, 4, 5)
IDX = np.array([2, 0, 2, -1])
MASK2 = data(3, 4) > 0


def t(L, a):
    """`a` as a tensor of lib L (an index made inside the lambda)."""
    return L.tensor(a)


# (id, index expression on x): check_op runs each on gradflow and torch
INDEXES = [
    ("issue_int_slice_step_tensor", lambda L, x, d: x[1, :, 3:11:2, d, 0:2], [X6, D]),
    ("int_then_tensors_apart", lambda L, x, d: x[:, 1, :, d], [X6[0], np.array([[2, 0], [1, 2]])]),
    ("tensors_apart_front", lambda L, x: x[t(L, [0, 2]), :, t(L, [1, 3])], [X3]),
    ("int_between_tensors", lambda L, x: x[t(L, [0, 2]), 1, t(L, [1, 3])], [X3]),
    ("int_slice_tensor", lambda L, x: x[1, :, t(L, [[0, 4], [2, 2]])], [X3]),
    ("neg_int_slice_tensor", lambda L, x: x[-1, 1:, t(L, IDX)], [X3]),
    ("tensor_neg_int", lambda L, x: x[t(L, IDX), -2], [X3]),
    ("slice_tensor_int", lambda L, x: x[:, t(L, [3, 0]), 2], [X3]),
    ("none_ellipsis_tensor", lambda L, x: x[None, ..., t(L, IDX)], [X3]),
    ("ellipsis_none_tensor_int", lambda L, x: x[..., None, t(L, [1, 0]), 1], [X3]),
    ("none_between_tensors", lambda L, x: x[t(L, [0, 1]), None, t(L, [2, 3])], [X3]),
    ("mask_all", lambda L, x: x[x > 0], [X3]),
    ("mask_2d_then_int", lambda L, x, m: x[m, 1], [X3, MASK2]),
    ("int_then_mask", lambda L, x, m: x[1, m[0]], [X3, MASK2]),
    ("mask_with_tensor", lambda L, x, m: x[m[:, 0], :, t(L, [4, 0, 1])[:int(m[:, 0].sum())]],
     [X3, np.array([[True], [False], [True]])]),
    ("bool_list", lambda L, x: x[[True, False, True]], [X3]),
    ("bool_list_in_tuple", lambda L, x: x[:, [False, True, True, False]], [X3]),
    ("list_dups", lambda L, x: x[[0, 2, 0]], [X3]),
    ("list_of_lists_is_a_tuple", lambda L, x: x[[[0, 1], [1, 0]]], [X3]),
    ("tuple_of_lists", lambda L, x: x[[0, 2], 1:, [-1, 0]], [X3]),
    ("range", lambda L, x: x[range(1, 3)], [X3]),
    ("range_in_tuple", lambda L, x: x[:, range(0, 4, 2), 1], [X3]),
    ("empty_tensor", lambda L, x: x[t(L, np.zeros(0, I64))], [X3]),
    ("empty_list_in_tuple", lambda L, x: x[1, []], [X3]),
    ("empty_2d_tensor", lambda L, x: x[:, t(L, np.zeros((2, 0), I64))], [X3]),
    ("true", lambda L, x: x[True], [X3]),
    ("false_and_tensor", lambda L, x: x[False, t(L, [1])], [X3]),
    ("none_true_int", lambda L, x: x[None, True, 1], [X3]),
    ("zero_d_tensor_int", lambda L, x: x[t(L, 1), :, t(L, [0, 4])], [X3]),
    ("zero_d_bool_tensor", lambda L, x: x[1:, t(L, False)], [X3]),
    ("byte_tensor_is_a_mask", lambda L, x: x[:, t(L, np.array([1, 0, 0, 3], np.uint8))], [X3]),
    ("numpy_index", lambda L, x: x[np.array([[1], [0]]), 2:], [X3]),
    ("int32_tensor", lambda L, x: x[t(L, np.array([2, 0], np.int32))], [X3]),
    ("noncontiguous_index", lambda L, x, i: x[:, i], [X3, np.array([[3, 0], [1, 1]])]),
    ("two_d_broadcast", lambda L, x: x[t(L, [[0], [2]]), t(L, [1, 3, 1])], [X3]),
    ("basic_ints", lambda L, x: x[1, -1], [X3]),
    ("basic_all_ints", lambda L, x: x[1, -1, 2], [X3]),
    ("basic_steps", lambda L, x: x[::2, 1:, ::3], [X3]),
    ("basic_ellipsis", lambda L, x: x[..., 1:4], [X3]),
    ("zero_d_ellipsis", lambda L, x: x[..., None], [data(())]),
    ("zero_d_true", lambda L, x: x[True], [data(())]),
]


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning",
                            "ignore:indexing with dtype torch.uint8:UserWarning")
@pytest.mark.parametrize("noncontiguous", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("name,fn,arrays", INDEXES, ids=[c[0] for c in INDEXES])
def test_getitem_against_torch(name, fn, arrays, noncontiguous):
    check_op(fn, *arrays, noncontiguous=noncontiguous)


def test_the_issue_example_has_torchs_shape_not_numpys():
    x, d = gf.tensor(X6), gf.tensor(D)
    assert x[1, :, 3:11:2, d, 0:2].shape == (5, 2, 2, 1, 1, 5, 1, 1, 2, 4)
    assert X6[1, :, 3:11:2, D, 0:2].shape == (2, 1, 1, 5, 1, 1, 5, 2, 2, 4)  # NumPy's


def _put(index):
    """x with v written at `index`: gradflow's index_put, torch's setitem on a clone."""
    def fn(L, x, v):
        if L is gf:
            return gf.index_put(x, index(L), v)
        y = x.clone()
        y[index(L)] = v
        return y
    return fn


# (id, index on x of shape (3, 4, 5), shape of the values written there)
PUTS = [
    ("issue", lambda L: (1, slice(None), L.tensor([[0, 4], [2, 2]])), (4, 2, 2)),
    ("int_between", lambda L: (L.tensor([0, 2]), 1, L.tensor([1, 3])), (2,)),
    ("apart", lambda L: (L.tensor([0, 2]), slice(None), L.tensor([1, 3])), (2, 4)),
    ("broadcast_values", lambda L: (1, slice(None), L.tensor([0, 4])), (1, 2)),
    ("leading_unit_values", lambda L: (slice(None), 1), (1, 1, 3, 5)),
    ("mask", lambda L: (L.tensor(MASK2),), (5,)),
    ("bool_list", lambda L: ([True, False, True], 2), (2, 5)),
    ("range", lambda L: (range(1, 3), None, 0), (1, 5)),
    ("basic", lambda L: (slice(1, None), Ellipsis, 2), (2, 4)),
    ("ints", lambda L: (-1, 0), (5,)),
    ("true", lambda L: (True, 2), (1, 4, 5)),
    ("empty", lambda L: (L.tensor(np.zeros(0, I64)),), (0, 4, 5)),
    ("scalar_value", lambda L: (L.tensor([0, 1]), 2), ()),
]


@pytest.mark.parametrize("noncontiguous", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("name,index,shape", PUTS, ids=[c[0] for c in PUTS])
def test_index_put_writes_as_torchs_setitem(name, index, shape, noncontiguous):
    check_op(_put(index), X3, data(shape, seed=5), noncontiguous=noncontiguous)


@pytest.mark.parametrize("name,index,shape", PUTS, ids=[c[0] for c in PUTS])
def test_setitem_in_place_as_torch(name, index, shape):
    value = data(shape, seed=5)
    want = torch.tensor(X3)
    want[index(torch)] = torch.tensor(value)
    got = gf.tensor(X3)
    got[index(gf)] = gf.tensor(value)
    np.testing.assert_allclose(got.numpy(), want.numpy())


def test_index_put_accumulates_duplicates_and_takes_torchs_tuple():
    index = np.array([0, 2, 0, 0])
    check_op(lambda L, x, v: L.index_put(x, (L.tensor(index),), v, accumulate=True),
             X3, data(4, 4, 5, seed=2))
    check_op(lambda L, x, v: L.index_put(x, (L.tensor([1, 1]), L.tensor([0, 0])), v,
                                         accumulate=True), X3, data(5, seed=3))
    check_op(lambda L, x, v: x.index_put((L.tensor([2]),), v), X3, data((), seed=3))


def test_basic_indexing_is_a_view_and_advanced_a_copy():
    x = gf.tensor(X3, requires_grad=True)
    for view in (x[1], x[1, -1, 2], x[..., 1:4], x[None, ::2], x[...]):
        assert np.shares_memory(view.array, x.array) and view.grad_fn.is_view
        assert view.array.flags.writeable
    for copy in (x[[0, 1]], x[x > 0], x[gf.tensor(1), gf.tensor([0])], x[True]):
        assert not np.shares_memory(copy.array, x.array) and not copy.grad_fn.is_view


def test_the_basic_fast_path_stays_one_op():
    x = gf.tensor(X3, requires_grad=True)
    y = x[1:, 2]
    assert type(y.grad_fn).__name__ == "GetItem" and y.grad_fn.next_edges[0][0] is not None


# -- gather and scatter ----------------------------------------------------------------------
G_IDX = np.array([[0, 3, 3], [2, 2, 0]])  # for x of shape (3, 4), dim 1; duplicates in rows
S_IDX = np.array([[2, 0, 1, 2], [0, 0, 2, 2]])  # for dim 0 of shape (3, 4); duplicates
X34 = data(3, 4)
SRC = data(2, 4, seed=3)
REDUCE_SRC = distinct(2, 4, seed=4) / 3 + 0.05
TIES_X = np.array([[1.0, 2.0, 3.0, 0.5], [4.0, 0.5, 3.0, 1.0], [0.0, 2.0, 2.0, 1.5]])
TIES_SRC = np.array([[4.0, 2.0, 3.0, 1.5], [1.0, 2.0, 3.0, 1.5]])
ZEROS_SRC = np.array([[0.0, 0.5, 1.5, -1.0], [0.7, 0.0, 2.0, 1.1]])


def _reduce(reduce, include_self=True, dim=0, index=S_IDX):
    return lambda L, x, s: L.scatter_reduce(x, dim, L.tensor(index), s, reduce,
                                            include_self=include_self)


CASES = [
    ("gather", lambda L, x, i: L.gather(x, 1, i), [X34, G_IDX], {}),
    ("gather_neg_dim_method", lambda L, x, i: x.gather(-1, i), [X34, G_IDX], {}),
    ("gather_smaller", lambda L, x, i: L.gather(x, 0, i), [X34, np.array([[2], [0]])], {}),
    ("gather_larger_along_dim", lambda L, x, i: x.gather(1, i),
     [X34, np.array([[0, 1, 1, 3, 2, 0]])], {}),
    ("gather_strided", lambda L, x, i: L.gather(x, 1, i), [X34, G_IDX.T.copy().T],
     {"noncontiguous": True}),
    ("gather_0d", lambda L, x, i: L.gather(x, 0, i), [data(()), np.array(0)], {}),
    ("gather_0d_vector_index", lambda L, x, i: L.gather(x, 0, i), [data(()),
                                                                 np.array([0, 0, 0])], {}),
    ("gather_empty", lambda L, x, i: L.gather(x, 1, i), [X34, np.zeros((3, 0), I64)], {}),
    ("gather_int32", lambda L, x: L.gather(x, 1, L.tensor(G_IDX.astype(np.int32))), [X34], {}),
    ("gather_3d", lambda L, x, i: L.gather(x, 1, i),
     [X3, np.random.default_rng(1).integers(0, 4, (2, 7, 5))], {}),
    ("scatter_src", lambda L, x, s: L.scatter(x, 0, L.tensor([[2, 0, 1, 2]]), s), [X34, SRC[:1]],
     {}),
    ("scatter_src_method_neg_dim", lambda L, x, s: x.scatter(-1, L.tensor([[3, 1], [0, 2]]), s),
     [X34, SRC[:, :2]], {}),
    # NOTE: torch's backward refuses a src larger than the index, so src is a constant here
    ("scatter_larger_src", lambda L, x: L.scatter(x, 0, L.tensor([[2, 0, 1]]), L.tensor(SRC)),
     [X34], {}),
    ("scatter_value", lambda L, x: x.scatter(0, L.tensor([[2, 0, 1, 2]]), 1.5), [X34], {}),
    ("scatter_value_kw", lambda L, x: L.scatter(x, 1, L.tensor([[0], [3]]), value=-2.0),
     [X34], {}),
    ("scatter_int", lambda L, x: L.scatter(x, 0, L.tensor([[1, 0, 1]]), 7),
     [np.arange(6).reshape(2, 3)], {}),
    ("scatter_0d", lambda L, x, s: L.scatter(x, 0, L.tensor(0), s), [data(()), data((), seed=1)],
     {}),
    # NOTE: a 0-d index into a vector counts as one index, as in the Transforms tutorial
    ("scatter_0d_index_into_vector", lambda L, x, s: x.scatter(0, L.tensor(3), s),
     [data((5,)), data((), seed=1)], {}),
    ("scatter_value_0d_index", lambda L, x: x.scatter(0, L.tensor(1), value=2.0), [data((5,))],
     {}),
    ("gather_0d_index_from_vector", lambda L, x: x.gather(0, L.tensor(2)), [data((5,))], {}),
    ("scatter_add_0d_index", lambda L, x, s: x.scatter_add(0, L.tensor(4), s),
     [data((5,)), data((), seed=1)], {}),
    ("scatter_add_dups", lambda L, x, s: L.scatter_add(x, 0, L.tensor(S_IDX), s), [X34, SRC],
     {}),
    ("scatter_add_method_strided", lambda L, x, s: x.scatter_add(1, L.tensor(G_IDX), s),
     [X34, data(3, 2, seed=2).T], {"noncontiguous": True}),
    ("scatter_add_larger_src", lambda L, x: L.scatter_add(x, 1, L.tensor([[1, 1]]),
                                                          L.tensor(data(3, 3, seed=2))), [X34], {}),
    ("scatter_reduce_sum", _reduce("sum"), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_sum_noself", _reduce("sum", False), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_prod", _reduce("prod"), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_prod_noself", _reduce("prod", False), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_prod_zeros", _reduce("prod"), [TIES_X, ZEROS_SRC], {}),
    ("scatter_reduce_prod_zeros_noself", _reduce("prod", False), [TIES_X, ZEROS_SRC], {}),
    ("scatter_reduce_mean", _reduce("mean"), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_mean_noself", _reduce("mean", False), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_amax", _reduce("amax"), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_amin_noself", _reduce("amin", False), [X34, REDUCE_SRC], {}),
    ("scatter_reduce_amax_ties", _reduce("amax"), [TIES_X, TIES_SRC], {}),
    ("scatter_reduce_amin_ties_noself", _reduce("amin", False), [TIES_X, TIES_SRC], {}),
    ("scatter_reduce_method_dim1", lambda L, x, s: x.scatter_reduce(
        -1, L.tensor(G_IDX), s, "amax", include_self=False), [X34, data(2, 3, seed=6)], {}),
    ("scatter_reduce_mean_int", lambda L, x, s: L.scatter_reduce(x, 1, L.tensor([[0, 0, 1]]), s,
                                                                  "mean"),
     [np.array([[5, -7, 2]]), np.array([[2, 4, -4]])], {}),
    ("scatter_reduce_amax_int_noself", lambda L, x, s: L.scatter_reduce(
        x, 1, L.tensor([[0, 0, 1]]), s, "amax", include_self=False),
     [np.array([[5, -7, 2]]), np.array([[2, 4, -4]])], {}),
    ("scatter_reduce_0d", lambda L, x, s: L.scatter_reduce(x, 0, L.tensor(0), s, "prod"),
     [data(()), data((), seed=2)], {}),
    ("take", lambda L, x: L.take(x, L.tensor([[0, -1], [5, 5]])), [X34], {}),
    ("take_0d_index_strided", lambda L, x: x.take(L.tensor(7)), [X34], {"noncontiguous": True}),
    ("take_empty", lambda L, x: L.take(x, L.tensor(np.zeros(0, I64))), [X34], {}),
    ("take_along_dim", lambda L, x, i: L.take_along_dim(x, i, 1), [X34, G_IDX[:1]], {}),
    ("take_along_dim_broadcast", lambda L, x, i: L.take_along_dim(x, i, 0),
     [data(3, 1), np.array([[2, 0, 1, -1]])], {}),
    ("take_along_dim_flat", lambda L, x: x.take_along_dim(L.tensor([[0, 11], [7, 3]])), [X34],
     {}),
    ("take_along_dim_argsort", lambda L, x: L.take_along_dim(x, x.argsort(dim=-1), -1), [X3], {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", CASES, ids=[c[0] for c in CASES])
def test_gather_scatter_against_torch(name, fn, arrays, options):
    check_op(fn, *arrays, **options)


# -- index_select, index_add, index_copy, index_fill ------------------------------------------
DUPS = np.array([2, 0, 2])
INDEX_CASES = [
    ("index_select", lambda L, x, i: L.index_select(x, 1, i), [X34, np.array([3, 0, 3])], {}),
    ("index_select_neg_dim", lambda L, x: x.index_select(-1, L.tensor([4, 1])), [X3], {}),
    ("index_select_0d_index", lambda L, x: L.index_select(x, 0, L.tensor(2)), [X34], {}),
    ("index_select_int32_strided", lambda L, x: x.index_select(
        0, L.tensor(np.array([1, 2], np.int32))), [X34], {"noncontiguous": True}),
    ("index_select_0d_input", lambda L, x: L.index_select(x, 0, L.tensor([0])), [data(())], {}),
    ("index_select_empty", lambda L, x: L.index_select(x, 1, L.tensor(np.zeros(0, I64))),
     [X34], {}),
    ("index_add_dups", lambda L, x, s: L.index_add(x, 0, L.tensor(DUPS), s),
     [X34, data(3, 4, seed=2)], {}),
    ("index_add_alpha_method", lambda L, x, s: x.index_add(1, L.tensor([1, 1]), s, alpha=-2.5),
     [X34, data(3, 2, seed=2)], {}),
    ("index_add_int_alpha", lambda L, x, s: L.index_add(x, 0, L.tensor([0, 0]), s, alpha=2),
     [np.arange(8).reshape(2, 4), np.ones((2, 4), I64)], {}),
    ("index_add_0d", lambda L, x, s: L.index_add(x, 0, L.tensor([0]), s),
     [data(()), data((), seed=1)], {}),
    ("index_add_strided", lambda L, x, s: L.index_add(x, -1, L.tensor([3, 0]), s),
     [X34, data(3, 2, seed=4)], {"noncontiguous": True}),
    ("index_copy", lambda L, x, s: L.index_copy(x, 0, L.tensor([2, 0]), s),
     [X34, data(2, 4, seed=2)], {}),
    ("index_copy_method_neg_dim", lambda L, x, s: x.index_copy(-2, L.tensor([3]), s),
     [X3, data(3, 1, 5, seed=2)], {}),
    ("index_copy_0d_index", lambda L, x, s: L.index_copy(x, 0, L.tensor(1), s),
     [X34, data(1, 4, seed=2)], {}),
    ("index_fill", lambda L, x: L.index_fill(x, 1, L.tensor([3, -1, 0]), -1.5), [X34], {}),
    ("index_fill_tensor_value", lambda L, x, v: x.index_fill(0, L.tensor([2, 2]), v),
     [X34, data((), seed=3)], {}),
    ("index_fill_int", lambda L, x: L.index_fill(x, 0, L.tensor([1]), 2.7),
     [np.arange(6).reshape(2, 3)], {}),
    ("index_fill_0d", lambda L, x: L.index_fill(x, 0, L.tensor([0]), 4.0), [data(())], {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_index_ops_against_torch(name, fn, arrays, options):
    check_op(fn, *arrays, **options)


# -- masks and nonzero ------------------------------------------------------------------------
MASK_CASES = [
    ("masked_fill", lambda L, x, m: L.masked_fill(x, m, -1.5), [X34, MASK2], {}),
    ("masked_fill_broadcast_mask", lambda L, x: x.masked_fill(L.tensor([True, False, True,
                                                                       False]), 2.0), [X34], {}),
    ("masked_fill_broadcast_input", lambda L, x, m: L.masked_fill(x, m, 0.5), [data(4), MASK2],
     {}),
    ("masked_fill_tensor_value", lambda L, x, v: x.masked_fill(x > 0, v), [X3, data(())], {}),
    ("masked_fill_int_value_cast", lambda L, x: L.masked_fill(x, x > 2, 2.7),
     [np.arange(6).reshape(2, 3)], {}),
    ("masked_fill_strided", lambda L, x, m: L.masked_fill(x, m, 3.0), [X34, MASK2],
     {"noncontiguous": True}),
    ("masked_fill_0d", lambda L, x: L.masked_fill(x, x > 0, 1.0), [data(())], {}),
    ("masked_select", lambda L, x, m: L.masked_select(x, m), [X34, MASK2], {}),
    ("masked_select_broadcast", lambda L, x, m: x.masked_select(m), [data(4), MASK2], {}),
    ("masked_select_strided", lambda L, x: L.masked_select(x, x > 0), [X3],
     {"noncontiguous": True}),
    ("masked_select_none", lambda L, x: L.masked_select(x, x > 10), [X34], {}),
    ("masked_scatter", lambda L, x, m, s: L.masked_scatter(x, m, s),
     [X34, MASK2, data(15, seed=2)], {}),
    ("masked_scatter_broadcast_mask", lambda L, x, s: x.masked_scatter(
        L.tensor([True, False, True, True]), s), [X34, data(3, 4, seed=2)], {}),
    ("masked_scatter_broadcast_input", lambda L, x, m, s: L.masked_scatter(x, m, s),
     [data(4), MASK2, data(2, 7, seed=2)], {}),
    ("masked_scatter_all_false_empty_source", lambda L, x, s: L.masked_scatter(x, x > 10, s),
     [X34, np.zeros(0)], {}),
    ("nonzero", lambda L, x: L.nonzero(x), [np.array([[1, 0, 2], [0, 0, 3]])], {}),
    ("nonzero_tuple", lambda L, x: L.nonzero(x, as_tuple=True), [X3 > 0], {}),
    ("nonzero_method_0d", lambda L, x: x.nonzero(), [np.array(2.0)], {}),
    ("nonzero_0d_tuple", lambda L, x: x.nonzero(as_tuple=True), [np.array(0.0)], {}),
    ("nonzero_empty", lambda L, x: L.nonzero(x), [np.zeros((0, 3))], {}),
    ("argwhere", lambda L, x: L.argwhere(x), [X3 > 0.5], {}),
    ("argwhere_method", lambda L, x: x.argwhere(), [np.array([0.0, 1.5, 0.0, -2.0])], {}),
    ("where_condition_only", lambda L, x: L.where(x > 0), [X3], {}),
    ("where_0d_condition", lambda L, x: L.where(x), [np.array(3)], {}),
    ("where_three_args_still", lambda L, x, y: L.where(x > 0, x, y), [X34, data(4, seed=1)], {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", MASK_CASES, ids=[c[0] for c in MASK_CASES])
def test_mask_ops_against_torch(name, fn, arrays, options):
    check_op(fn, *arrays, **options)


# -- finite differences -----------------------------------------------------------------------
GRADCHECK = [
    ("getitem_moved", lambda L, x: x[1, :, gf.tensor([[0, 4], [2, 2]])], [X3]),
    ("index_put", lambda L, x, v: gf.index_put(x, (gf.tensor([0, 2, 0]), 1), v, accumulate=True),
     [X3, data(3, 5, seed=1)]),
    ("gather", lambda L, x: gf.gather(x, 1, gf.tensor(G_IDX)), [X34]),
    ("scatter", lambda L, x, s: gf.scatter(x, 0, gf.tensor([[2, 0, 1, 2]]), s), [X34, SRC]),
    ("scatter_add", lambda L, x, s: gf.scatter_add(x, 0, gf.tensor(S_IDX), s), [X34, SRC]),
    ("scatter_reduce_prod", _reduce("prod"), [X34, REDUCE_SRC]),
    ("scatter_reduce_mean_noself", _reduce("mean", False), [X34, REDUCE_SRC]),
    ("scatter_reduce_amax", _reduce("amax"), [X34, REDUCE_SRC]),
    ("index_add", lambda L, x, s: gf.index_add(x, 0, gf.tensor(DUPS), s, alpha=0.5),
     [X34, data(3, 4, seed=2)]),
    ("index_copy", lambda L, x, s: gf.index_copy(x, 1, gf.tensor([3, 1]), s),
     [X34, data(3, 2, seed=2)]),
    ("index_fill", lambda L, x, v: gf.index_fill(x, 1, gf.tensor([3, 1]), v), [X34, data(())]),
    ("take_along_dim", lambda L, x: gf.take_along_dim(x, gf.tensor([[2, 0, 1, 2]]), 0),
     [data(3, 1)]),
    ("masked_scatter", lambda L, x, s: gf.masked_scatter(x, gf.tensor(MASK2), s),
     [X34, data(9, seed=2)]),
    ("masked_fill", lambda L, x, v: gf.masked_fill(x, gf.tensor(MASK2), v), [X34, data(())]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, arrays):
    check_gradcheck(fn, *arrays)


# -- errors -----------------------------------------------------------------------------------
F_IDX = np.array([[0.0, 1.0]])
RAISES = [
    ("getitem", lambda L, x: x[3], [(3, 4)], "index 3 is out of bounds for dimension 0"),
    ("getitem", lambda L, x: x[:, L.tensor([0, -5])], [(3, 4)],
     "index -5 is out of bounds for dimension 1 with size 4"),
    ("getitem", lambda L, x: x[1, :, [0, 7]], [(2, 3, 4)],
     "index 7 is out of bounds for dimension 2 with size 4"),
    ("getitem", lambda L, x: x[L.tensor([True, False])], [(3, 4)],
     r"mask of shape \(2,\) does not match the indexed dimensions \(3,\)"),
    ("getitem", lambda L, x: x[L.tensor([0.5])], [(3,)], "must be long, int or bool"),
    ("getitem", lambda L, x: x[L.tensor([0], dtype=L.int16)], [(3,)], "int16"),
    ("getitem", lambda L, x: x[0, 0, 0], [(2, 2)], "too many indices"),
    ("getitem", lambda L, x: x[1.5], [(3,)], "float"),
    ("getitem", lambda L, x: x[::-1], [(3,)], "step must be greater than zero"),
    ("index_put", lambda L, x: L.index_put(x, (L.tensor([5]),), L.tensor(1.0, dtype=L.float64)),
     [(3, 4)],
     "index 5 is out of bounds for dimension 0 with size 3"),
    ("index_put", lambda L, x: L.index_put(x, (L.tensor([0]),), L.tensor(1.0, dtype=L.float32)),
     [(3, 4)], "float32"),
    ("gather", lambda L, x: L.gather(x, 1, L.tensor(F_IDX)), [(3, 4)],
     "Expected dtype int32/int64 for index"),
    ("gather", lambda L, x: L.gather(x, 1, L.tensor([0, 1])), [(3, 4)],
     "same number of dimensions"),
    ("gather", lambda L, x: L.gather(x, 1, L.tensor([[0, 4]])), [(3, 4)],
     "index 4 is out of bounds for dimension 1 with size 4"),
    ("gather", lambda L, x: L.gather(x, 1, L.tensor([[-1]])), [(3, 4)], "index -1"),
    ("gather", lambda L, x: L.gather(x, 1, L.tensor(np.zeros((4, 1), I64))), [(3, 4)],
     r"index \(4, 1\) to be no larger than self \(3, 4\) apart from dimension 1"),
    ("gather", lambda L, x: L.gather(x, 2, L.tensor([[0]])), [(3, 4)], "out of range"),
    ("scatter", lambda L, x: L.scatter(x, 1, L.tensor([[0, 1]]), L.ones(1, 2, dtype=L.float32)),
     [(3, 4)], "dtype"),
    ("scatter", lambda L, x, s: L.scatter(x, 1, L.tensor([[0, 1]]), s), [(3, 4), (1, 1)],
     r"no larger than src \(1, 1\)"),
    ("scatter", lambda L, x: L.scatter(x, -3, L.tensor([[0]]), 1.0), [(3, 4)], "out of range"),
    ("scatter", lambda L, x: L.scatter(x, 0, L.tensor(F_IDX), 1.0), [(3, 4)], "int32/int64"),
    ("scatter_add", lambda L, x: L.scatter_add(x, 1, L.tensor([[0, 1]]), 2.0), [(3, 4)], "src"),
    ("scatter_add", lambda L, x, s: L.scatter_add(x, 1, L.tensor([[0, 9]]), s), [(3, 4), (1, 2)],
     "index 9 is out of bounds"),
    ("scatter_reduce", lambda L, x, s: L.scatter_reduce(x, 1, L.tensor([[0, 1]]), s, "median"),
     [(3, 4), (1, 2)], "reduce"),
    ("index_select", lambda L, x: L.index_select(x, 1, L.tensor([[0]])), [(3, 4)],
     "supposed to be a vector"),
    ("index_select", lambda L, x: L.index_select(x, 1, L.tensor([0.0])), [(3, 4)],
     "int32/int64"),
    ("index_select", lambda L, x: L.index_select(x, 1, L.tensor([-1])), [(3, 4)], "index -1"),
    ("index_select", lambda L, x: L.index_select(x, 0, L.tensor([0, 0])), [()],
     "only 1 value"),
    ("index_add", lambda L, x, s: L.index_add(x, 1, L.tensor([0]), s), [(3, 4), (3, 2)],
     r"source of shape \(3, 2\)"),
    ("index_add", lambda L, x: L.index_add(x, 1, L.tensor([0]), L.ones(3, 1, dtype=L.float32)),
     [(3, 4)], "same scalar type"),
    ("index_add", lambda L, x, s: L.index_add(x, 1, L.tensor([4]), s), [(3, 4), (3, 1)],
     "index 4 is out of bounds"),
    ("index_copy", lambda L, x, s: L.index_copy(x, 1, L.tensor([0], dtype=L.int32), s),
     [(3, 4), (3, 1)], "int64"),
    ("index_copy", lambda L, x, s: L.index_copy(x, 1, L.tensor([-1]), s), [(3, 4), (3, 1)],
     "index -1 is out of bounds for dimension 1 with size 4"),
    ("index_fill", lambda L, x: L.index_fill(x, 1, L.tensor([7]), 5.0), [(3, 4)],
     "index 7 is out of bounds"),
    ("index_fill", lambda L, x: L.index_fill(x, 1, L.tensor([0.0]), 5.0), [(3, 4)], "int64"),
    ("index_fill", lambda L, x, v: L.index_fill(x, 1, L.tensor([0]), v), [(3, 4), (1,)],
     "0-dimensional value tensor"),
    ("take", lambda L, x: L.take(x, L.tensor([12])), [(3, 4)], "12 is out of bounds for a "
                                                              "tensor of 12 elements"),
    ("take", lambda L, x: L.take(x, L.tensor([1], dtype=L.int32)), [(3, 4)], "int64"),
    ("take_along_dim", lambda L, x: L.take_along_dim(x, L.tensor([0]), 1), [(3, 4)],
     "same number of dimensions"),
    ("take_along_dim", lambda L, x: L.take_along_dim(x, L.tensor([[0]], dtype=L.int32), 1),
     [(3, 4)], "int64"),
    ("take_along_dim", lambda L, x: L.take_along_dim(x, L.tensor([[15]])), [(3, 4)],
     "index 15 is out of bounds"),
    ("masked_fill", lambda L, x: L.masked_fill(x, x, 1.0), [(3, 4)], "boolean masks"),
    ("masked_fill", lambda L, x: L.masked_fill(x, x > 0, L.ones(1)), [(3, 4)],
     "0-dimensional value tensor"),
    ("masked_fill", lambda L, x: L.masked_fill(x, L.ones(3, dtype=L.bool), 1.0), [(3, 4)],
     "broadcast"),
    ("masked_select", lambda L, x: L.masked_select(x, x), [(3, 4)], "boolean masks"),
    ("masked_select", lambda L, x: L.masked_select(x, L.ones(3, dtype=L.bool)), [(3, 4)],
     r"\(3, 4\), \(3,\)"),
    ("masked_scatter", lambda L, x, s: L.masked_scatter(x, x > -9, s), [(3, 4), (5,)],
     "source has 5 elements"),
    ("masked_scatter", lambda L, x, s: L.masked_scatter(x, x, s), [(3, 4), (12,)],
     "boolean masks"),
    ("masked_scatter", lambda L, x: L.masked_scatter(x, x > 0, L.ones(12, dtype=L.float32)),
     [(3, 4)], "same dtypes"),
]


@pytest.mark.parametrize("op,fn,arrays,pattern", RAISES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RAISES)])
def test_errors_like_torch(op, fn, arrays, pattern):
    error = check_op_raises(fn, *arrays, op=op)
    assert re.search(pattern, str(error)), error


# -- the CuPy path ----------------------------------------------------------------------------
CUDA_API = {  # name -> call on (x float (3, 4), i int (2, 3) in [0, 3), m bool (3, 4))
    "getitem_moved": lambda x, i, m: x[1, i],
    "getitem_mask_int": lambda x, i, m: x[m[:, 0], 2] + x[i, 1:][..., None, 0],
    "getitem_0d_index": lambda x, i, m: x[i[0, 1], :, None][gf.tensor(1, device=x.device)],
    "getitem_bool": lambda x, i, m: x[True, 1:, gf.tensor([0, 3], device=x.device)],
    "index_put": lambda x, i, m: gf.index_put(x, (i, 1), x[:2, :3] * 2, accumulate=True),
    "index_put_moved": lambda x, i, m: x.reshape(3, 2, 2).index_put(
        (1, slice(None), i[:, :2] % 2), x[:2, :2].reshape(2, 2, 1) * 2),
    "index_put_number": lambda x, i, m: gf.index_put(x, (i[0],), 1.5, accumulate=True) * x,
    "gather": lambda x, i, m: x.gather(1, i),
    "scatter": lambda x, i, m: x.scatter(0, i[:1], x[:1] * 3),
    "scatter_add": lambda x, i, m: gf.scatter_add(x, 0, i, x[:2, :3] * 3),
    **{f"scatter_reduce_{r}": (lambda r: lambda x, i, m: x.scatter_reduce(
        1, i, x[:2, 1:] + 2, r, include_self=r != "prod"))(r) for r in
       ("sum", "prod", "mean", "amax", "amin")},
    "index_select": lambda x, i, m: x.index_select(1, i[0]),
    "index_add": lambda x, i, m: x.index_add(0, i[1], x[:3] * 2, alpha=2),
    "index_copy": lambda x, i, m: x.index_copy(1, i[1, 1:], x[:, :2]),
    "index_fill": lambda x, i, m: x.index_fill(1, i[0], -1.0),
    "take": lambda x, i, m: x.take(i - 2),
    "take_along_dim": lambda x, i, m: x.take_along_dim(i[:1, :1], 0) * gf.take_along_dim(x, i)[2],
    "masked_fill": lambda x, i, m: x.masked_fill(m, 0.5),
    "masked_select": lambda x, i, m: x.masked_select(m),
    "masked_scatter": lambda x, i, m: x.masked_scatter(m, x.flip([0]) * 2),
    "nonzero": lambda x, i, m: m.nonzero() + gf.where(m)[1].sum(),
    "argwhere": lambda x, i, m: gf.argwhere(x > 0).float().sum() * x,
}
X_NP = np.array([[0.5, -1.5, 2.0, 1.0], [0.25, 3.0, -0.75, 2.5], [-2.0, 1.25, 0.0, 4.0]])
I_NP = np.array([[2, 0, 2], [1, 1, 0]])


def _run(name, device):
    x = gf.tensor(X_NP, device=device, requires_grad=True)
    i = gf.tensor(I_NP, device=device)
    m = gf.tensor(X_NP > 0.4, device=device)
    out = CUDA_API[name](x, i, m)
    grad = None
    if out.requires_grad:
        (out * gf.tensor(data(tuple(out.shape), seed=1), device=device)).sum().backward()
        grad = x.grad.tolist()
    return out.device.type, out.tolist(), grad


@pytest.mark.parametrize("deterministic", [False, True], ids=["atomic", "deterministic"])
@pytest.mark.parametrize("name", CUDA_API)
def test_the_cupy_path_matches_the_cpu(fake_cuda, name, deterministic):
    cpu_type, cpu_out, cpu_grad = _run(name, "cpu")
    gf.use_deterministic_algorithms(deterministic)
    try:
        cuda_type, cuda_out, cuda_grad = _run(name, "cuda")
    finally:
        gf.use_deterministic_algorithms(False)
    assert (cpu_type, cuda_type) == ("cpu", "cuda")
    np.testing.assert_allclose(np.array(cuda_out, float), np.array(cpu_out, float), rtol=1e-12)
    if cpu_grad is not None:
        np.testing.assert_allclose(cuda_grad, cpu_grad, rtol=1e-12)


def test_device_indices_are_checked_without_a_sync(fake_cuda):
    x = gf.arange(12.0, device="cuda").reshape(3, 4)
    good = gf.tensor([[0, 3]], device="cuda")
    fake_cuda.clear_events()
    out = x.gather(1, good) + x.index_select(1, good[0]).sum() + x[1][good].sum()
    x.scatter_add(1, good, x[:1, :2]).index_fill(1, good[0], 0.0)
    x.masked_scatter(x > 5, x.reshape(-1))
    assert fake_cuda.count("sync") == 0
    assert out.shape == (1, 2)
    with pytest.raises(RuntimeError, match=r"gather: a value of the index is out of bounds for "
                       r"dimension 1 with size 4"):
        x.gather(1, gf.tensor([[0, 4]], device="cuda")).sum().item()
    with pytest.raises(RuntimeError, match="masked_scatter.*source has 3 elements"):
        x.masked_scatter(x > 1, x[0, :3]).sum().item()
    assert x.take(gf.tensor([11], device="cuda")).item() == 11.0  # the errors were cleared
