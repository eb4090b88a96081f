"""PyTorch's named products (mm, bmm, mv, dot, vdot, outer/ger, inner, addmm, addbmm, baddbmm,
addmv, kron, tensordot, cross, linalg.cross) and einsum against PyTorch: values, dtypes, first
and second derivatives, on size-1, prime, batched and transposed inputs; torch's shape checks;
finite-difference gradients; and the CuPy path on the fake GPU."""
import re

import numpy as np
import pytest
from helpers import (
    I_CUPY,
    X_CUPY,
    check_cupy_path,
    check_gradcheck,
    check_op,
    check_op_raises,
    data,
    require_torch,
)

import gradflow as gf

torch = require_torch()

INTS_A = np.arange(6).reshape(2, 3) - 2
INTS_B = np.arange(12).reshape(3, 4) % 5


def ein(L, equation, *xs):
    return L.einsum(equation, *xs)


# (id, fn(lib, *tensors), inputs, check_op options)
CASES = [
    ("mm", lambda L, a, b: L.mm(a, b), [(2, 3), (3, 5)], {}),
    ("mm_size1_strided", lambda L, a, b: L.mm(a, b), [(1, 7), (7, 1)], {"noncontiguous": True}),
    ("mm_int", lambda L, a, b: L.mm(a, b), [INTS_A, INTS_B], {}),
    ("mm_method", lambda L, a, b: a.mm(b), [(3, 2), (2, 4)], {"noncontiguous": True}),
    ("bmm", lambda L, a, b: L.bmm(a, b), [(2, 1, 3), (2, 3, 5)], {}),
    ("bmm_method_strided", lambda L, a, b: a.bmm(b), [(3, 2, 4), (3, 4, 2)],
     {"noncontiguous": True}),
    ("mv", lambda L, a, b: L.mv(a, b), [(2, 3), (3,)], {}),
    ("mv_method_strided", lambda L, a, b: a.mv(b), [(5, 7), (7,)], {"noncontiguous": True}),
    ("dot", lambda L, a, b: L.dot(a, b), [(7,), (7,)], {"noncontiguous": True}),
    ("dot_size1", lambda L, a, b: a.dot(b), [(1,), (1,)], {}),
    ("dot_int", lambda L, a, b: L.dot(a, b), [np.arange(4), np.arange(4) - 1], {}),
    ("vdot", lambda L, a, b: L.vdot(a, b), [(5,), (5,)], {}),
    ("vdot_method", lambda L, a, b: a.vdot(b), [(3,), (3,)], {"noncontiguous": True}),
    ("outer", lambda L, a, b: L.outer(a, b), [(3,), (4,)], {}),
    ("outer_size1", lambda L, a, b: a.outer(b), [(1,), (5,)], {"noncontiguous": True}),
    ("ger", lambda L, a, b: L.ger(a, b), [(2,), (3,)], {}),
    ("ger_method", lambda L, a, b: a.ger(b), [(2,), (3,)], {}),
    ("inner", lambda L, a, b: L.inner(a, b), [(2, 3), (4, 3)], {}),
    ("inner_batched", lambda L, a, b: a.inner(b), [(2, 1, 3), (3,)], {"noncontiguous": True}),
    ("inner_0d", lambda L, a, b: L.inner(a, b), [(), (4, 3)], {}),
    ("addmm", lambda L, i, a, b: L.addmm(i, a, b, beta=0.5, alpha=2), [(5,), (2, 3), (3, 5)],
     {}),
    ("addmm_default_strided", lambda L, i, a, b: L.addmm(i, a, b), [(2, 5), (2, 3), (3, 5)],
     {"noncontiguous": True}),
    ("addmm_beta0_ignores_nan", lambda L, i, a, b: L.addmm(i, a, b, beta=0),
     [np.full((1, 5), np.nan), (2, 3), (3, 5)], {}),
    ("addmm_method", lambda L, i, a, b: i.addmm(a, b, alpha=-1), [(1,), (2, 3), (3, 1)], {}),
    ("addbmm", lambda L, i, a, b: L.addbmm(i, a, b, alpha=-1.5), [(2, 1), (3, 2, 4), (3, 4, 5)],
     {}),
    ("addbmm_method_strided", lambda L, i, a, b: i.addbmm(a, b, beta=2), [(2, 5), (3, 2, 4),
                                                                          (3, 4, 5)],
     {"noncontiguous": True}),
    ("baddbmm", lambda L, i, a, b: L.baddbmm(i, a, b, beta=2), [(3, 1, 5), (3, 2, 4), (3, 4, 5)],
     {}),
    ("baddbmm_method", lambda L, i, a, b: i.baddbmm(a, b, alpha=0.5), [(), (1, 2, 3), (1, 3, 2)],
     {}),
    ("addmv", lambda L, i, a, b: L.addmv(i, a, b, beta=2, alpha=3), [(), (2, 3), (3,)], {}),
    ("addmv_method_strided", lambda L, i, a, b: i.addmv(a, b), [(7,), (7, 3), (3,)],
     {"noncontiguous": True}),
    ("kron", lambda L, a, b: L.kron(a, b), [(2, 3), (4, 1, 2)], {}),
    ("kron_0d", lambda L, a, b: L.kron(a, b), [(), (3,)], {}),
    ("kron_method_strided", lambda L, a, b: a.kron(b), [(2, 3), (3, 2)], {"noncontiguous": True}),
    ("kron_int", lambda L, a, b: L.kron(a, b), [INTS_A, INTS_A], {}),
    ("tensordot_lists", lambda L, a, b: L.tensordot(a, b, dims=([0, 2], [2, 1])),
     [(2, 3, 4), (5, 4, 2)], {}),
    ("tensordot_int_strided", lambda L, a, b: L.tensordot(a, b, dims=1), [(2, 3), (3, 2)],
     {"noncontiguous": True}),
    ("tensordot_0", lambda L, a, b: L.tensordot(a, b, dims=0), [(2,), (3,)], {}),
    ("tensordot_default", lambda L, a, b: L.tensordot(a, b), [(2, 3, 4), (3, 4, 1)], {}),
    ("tensordot_negative_dims", lambda L, a, b: L.tensordot(a, b, dims=([-1], [-2])),
     [(2, 3), (3, 2)], {}),
    ("cross", lambda L, a, b: L.cross(a, b, dim=0), [(3, 2), (3, 2)], {}),
    ("cross_broadcast", lambda L, a, b: L.cross(a, b, dim=-1), [(4, 1, 3), (1, 2, 3)], {}),
    ("cross_method_strided", lambda L, a, b: a.cross(b, dim=1), [(5, 3), (5, 3)],
     {"noncontiguous": True}),
    ("linalg_cross", lambda L, a, b: L.linalg.cross(a, b), [(4, 3), (4, 3)], {}),
    ("linalg_cross_dim", lambda L, a, b: L.linalg.cross(a, b, dim=0), [(3, 1), (3, 5)], {}),
    # einsum
    ("einsum_matmul", lambda L, a, b: ein(L, "ij,jk->ik", a, b), [(2, 3), (3, 4)], {}),
    ("einsum_implicit_strided", lambda L, a, b: ein(L, "ij,jk", a, b), [(2, 3), (3, 4)],
     {"noncontiguous": True}),
    ("einsum_list_form", lambda L, a, b: L.einsum("ij,jk", [a, b]), [(2, 3), (3, 4)], {}),
    ("einsum_sublist_form", lambda L, a, b: L.einsum(a, [0, 1], b, [1, 2], [2, 0]),
     [(2, 3), (3, 4)], {}),
    ("einsum_trace", lambda L, a: ein(L, "ii", a), [(3, 3)], {}),
    ("einsum_diagonal", lambda L, a: ein(L, "ii->i", a), [(3, 3)], {}),
    ("einsum_diagonal_batched", lambda L, a: ein(L, "iij->j", a), [(3, 3, 2)], {}),
    ("einsum_repeat_apart", lambda L, a: ein(L, "iji->ij", a), [(3, 2, 3)], {}),
    ("einsum_sum_all", lambda L, a: ein(L, "ij->", a), [(2, 3)], {}),
    ("einsum_sum_one_operand", lambda L, a, b: ein(L, "ijk,k->i", a, b), [(2, 3, 4), (4,)], {}),
    ("einsum_outer", lambda L, a, b: ein(L, "i,j->ij", a, b), [(3,), (4,)], {}),
    ("einsum_ellipsis_broadcast", lambda L, a, b: ein(L, "...ij,...jk", a, b),
     [(2, 1, 3, 4), (5, 4, 2)], {}),
    ("einsum_ellipsis_middle", lambda L, a: ein(L, "i...->...", a), [(2, 3, 4)], {}),
    ("einsum_ellipsis_out", lambda L, a, b: ein(L, "b...i,b...i->...b", a, b),
     [(2, 3, 4), (2, 1, 4)], {}),
    ("einsum_size1_broadcast", lambda L, a, b: ein(L, "ij,jk->ik", a, b), [(2, 1), (3, 4)], {}),
    ("einsum_size1_batch", lambda L, a, b: ein(L, "bij,bjk->bik", a, b),
     [(1, 2, 3), (4, 3, 2)], {}),
    ("einsum_chain", lambda L, a, b, c: ein(L, "ab,bc,cd->ad", a, b, c),
     [(2, 3), (3, 4), (4, 5)], {}),
    ("einsum_0d", lambda L, a: ein(L, "...", a), [()], {}),
    ("einsum_0d_times", lambda L, a, b: ein(L, ",i->i", a, b), [(), (3,)], {}),
    ("einsum_transpose", lambda L, a: ein(L, "ba", a), [(2, 3)], {"noncontiguous": True}),
    ("einsum_upper_case", lambda L, a, b: ein(L, "aB,Ba", a, b), [(2, 3), (3, 2)], {}),
    ("einsum_spaces", lambda L, a, b: ein(L, "i j , j -> i", a, b), [(2, 3), (3,)], {}),
    ("einsum_hadamard", lambda L, a, b: ein(L, "ij,ij->ij", a, b), [(2, 3), (2, 3)], {}),
    ("einsum_int", lambda L, a, b: ein(L, "ij,jk->ki", a, b), [INTS_A, INTS_B], {}),
    ("einsum_int_own_sum", lambda L, a, b: ein(L, "ij,jk->i", a, b), [INTS_A, INTS_B], {}),
    ("einsum_ellipsis_summed", lambda L, a: ein(L, "...i->i", a), [(2, 3, 4)], {}),
    ("einsum_batched_trace", lambda L, a: ein(L, "...ii->...", a), [(2, 3, 3)], {}),
    ("einsum_size1_diagonal", lambda L, a, b: ein(L, "ii,i->i", a, b), [(1, 1), (3,)], {}),
    ("einsum_diagonal_broadcast", lambda L, a, b: ein(L, "bii,bj->bij", a, b),
     [(2, 3, 3), (1, 4)], {}),
    ("einsum_both_broadcast", lambda L, a, b: ein(L, "ab,ab->ba", a, b), [(1, 3), (2, 1)], {}),
    ("einsum_disjoint_sums", lambda L, a, b: ein(L, "ij,kl->", a, b), [(2, 3), (4, 5)], {}),
    ("einsum_reversed_labels", lambda L, a, b: ein(L, "abc,cba->", a, b),
     [(2, 3, 4), (4, 3, 2)], {"noncontiguous": True}),
    ("einsum_float32", lambda L, a, b: ein(L, "bi,bi->b", a, b),
     [data(3, 5, dtype=np.float32), data(3, 5, seed=1, dtype=np.float32)], {"atol": 1e-5}),
]


@pytest.mark.parametrize("name,fn,arrays,options", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, arrays, options, device):
    check_op(fn, *arrays, device=device, **options)


def test_einsum_keeps_int32_where_it_sums_within_an_operand():
    """(torch itself fails on this call: its int32 sum inside einsum becomes int64.)"""
    a, b = INTS_A.astype(np.int32), INTS_B.astype(np.int32)
    got = gf.einsum("ij,jk->i", gf.tensor(a), gf.tensor(b))
    assert got.dtype == gf.int32
    np.testing.assert_array_equal(got.numpy(), np.einsum("ij,jk->i", a, b))


def test_cross_without_dim_takes_the_first_dim_of_size_3():
    a, b = data(3, 3), data(3, 3, seed=1)
    with pytest.warns(UserWarning, match="dim"):
        got = gf.cross(gf.tensor(a), gf.tensor(b))
    np.testing.assert_allclose(got.numpy(), np.cross(a, b, axis=0))


GRADCHECK = [
    ("einsum_diagonal_sum", lambda L, a, b: L.einsum("iij,jk->ik", a, b),
     [data(3, 3, 2), data(2, 4)]),
    ("einsum_ellipsis", lambda L, a, b: L.einsum("...ij,...j->...i", a, b),
     [data(2, 3, 4), data(1, 4)]),
    ("einsum_three", lambda L, a, b, c: L.einsum("ab,bc,ca->", a, b, c),
     [data(2, 3), data(3, 4), data(4, 2)]),
    ("addbmm", lambda L, i, a, b: L.addbmm(i, a, b, beta=0.5, alpha=2),
     [data(2, 1), data(3, 2, 4), data(3, 4, 5)]),
    ("tensordot", lambda L, a, b: L.tensordot(a, b, dims=([1, 0], [2, 0])),
     [data(3, 2, 4), data(3, 5, 2)]),
    ("kron", lambda L, a, b: L.kron(a, b), [data(2, 3), data(3, 1)]),
    ("cross", lambda L, a, b: L.linalg.cross(a, b), [data(2, 3), data(2, 3, seed=1)]),
    ("inner", lambda L, a, b: L.inner(a, b), [data(2, 3), data(4, 3)]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, arrays):
    check_gradcheck(fn, *arrays)


F32, F64 = data(3, 3, dtype=np.float32), data(3, 3)
BAD = [
    ("mm", lambda L, a, b: L.mm(a, b), [(3,), (3, 2)], "self must be a matrix"),
    ("mm", lambda L, a, b: L.mm(a, b), [(2, 3), (3,)], "mat2 must be a matrix"),
    ("mm", lambda L, a, b: L.mm(a, b), [(2, 3), (4, 2)], r"\(2x3 and 4x2\)"),
    ("mm", lambda L, a, b: L.mm(a, b), [F32, F64], "same dtype"),
    ("bmm", lambda L, a, b: L.bmm(a, b), [(2, 3), (2, 3, 3)], "batch1 must be a 3D tensor"),
    ("bmm", lambda L, a, b: L.bmm(a, b), [(2, 3, 3), (3, 3)], "batch2 must be a 3D tensor"),
    ("bmm", lambda L, a, b: L.bmm(a, b), [(2, 3, 4), (3, 4, 3)], r"\[2, 4\] but got: \[3, 4\]"),
    ("bmm", lambda L, a, b: L.bmm(a, b), [(2, 3, 4), (2, 5, 3)], r"\[2, 4\] but got: \[2, 5\]"),
    ("mv", lambda L, a, b: L.mv(a, b), [(3,), (3,)], "got 1, 1, 1"),
    ("mv", lambda L, a, b: L.mv(a, b), [(2, 3), (3, 1)], "got 1, 2, 2"),
    ("mv", lambda L, a, b: L.mv(a, b), [(2, 3), (4,)], r"mat \(2x3\), vec \(4\)"),
    ("dot", lambda L, a, b: L.dot(a, b), [(2, 3), (3,)], "1D tensors expected, but got 2D"),
    ("dot", lambda L, a, b: L.dot(a, b), [(3,), (4,)], "got 3 and 4 elements"),
    ("dot", lambda L, a, b: L.dot(a, b), [F32[0], F64[0]], "same dtype"),
    ("vdot", lambda L, a, b: L.vdot(a, b), [(3,), (4,)], "got 3 and 4 elements"),
    ("vdot", lambda L, a, b: L.vdot(a, b), [(3, 1), (3,)], "1D tensors expected"),
    ("outer", lambda L, a, b: L.outer(a, b), [(3, 1), (3,)], "argument self, but got 2-D"),
    ("outer", lambda L, a, b: L.outer(a, b), [(3,), ()], "argument vec2, but got 0-D"),
    ("inner", lambda L, a, b: L.inner(a, b), [(2, 3), (4,)], r"\[2, 3\] and \[4\]"),
    ("inner", lambda L, a, b: L.inner(a, b), [F32, F64], "float32 and float64"),
    ("addmm", lambda L, i, a, b: L.addmm(i, a, b), [(3,), (2, 3), (3, 4)], r"\(3,\).*\(2, 4\)"),
    ("addmm", lambda L, i, a, b: L.addmm(i, a, b), [(4,), (3,), (3, 4)],
     "mat1 must be a matrix, got 1-D"),
    ("addmm", lambda L, i, a, b: L.addmm(i, a, b), [(4,), (2, 3), (2, 4)], r"\(2x3 and 2x4\)"),
    ("addbmm", lambda L, i, a, b: L.addbmm(i, a, b), [(3, 3), (2, 2, 3), (2, 3, 4)],
     r"\(3, 3\).*\(2, 4\)"),
    ("addbmm", lambda L, i, a, b: L.addbmm(i, a, b), [(2, 4), (2, 3), (2, 3, 4)],
     "batch1 must be a 3D tensor"),
    ("baddbmm", lambda L, i, a, b: L.baddbmm(i, a, b), [(5, 2, 4), (2, 2, 3), (2, 3, 4)],
     r"\(5, 2, 4\).*\(2, 2, 4\)"),
    ("baddbmm", lambda L, i, a, b: L.baddbmm(i, a, b), [(2, 4), (2, 2, 3), (3, 3, 4)],
     r"\[2, 3\] but got: \[3, 3\]"),
    ("addmv", lambda L, i, a, b: L.addmv(i, a, b), [(3,), (2, 3), (3,)], r"\(3,\).*\(2,\)"),
    ("addmv", lambda L, i, a, b: L.addmv(i, a, b), [(2,), (2, 3), (4,)], r"vec \(4\)"),
    ("tensordot", lambda L, a, b: L.tensordot(a, b, dims=1), [(2, 3), (4, 5)],
     "size 3 in dim 1 and second has size 4 in dim 0"),
    ("tensordot", lambda L, a, b: L.tensordot(a, b, dims=([1], [0, 1])), [(2, 3), (3, 5)],
     "same length"),
    ("tensordot", lambda L, a, b: L.tensordot(a, b, dims=-1), [(2, 3), (3, 5)], "dims=-1"),
    ("cross", lambda L, a, b: L.cross(a, b, dim=1), [(2, 4), (2, 4)],
     "dimension 1 must have length 3. Got 4 and 4"),
    ("cross", lambda L, a, b: L.cross(a, b), [(2, 4), (2, 4)], "no dimension of size 3"),
    ("cross", lambda L, a, b: L.cross(a, b, dim=0), [(3,), (2, 3)], "same number of dimensions"),
    ("cross", lambda L, a, b: L.linalg.cross(a, b), [(2, 3), (4, 3)], "do not broadcast"),
    ("cross", lambda L, a, b: L.cross(a, b, dim=1), [F32, F64], "float32 and float64"),
    ("cross", lambda L, a, b: L.linalg.cross(a, b, dim=2), [(2, 3), (2, 3)], "out of range"),
    ("einsum", lambda L, a, b: L.einsum("i,i", a, b), [F32[0], F64[0]], "float32 and float64"),
    ("einsum", lambda L, a, b: L.einsum("ij,jk->ik", a, b), [(2, 3), (4, 5)],
     "subscript j has size 4 for operand 1 which does not broadcast with previously seen "
     "size 3"),
    ("einsum", lambda L, a, b: L.einsum("...i,...i", a, b), [(2, 3), (4, 3)], "ellipsis"),
    ("einsum", lambda L, a: L.einsum("i...i", a), [(2, 3)], "repeated for operand 0"),
    ("einsum", lambda L, a: L.einsum("ii->i", a), [(2, 3)], "3 != 2"),
    ("einsum", lambda L, a, b: L.einsum("i..,i", a, b), [(2, 3), (2,)],
     "not part of any ellipsis"),
    ("einsum", lambda L, a: L.einsum("ij-i", a), [(2, 3)], "index 2"),
    ("einsum", lambda L, a: L.einsum("ij->ii", a), [(2, 2)], "more than once in the output"),
    ("einsum", lambda L, a: L.einsum("ij->k", a), [(2, 2)], "output subscript k does not appear"),
    ("einsum", lambda L, a: L.einsum("ij", a), [(2, 2, 2)], "no ellipsis was given"),
    ("einsum", lambda L, a: L.einsum("ij,jk", a), [(2, 2)], "fewer operands"),
    ("einsum", lambda L, a, b: L.einsum("i", a, b), [(2,), (2,)], "more operands"),
    ("einsum", lambda L, a: L.einsum("ijk...", a), [(2, 2)], r"\(3\) is more than"),
]


@pytest.mark.parametrize("op,fn,arrays,match", BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_calls(op, fn, arrays, match):
    error = check_op_raises(fn, *arrays, op=op)
    assert re.search(match, str(error)), f"{error!s} does not match {match!r}"


def test_non_tensor_operands_are_refused_by_name():
    with pytest.raises(TypeError, match="mm: argument 'mat2' must be a Tensor"):
        gf.mm(gf.ones(2, 2), [[1.0]])
    with pytest.raises(TypeError, match="einsum\\(\\): operand 1 must be a Tensor"):
        gf.einsum("i,i", gf.ones(2), 3.0)


NEW_API = {  # name -> call on (x float (2, 3), i int (2, 3)) tensors
    "mm": lambda x, i: gf.mm(x, x.t()), "bmm": lambda x, i: gf.bmm(x[None], x.t()[None]),
    "mv": lambda x, i: x.mv(x[0]), "dot": lambda x, i: gf.dot(x[0], x[1]),
    "vdot": lambda x, i: x[1].vdot(x[0]), "outer": lambda x, i: gf.outer(x[0], x[1]),
    "inner": lambda x, i: gf.inner(x, x), "kron": lambda x, i: gf.kron(x, x),
    "addmm": lambda x, i: gf.addmm(x[0, :2], x, x.t(), beta=2, alpha=0.5),
    "addbmm": lambda x, i: gf.addbmm(x[:, :2], x[None], x.t()[None]),
    "baddbmm": lambda x, i: gf.baddbmm(x[0, 0], x[None], x.t()[None], beta=0.5),
    "addmv": lambda x, i: x[:, 0].addmv(x, x[1]),
    "tensordot": lambda x, i: gf.tensordot(x, x, dims=([1], [1])),
    "cross": lambda x, i: gf.linalg.cross(x, x * x + 1),
    "einsum": lambda x, i: gf.einsum("ij,kj->ik", x, x),
    "einsum_diag": lambda x, i: gf.einsum("ii->i", gf.mm(x, x.t())),
    "einsum_int": lambda x, i: gf.einsum("ij,kj", i, i),
}


@pytest.mark.parametrize("name", NEW_API)
def test_products_run_on_the_cupy_path(fake_cuda, name):
    """Each product runs on CuPy arrays (the fake's NumPy-backed stand-in) and equals its CPU
    result; differentiable ones give the CPU's gradient too."""
    check_cupy_path(NEW_API[name], X_CUPY, I_CUPY, rtol=1e-6, atol=1e-6)
