"""gradflow.linalg (inv, solve, det, slogdet, cholesky, qr, eigh, eigvalsh, svd, svdvals, pinv,
vector_norm, matrix_norm, norm), torch.norm and torch's older spellings (inverse, logdet,
torch.svd, torch.qr, torch.cholesky, pinverse) against PyTorch: values, dtypes, first and
second derivatives on batched, 1x1 and transposed inputs, with sign-invariant losses where a
decomposition is defined up to signs; torch's errors and LinAlgError messages;
finite-difference gradients; and the CuPy path on the fake GPU."""
import re

import numpy as np
import pytest
from helpers import check_cupy_path, check_gradcheck, check_op, check_op_raises, data, require_torch

import gradflow as gf

torch = require_torch()
INF = float("inf")
pytestmark = pytest.mark.filterwarnings("ignore:torch.(cholesky|qr) is deprecated:UserWarning")


def spd(*shape, seed=0):
    """A well-conditioned symmetric positive-definite matrix (or batch): X X^T + n I."""
    x = data(*shape, seed=seed)
    return x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])


def well(*shape, seed=0):
    """A well-conditioned square matrix (or batch) with no symmetry: X + n I."""
    return data(*shape, seed=seed) + shape[-1] * np.eye(shape[-1])


def sym(L, x):
    """X X^T + n I from any square X: a differentiable route to SPD inputs for gradcheck."""
    return x @ x.mT + x.shape[-1] * L.eye(x.shape[-1], dtype=x.dtype)


def abs_uv(out):
    """An SVD's (|U|, S, |Vh|): invariant to the sign each singular pair may take."""
    u, s, vh = out
    return u.abs(), s, vh.abs()


# (id, fn(lib, *tensors), inputs, check_op options)
CASES = [
    ("inv", lambda L, a: L.linalg.inv(a), [well(3, 3)], {}),
    ("inv_batched_strided", lambda L, a: L.linalg.inv(a), [well(2, 1, 3, 3)],
     {"noncontiguous": True}),
    ("inv_1x1", lambda L, a: L.linalg.inv(a), [well(1, 1)], {}),
    ("inv_float32", lambda L, a: L.linalg.inv(a), [well(4, 4).astype(np.float32)],
     {"atol": 1e-5, "rtol": 1e-4}),
    ("inverse_method", lambda L, a: a.inverse(), [well(3, 3)], {}),
    ("inverse_function", lambda L, a: L.inverse(a), [well(2, 2)], {}),
    ("det", lambda L, a: L.linalg.det(a), [data(2, 3, 3) + np.eye(3)], {}),
    ("det_1x1_strided", lambda L, a: L.linalg.det(a), [data(5, 1, 1)], {"noncontiguous": True}),
    ("det_function_method", lambda L, a: L.det(a) + a.det(), [well(4, 4)], {}),
    ("det_singular", lambda L, a: L.linalg.det(a), [np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0],
                                                              [0.5, 1.0, 7.0]])], {}),
    ("det_singular_in_batch", lambda L, a: L.linalg.det(a),
     [np.array([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 0.5], [0.0, 2.0]], [[0.0, 1.0], [0.0, 0.0]]])],
     {}),
    ("slogdet", lambda L, a: tuple(L.linalg.slogdet(a)), [data(2, 3, 3)], {}),
    ("slogdet_legacy", lambda L, a: tuple(L.slogdet(a)), [well(3, 3)], {}),
    ("slogdet_method_strided", lambda L, a: tuple(a.slogdet()), [data(3, 3)],
     {"noncontiguous": True}),
    ("logdet", lambda L, a: L.logdet(a), [spd(2, 3, 3)], {}),
    ("logdet_method", lambda L, a: a.logdet(), [spd(3, 3)], {}),
    ("solve_vector", lambda L, a, b: L.linalg.solve(a, b), [well(3, 3), (3,)], {}),
    ("solve_matrix_broadcast", lambda L, a, b: L.linalg.solve(a, b), [well(2, 3, 3), (3, 2)],
     {}),
    ("solve_batched_vectors", lambda L, a, b: L.linalg.solve(a, b), [well(2, 3, 3), (2, 3)], {}),
    ("solve_batch_broadcast_strided", lambda L, a, b: L.linalg.solve(a, b),
     [well(1, 4, 4), (3, 4, 1)], {"noncontiguous": True}),
    ("solve_right", lambda L, a, b: L.linalg.solve(a, b, left=False), [well(3, 3), (2, 3)], {}),
    ("cholesky", lambda L, a: L.linalg.cholesky(a), [spd(3, 3)], {}),
    ("cholesky_upper_batched", lambda L, a: L.linalg.cholesky(a, upper=True), [spd(2, 4, 4)], {}),
    ("cholesky_1x1", lambda L, a: L.linalg.cholesky(a), [spd(1, 1)], {}),
    ("cholesky_legacy", lambda L, a: L.cholesky(a) + a.cholesky(upper=True).mT, [spd(3, 3)], {}),
    ("qr_tall", lambda L, a: tuple(L.linalg.qr(a)), [(5, 3)], {}),
    ("qr_square_batched_strided", lambda L, a: tuple(L.linalg.qr(a)), [(2, 3, 3)],
     {"noncontiguous": True}),
    ("qr_wide", lambda L, a: tuple(L.linalg.qr(a)), [(2, 4)], {}),
    ("qr_complete_wide", lambda L, a: tuple(L.linalg.qr(a, mode="complete")), [(2, 2, 5)], {}),
    ("qr_complete_tall_values", lambda L, a: tuple(L.linalg.qr(a.detach(), mode="complete")),
     [(4, 2)], {}),
    ("qr_r", lambda L, a: L.linalg.qr(a.detach(), mode="r")[1], [(4, 3)], {}),
    ("qr_1x1", lambda L, a: tuple(L.linalg.qr(a)), [(1, 1)], {}),
    ("qr_legacy", lambda L, a: tuple(L.qr(a)) + tuple(a.qr(some=False)), [(2, 3)], {}),
    ("eigh_values", lambda L, a: L.linalg.eigh(a)[0], [spd(3, 3)], {}),
    ("eigh_vectors_abs", lambda L, a: tuple(x.abs() for x in L.linalg.eigh(a)), [spd(3, 3)], {}),
    ("eigh_batched_squared", lambda L, a: (lambda r: (r[0], r[1] * r[1]))(L.linalg.eigh(a)),
     [spd(2, 4, 4)], {}),
    ("eigh_upper_strided", lambda L, a: L.linalg.eigh(a, UPLO="U")[1].abs(), [spd(3, 3)],
     {"noncontiguous": True}),
    ("eigh_1x1", lambda L, a: tuple(x.abs() for x in L.linalg.eigh(a)), [spd(1, 1)], {}),
    ("eigvalsh", lambda L, a: L.linalg.eigvalsh(a), [spd(2, 3, 3)], {}),
    ("svd_S", lambda L, a: L.linalg.svd(a)[1], [(4, 3)], {}),
    ("svd_reduced_tall", lambda L, a: abs_uv(L.linalg.svd(a, full_matrices=False)), [(4, 3)],
     {}),
    ("svd_reduced_wide_batched", lambda L, a: abs_uv(L.linalg.svd(a, full_matrices=False)),
     [(2, 3, 5)], {}),
    ("svd_reduced_square_strided", lambda L, a: abs_uv(L.linalg.svd(a, full_matrices=False)),
     [(3, 3)], {"noncontiguous": True}),
    ("svd_full", lambda L, a: (lambda r: (r[0][..., :3].abs(), r[1], r[2].abs()))(
        L.linalg.svd(a)), [(4, 3)], {}),
    ("svd_1x1", lambda L, a: abs_uv(L.linalg.svd(a)), [(1, 1)], {}),
    ("svdvals", lambda L, a: L.linalg.svdvals(a), [(2, 3, 5)], {}),
    ("svd_legacy", lambda L, a: abs_uv(L.svd(a)), [(4, 3)], {}),
    ("svd_legacy_method_full", lambda L, a: (lambda r: (r[1], r[2].abs()))(a.svd(some=False)),
     [(2, 4)], {}),
    ("pinv_tall", lambda L, a: L.linalg.pinv(a), [(4, 3)], {}),
    ("pinv_wide_batched", lambda L, a: L.linalg.pinv(a), [(2, 3, 5)], {}),
    ("pinv_hermitian", lambda L, a: L.linalg.pinv(a, hermitian=True), [spd(3, 3)], {}),
    ("pinv_rank_deficient", lambda L, a: L.linalg.pinv(a.detach() * L.tensor(
        [1.0, 1.0, 0.0], dtype=a.dtype)), [(3, 3)], {}),
    ("pinv_atol", lambda L, a: L.linalg.pinv(a.detach(), atol=1.0), [(3, 3)], {}),
    ("pinverse", lambda L, a: L.pinverse(a) + a.pinverse(rcond=1e-10), [(3, 2)],
     {"noncontiguous": True}),
    # norms
    ("vector_norm", lambda L, a: L.linalg.vector_norm(a), [(3, 4)], {}),
    ("vector_norm_inf_dim", lambda L, a: L.linalg.vector_norm(a, INF, dim=1), [(3, 4)], {}),
    ("vector_norm_inf_ties", lambda L, a: L.linalg.vector_norm(a, INF, dim=1),
     [np.array([[1.0, -2.0, 2.0], [0.5, 0.5, -0.5]])], {}),
    ("vector_norm_ninf_keepdim", lambda L, a: L.linalg.vector_norm(a, -INF, dim=(0,),
                                                                   keepdim=True), [(3, 4)], {}),
    ("vector_norm_0", lambda L, a: L.linalg.vector_norm(a, 0, dim=1), [(3, 4)], {}),
    ("vector_norm_1_strided", lambda L, a: L.linalg.vector_norm(a, 1, dim=-1), [(3, 4)],
     {"noncontiguous": True}),
    ("vector_norm_3", lambda L, a: L.linalg.vector_norm(a, 3, dim=(0, 2)), [(2, 3, 4)], {}),
    ("vector_norm_1_5", lambda L, a: L.linalg.vector_norm(a, 1.5, dim=0), [(3, 4)], {}),
    ("vector_norm_0_5", lambda L, a: L.linalg.vector_norm(a, 0.5), [(3, 4)], {}),
    ("vector_norm_negative", lambda L, a: L.linalg.vector_norm(a, -1, dim=1), [(3, 4)], {}),
    ("vector_norm_zero_vector", lambda L, a: L.linalg.vector_norm(a * 0, 2, dim=1), [(3, 4)],
     {"second_order": False}),
    ("vector_norm_0d", lambda L, a: L.linalg.vector_norm(a, 3), [()], {}),
    ("vector_norm_dtype", lambda L, a: L.linalg.vector_norm(a, dtype=L.float64),
     [data(3, dtype=np.float32)], {}),
    ("vector_norm_axis_alias", lambda L, a: L.linalg.vector_norm(a, 2, axis=1, keepdims=True),
     [(3, 4)], {}),
    *[(f"matrix_norm_{o}", lambda L, a, o=o: L.linalg.matrix_norm(a, o), [(2, 3, 4)], {})
      for o in ("fro", "nuc", INF, -INF, 1, -1, 2, -2)],
    ("matrix_norm_dims_keepdim", lambda L, a: L.linalg.matrix_norm(a, "nuc", dim=(2, 0),
                                                                   keepdim=True), [(3, 2, 4)], {}),
    ("matrix_norm_1_dims_keepdim", lambda L, a: L.linalg.matrix_norm(a, 1, dim=(2, 0),
                                                                     keepdim=True),
     [(3, 2, 4)], {}),
    ("matrix_norm_inf_strided", lambda L, a: L.linalg.matrix_norm(a, INF), [(3, 5)],
     {"noncontiguous": True}),
    ("norm_default", lambda L, a: L.linalg.norm(a), [(2, 3, 4)], {}),
    ("norm_matrix_ord", lambda L, a: L.linalg.norm(a, 2), [(3, 4)], {}),
    ("norm_vector_ord", lambda L, a: L.linalg.norm(a, 3), [(5,)], {}),
    ("norm_dim", lambda L, a: L.linalg.norm(a, 3, dim=1), [(3, 4)], {}),
    ("norm_two_dims", lambda L, a: L.linalg.norm(a, -1, dim=(0, 2), keepdim=True), [(2, 3, 4)],
     {}),
    ("norm_str_ord", lambda L, a: L.linalg.norm(a, "nuc"), [(3, 4)], {}),
    ("torch_norm", lambda L, a: L.norm(a), [(2, 3, 4)], {}),
    ("torch_norm_p_dims", lambda L, a: L.norm(a, p=3, dim=(0, 2)), [(2, 3, 4)], {}),
    ("torch_norm_nuc", lambda L, a: L.norm(a, p="nuc"), [(3, 4)], {}),
    ("torch_norm_fro_dim", lambda L, a: L.norm(a, "fro", dim=1, keepdim=True), [(3, 4)], {}),
    ("torch_norm_inf", lambda L, a: L.norm(a, p=INF), [(3, 4)], {}),
    ("tensor_norm_method", lambda L, a: a.norm(1, dim=0, keepdim=True), [(3, 4)],
     {"noncontiguous": True}),
    ("tensor_norm_dtype", lambda L, a: a.norm(dtype=L.float64), [data(4, dtype=np.float32)], {}),
]


@pytest.mark.parametrize("name,fn,arrays,options", CASES, ids=[c[0] for c in CASES])
def test_against_torch(name, fn, arrays, options, device):
    check_op(fn, *arrays, device=device, **options)


def test_legacy_svd_without_uv_gives_zero_matrices():
    a = data(2, 4, 3)
    got = gf.svd(gf.tensor(a), compute_uv=False)
    want = torch.svd(torch.tensor(a), compute_uv=False)
    for g, t in zip(got, want):
        np.testing.assert_allclose(g.numpy(), t.numpy(), atol=1e-12)
    assert type(got).__name__ == "svd" and got._fields == ("U", "S", "V")


def test_result_types_are_torchs_named_tuples():
    a = gf.tensor(spd(3, 3))
    for got, name, fields in ((gf.linalg.qr(a), "linalg_qr", ("Q", "R")),
                              (gf.linalg.eigh(a), "linalg_eigh", ("eigenvalues",
                                                                  "eigenvectors")),
                              (gf.linalg.svd(a), "linalg_svd", ("U", "S", "Vh")),
                              (gf.linalg.slogdet(a), "linalg_slogdet", ("sign", "logabsdet")),
                              (gf.slogdet(a), "slogdet", ("sign", "logabsdet")),
                              (gf.qr(a), "qr", ("Q", "R"))):
        assert (type(got).__name__, got._fields) == (name, fields)


def test_logdet_of_negative_and_zero_determinants():
    for a in (-np.eye(3), np.zeros((3, 3)), np.diag([-1.0, -1.0, 1.0])):
        np.testing.assert_array_equal(gf.logdet(gf.tensor(a)).numpy(),
                                      torch.logdet(torch.tensor(a)).numpy())


SYMMETRIC = lambda L, x: x + x.mT  # noqa: E731  (eigh reads one triangle: perturb both)
GRADCHECK = [
    ("inv", lambda L, a: L.linalg.inv(a), [well(2, 3, 3)]),
    ("det", lambda L, a: L.linalg.det(a), [well(3, 3)]),
    ("slogdet", lambda L, a: L.linalg.slogdet(a).logabsdet, [data(2, 3, 3)]),
    ("solve", lambda L, a, b: L.linalg.solve(a, b), [well(2, 3, 3), data(3, 2)]),
    ("solve_right", lambda L, a, b: L.linalg.solve(a, b, left=False), [well(3, 3), data(2, 3)]),
    ("cholesky", lambda L, x: L.linalg.cholesky(sym(L, x)), [data(2, 3, 3)]),
    ("qr_tall", lambda L, a: tuple(L.linalg.qr(a)), [data(4, 3)]),
    ("qr_wide", lambda L, a: tuple(L.linalg.qr(a)), [data(2, 4)]),
    ("eigh", lambda L, x: (lambda r: (r[0], r[1] * r[1]))(L.linalg.eigh(SYMMETRIC(L, x))),
     [data(3, 3)]),
    ("svd", lambda L, a: (lambda r: (r[0] * r[0], r[1], r[2] * r[2]))(
        L.linalg.svd(a, full_matrices=False)), [data(4, 3)]),
    ("svd_wide", lambda L, a: (lambda r: (r[0] * r[0], r[1], r[2] * r[2]))(
        L.linalg.svd(a, full_matrices=False)), [data(2, 3)]),
    ("svdvals", lambda L, a: L.linalg.svdvals(a), [data(2, 3, 4)]),
    ("pinv", lambda L, a: L.linalg.pinv(a), [data(4, 3)]),
    ("vector_norm_3", lambda L, a: L.linalg.vector_norm(a, 3, dim=1), [data(3, 4)]),
    ("matrix_norm_nuc", lambda L, a: L.linalg.matrix_norm(a, "nuc"), [data(3, 4)]),
    ("torch_norm", lambda L, a: L.norm(a, p=1.5, dim=0), [data(3, 4)]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, fn, arrays):
    check_gradcheck(fn, *arrays)


def test_det_gradient_at_a_singular_matrix_is_its_cofactor_matrix():
    """d det / dA is the cofactor matrix, nonzero at a rank n-1 matrix (torch gives it with
    create_graph, and zeros without)."""
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, 1.0, 7.0]])
    check_gradcheck(lambda L, x: L.linalg.det(x), a, second_order=False)
    x = gf.tensor(a, requires_grad=True)
    gf.linalg.det(x).backward()
    cofactors = np.array([[4 * 7 - 6 * 1, -(2 * 7 - 6 * 0.5), 0.0],
                          [-(2 * 7 - 3 * 1), 1 * 7 - 3 * 0.5, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(x.grad.numpy(), cofactors, atol=1e-9)


L32, I64 = well(3, 3).astype(np.float32), np.eye(3, dtype=np.int64)
BAD = [
    ("linalg.inv", lambda L, a: L.linalg.inv(a), [(2, 3)], "2 by 3 matrices"),
    ("linalg.inv", lambda L, a: L.linalg.inv(a), [(3,)], "at least 2 dimensions"),
    ("linalg.inv", lambda L, a: L.linalg.inv(a), [I64], "Got Long"),
    ("linalg.inv", lambda L, a: L.linalg.inv(a), [np.eye(2, dtype=np.float16)], "Half"),
    ("linalg.inv", lambda L, a: L.inverse(a), [(3,)], "at least 2 dimensions"),
    ("linalg.solve", lambda L, a, b: L.linalg.solve(a, b), [well(3, 3), (2,)],
     r"\(3x3 and 2x1\)"),
    ("linalg.solve", lambda L, a, b: L.linalg.solve(a, b), [L32, well(3, 3)[0]],
     "A of type Float and B of type Double"),
    ("linalg.solve", lambda L, a, b: L.linalg.solve(a, b), [I64, I64[0]], "Got Long"),
    ("linalg.solve", lambda L, a, b: L.linalg.solve(a, b), [well(2, 3, 3), (4, 3, 1)],
     "do not broadcast"),
    ("linalg.det", lambda L, a: L.linalg.det(a), [(2, 3)], "2 by 3 matrices"),
    ("linalg.det", lambda L, a: L.det(a), [I64], "Got Long"),
    ("linalg.slogdet", lambda L, a: L.linalg.slogdet(a), [(2, 3)], "2 by 3 matrices"),
    ("linalg.slogdet", lambda L, a: L.linalg.slogdet(a), [I64], "Got Long"),
    ("logdet", lambda L, a: L.logdet(a), [(3,)], "at least 2 dimensions"),
    ("linalg.cholesky", lambda L, a: L.linalg.cholesky(a), [(3,)], "at least 2 dimensions"),
    ("linalg.cholesky", lambda L, a: L.linalg.cholesky(a), [(3, 2)], "3 by 2 matrices"),
    ("linalg.qr", lambda L, a: L.linalg.qr(a), [(3,)], "at least 2 dimensions"),
    ("linalg.qr", lambda L, a: L.linalg.qr(a, mode="x"), [(3, 3)], "unrecognized mode 'x'"),
    ("linalg.qr", lambda L, a: L.linalg.qr(a), [I64], "Got Long"),
    ("linalg.eigh", lambda L, a: L.linalg.eigh(a), [(2, 3)], "2 by 3 matrices"),
    ("linalg.eigh", lambda L, a: L.linalg.eigh(a, UPLO="X"), [(3, 3)], "got X"),
    ("linalg.eigh", lambda L, a: L.linalg.eigh(a), [I64.astype(np.int32)], "Int"),
    ("linalg.eigvalsh", lambda L, a: L.linalg.eigvalsh(a), [(2, 3)], "2 by 3 matrices"),
    ("linalg.svd", lambda L, a: L.linalg.svd(a), [(3,)], "at least 2 dimensions"),
    ("linalg.svd", lambda L, a: L.linalg.svd(a), [np.eye(2, dtype=np.float16)], "Half"),
    ("linalg.svdvals", lambda L, a: L.linalg.svdvals(a), [I64], "Got Long"),
    ("svd", lambda L, a: L.svd(a), [(3,)], "2 dimensions"),
    ("linalg.pinv", lambda L, a: L.linalg.pinv(a), [(3,)], "2 dimensions"),
    ("linalg.pinv", lambda L, a: L.linalg.pinv(a), [I64], "Long"),
    ("linalg.vector_norm", lambda L, a: L.linalg.vector_norm(a), [I64], "Got Long"),
    ("linalg.vector_norm", lambda L, a: L.linalg.vector_norm(a, dim=2), [(2, 3)],
     "out of range"),
    ("linalg.vector_norm", lambda L, a: L.linalg.vector_norm(a, ord="fro"), [(2, 3)],
     "'ord' must be Number, not str"),
    ("linalg.vector_norm", lambda L, a: L.linalg.vector_norm(a, INF), [np.zeros((0, 3))],
     "empty"),
    ("linalg.vector_norm", lambda L, a: L.norm(a), [I64], "Got Long"),
    ("linalg.vector_norm", lambda L, a: L.linalg.vector_norm(a, dtype=L.float64), [I64],
     "Got Long"),
    ("linalg.vector_norm", lambda L, a: L.linalg.vector_norm(a, dtype=L.int64), [(3,)],
     "dtype should be floating point or complex, but got Long"),
    ("linalg.vector_norm", lambda L, a: L.linalg.vector_norm(a, dtype=L.float32), [(3,)],
     r"input \(Double\) should be convertible without narrowing to the specified dtype "
     r"\(Float\)"),
    ("linalg.matrix_norm", lambda L, a: L.linalg.matrix_norm(a, dtype=L.float64), [I64],
     "Got Long"),
    ("linalg.matrix_norm", lambda L, a: L.linalg.matrix_norm(a), [(3,)],
     "at least 2 dimensions"),
    ("linalg.matrix_norm", lambda L, a: L.linalg.matrix_norm(a, ord=3), [(3, 3)],
     "Order 3 not supported"),
    ("linalg.matrix_norm", lambda L, a: L.linalg.matrix_norm(a, ord="abc"), [(3, 3)],
     "Order abc not supported"),
    ("linalg.matrix_norm", lambda L, a: L.linalg.matrix_norm(a, dim=(0, 0)), [(3, 3)],
     r"dims must be different. Got \(0, 0\)"),
    ("linalg.matrix_norm", lambda L, a: L.linalg.norm(a, "fro", dim=0), [(3, 3)],
     "dim must be a 2-tuple. Got"),
    ("linalg.matrix_norm", lambda L, a: L.norm(a, p="nuc"), [(3,)], "at least 2 dimensions"),
    ("linalg.norm", lambda L, a: L.linalg.norm(a, ord=2), [(3, 3, 3)], "Got 3D"),
    ("linalg.norm", lambda L, a: L.linalg.norm(a, dim=(0, 1, 2)), [(3, 3, 3)],
     r"Got \[0, 1, 2\]"),
]


@pytest.mark.parametrize("op,fn,arrays,match", BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_calls(op, fn, arrays, match):
    error = check_op_raises(fn, *arrays, op=op)
    assert re.search(match, str(error)), f"{error!s} does not match {match!r}"


SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])
NOT_PD = np.array([[1.0, 2.0], [2.0, 1.0]])
FAILURES = [
    ("inv", lambda L, a: L.linalg.inv(a), SINGULAR),
    ("inv_batched", lambda L, a: L.linalg.inv(a), np.stack([np.eye(2), SINGULAR])),
    ("inv_zero_column", lambda L, a: L.linalg.inv(a), np.array([[0.0, 1.0], [0.0, 2.0]])),
    ("cholesky_order_1", lambda L, a: L.linalg.cholesky(a), -np.eye(3)),
    ("cholesky_order_2", lambda L, a: L.linalg.cholesky(a), NOT_PD),
    ("cholesky_batched", lambda L, a: L.linalg.cholesky(a), np.stack([np.eye(2), NOT_PD])),
    ("solve", lambda L, a: L.linalg.solve(a, L.ones_like(a[..., 0])), SINGULAR),
    ("solve_batched", lambda L, a: L.linalg.solve(a, L.ones_like(a)),
     np.stack([np.eye(2), SINGULAR])),
]


@pytest.mark.parametrize("name,fn,array", FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_raise_torchs_linalg_error(name, fn, array):
    """A singular or indefinite input raises gradflow.linalg.LinAlgError (a RuntimeError,
    as torch.linalg.LinAlgError is) with torch's message."""
    with pytest.raises(torch.linalg.LinAlgError) as want:
        fn(torch, torch.tensor(array))
    with pytest.raises(gf.linalg.LinAlgError) as got:
        fn(gf, gf.tensor(array))
    assert isinstance(got.value, RuntimeError)
    assert str(got.value) == str(want.value).replace("torch.linalg", "linalg")


def test_qr_gradients_torch_refuses_are_refused():
    a = gf.tensor(data(4, 3), requires_grad=True)
    with pytest.raises(RuntimeError, match="not computed when mode='r'"):
        gf.linalg.qr(a, mode="r").R.sum().backward()
    with pytest.raises(RuntimeError, match="mode='complete' and nrows > ncols"):
        gf.linalg.qr(a, mode="complete").Q.sum().backward()


def _potf2_silent(a):
    """LAPACK's unblocked Cholesky as cuSOLVER leaves a failure when nothing asks: it stops at
    the first non-positive pivot, stores it there, and reports nothing."""
    out = np.tril(np.array(a, dtype=a.dtype))
    for mat in out.reshape((-1,) + a.shape[-2:]):
        for j in range(mat.shape[0]):
            d = mat[j, j] - mat[j, :j] @ mat[j, :j]
            mat[j, j] = d
            if not d > 0:
                break
            mat[j, j] = np.sqrt(d)
            mat[j + 1:, j] = (mat[j + 1:, j] - mat[j + 1:, :j] @ mat[j, :j]) / mat[j, j]
    return out


class SilentCupyLinalg:
    """cupy.linalg over the fake's forwarded numpy.linalg, with failures left as cuSOLVER
    leaves them (inv and solve non-finite, cholesky stopped at a non-positive pivot) where
    NumPy would raise."""

    def __init__(self, cp):
        self._real = cp.__getattr__("linalg")
        self._forward = cp._Forward

    def __getattr__(self, name):
        if name == "inv":
            return self._forward("linalg.inv", lambda a: a * np.inf)
        if name == "solve":
            return self._forward("linalg.solve", lambda a, b: b * np.inf)
        if name == "cholesky":
            return self._forward("linalg.cholesky", _potf2_silent)
        return getattr(self._real, name)


@pytest.mark.parametrize("name,fn,array", FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_are_found_on_the_cupy_path(fake_cuda, monkeypatch, name, fn, array):
    monkeypatch.setattr(fake_cuda, "linalg", SilentCupyLinalg(fake_cuda), raising=False)
    with pytest.raises(torch.linalg.LinAlgError) as want:
        fn(torch, torch.tensor(array))
    with np.errstate(all="ignore"), pytest.raises(gf.linalg.LinAlgError) as got:
        fn(gf, gf.tensor(array, device="cuda"))
    assert str(got.value) == str(want.value).replace("torch.linalg", "linalg")


NEW_API = {  # name -> call on a well-conditioned float32 (3, 3) tensor x
    "inv": lambda x: gf.linalg.inv(x), "det": lambda x: gf.linalg.det(x),
    "det_singular": lambda x: gf.linalg.det(gf.cat([x[:2], x[2:] * 0])),
    "slogdet": lambda x: gf.linalg.slogdet(x).logabsdet, "logdet": lambda x: gf.logdet(x @ x.mT),
    "solve": lambda x: gf.linalg.solve(x, x[0]),
    "cholesky": lambda x: gf.linalg.cholesky(x @ x.mT),
    "qr": lambda x: gf.linalg.qr(x).R, "eigh": lambda x: gf.linalg.eigh(x + x.mT).eigenvalues,
    "svd": lambda x: gf.linalg.svd(x).S, "svdvals": lambda x: gf.linalg.svdvals(x),
    "pinv": lambda x: gf.linalg.pinv(x), "pinv_hermitian": lambda x: gf.linalg.pinv(
        x @ x.mT, hermitian=True),
    "vector_norm": lambda x: gf.linalg.vector_norm(x, 3, dim=1),
    "matrix_norm": lambda x: gf.linalg.matrix_norm(x, "nuc"), "norm": lambda x: x.norm(),
    "matrix_norm_inf": lambda x: gf.linalg.matrix_norm(x, INF),
    "linalg_norm": lambda x: gf.linalg.norm(x, -2), "eigvalsh": lambda x: gf.linalg.eigvalsh(
        x + x.mT), "svd_legacy": lambda x: gf.svd(x).V.abs(), "qr_wide": lambda x: gf.linalg.qr(
        x[:2]).R, "legacy_methods": lambda x: (x.inverse() + x.pinverse() + (x @ x.mT).cholesky()
                                               + x.qr().R + x.det() + x.slogdet().logabsdet),
}


@pytest.mark.parametrize("name", NEW_API)
def test_linalg_runs_on_the_cupy_path(fake_cuda, name):
    """Each op runs on CuPy arrays (the fake's NumPy-backed stand-in) and equals its CPU
    result, gradient included."""
    x_np = (data(3, 3, dtype=np.float32) + 3 * np.eye(3)).astype(np.float32)
    check_cupy_path(NEW_API[name], x_np, rtol=1e-5, atol=1e-5)
