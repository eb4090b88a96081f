"""Linear algebra (torch.linalg): inv, solve, det, slogdet, cholesky, qr, eigh, svd, svdvals,
pinv, and the vector, matrix and torch.norm norms; also torch's older spellings (inverse,
logdet, torch.svd, torch.qr, torch.cholesky, pinverse).

Forwards call the array module's LAPACK/cuSOLVER wrappers (`xp.linalg`, batched over leading
dims on NumPy and CuPy alike); backwards are the standard matrix-calculus formulas, written
with gradflow ops (matmul, solve, elementwise), so they differentiate again. Failures (a
singular matrix, one that is not positive-definite) raise `LinAlgError` with torch's message;
on CuPy, which reports nothing by itself, a finite-result check (one sync, as torch's) finds
them.
"""
from __future__ import annotations

import math
from collections import namedtuple
from typing import Any, Callable

import numpy as np

from .. import dtypes
from ..amp.autocast_mode import autocast_policy
from ..autograd.function import Op
from ..tensor import Tensor
from .elementwise import abs, pow, sign, where
from .index import cat, getitem
from .layout import diag_embed, flip, tril
from .matmul import matmul
from .reduce import amax, amin, sum, with_dtype
from .scan import cumprod
from .shape import expand, permute, reshape, transpose, unsqueeze
from .util import normalize_dim, normalize_dims, numpy_names


def _result_type(name: str, fields: list) -> Any:
    """A named tuple type spelled as torch.return_types.<name>."""
    return namedtuple(name, fields)


linalg_slogdet = _result_type("linalg_slogdet", ["sign", "logabsdet"])
slogdet_result = _result_type("slogdet", ["sign", "logabsdet"])
linalg_qr = _result_type("linalg_qr", ["Q", "R"])
qr_result = _result_type("qr", ["Q", "R"])
linalg_eigh = _result_type("linalg_eigh", ["eigenvalues", "eigenvectors"])
linalg_svd = _result_type("linalg_svd", ["U", "S", "Vh"])
svd_result = _result_type("svd", ["U", "S", "V"])


class LinAlgError(RuntimeError):
    """A linear-algebra routine failed on its input (torch.linalg.LinAlgError)."""


# -- checks and small helpers ------------------------------------------------------------------
def _check_input(op: str, A: Any, square: bool = True, missing_kernel: bool = False) -> None:
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: argument 'A' must be a Tensor, not {type(A).__name__}")
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    _check_float(op, A, missing_kernel)
    if square and A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")


def _check_floating(op: str, x: Tensor) -> None:
    if not dtypes.is_floating(x.dtype):
        raise RuntimeError(f"{op}: Expected a floating point or complex tensor as input. Got "
                           f"{dtypes.torch_name(x.dtype)}")


def _check_float(op: str, x: Tensor, missing_kernel: bool = False) -> None:
    """Single or double precision only, as torch's LAPACK-backed ops; `missing_kernel` ops
    (eigh, svd) refuse half precision as torch does, with NotImplementedError."""
    low = x.dtype == dtypes.float16 or x.dtype == dtypes.bfloat16
    if missing_kernel and low:
        raise NotImplementedError(f"{op}: not implemented for '{dtypes.torch_name(x.dtype)}'")
    _check_floating(op, x)
    if low:
        raise RuntimeError(f"{op}: Low precision dtypes not supported. Got "
                           f"{dtypes.torch_name(x.dtype)}")


def _mT(x: Tensor) -> Tensor:
    return transpose(x, -2, -1)


def _eye(like: Tensor, n: int) -> Tensor:
    return Tensor._wrap(like._xp.eye(n, dtype=like.dtype))


def _batch_prefix(array: Any, index: int) -> str:
    if array.ndim <= 2:
        return ""
    return f"(Batch element {index}): "


def _first_failure(op: str, array: Any, find: Callable, message: Callable) -> None:
    """Raise LinAlgError for the first matrix of `array` (host NumPy) that `find` flags (a
    1-based LAPACK info), with torch's message; nothing if none is flagged."""
    mats = array.reshape((-1,) + array.shape[-2:])
    for b, mat in enumerate(mats):
        info = find(mat)
        if info:
            raise LinAlgError(f"{op}: {_batch_prefix(array, b)}{message(info)}")


def _zero_pivot(mat: np.ndarray) -> int:
    """The 1-based index of the first zero pivot of LU with partial pivoting (LAPACK getrf's
    info), or 0."""
    a = np.array(mat, dtype=np.float64)
    n = a.shape[0]
    for j in range(n):
        p = j + int(np.argmax(np.abs(a[j:, j])))
        if a[p, j] == 0:
            return j + 1
        a[[j, p]] = a[[p, j]]
        a[j + 1:, j:] -= np.outer(a[j + 1:, j] / a[j, j], a[j, j:])
    return 0


def _not_positive_definite(mat: np.ndarray) -> int:
    """The order of the first leading minor that is not positive-definite (LAPACK potrf's
    info), or 0; reads the lower triangle, as potrf does."""
    a = np.tril(np.array(mat, dtype=np.float64))
    n = a.shape[0]
    low = np.zeros_like(a)
    for j in range(n):
        d = a[j, j] - low[j, :j] @ low[j, :j]
        if not d > 0:
            return j + 1
        low[j, j] = math.sqrt(d)
        low[j + 1:, j] = (a[j + 1:, j] - low[j + 1:, :j] @ low[j, :j]) / low[j, j]
    return 0


def _host(array: Any) -> np.ndarray:
    return np.asarray(array) if isinstance(array, (np.ndarray, np.generic)) else array.get()


def _guarded(op: str, A: Tensor, compute: Callable, find: Callable, message: Callable,
             fallback: str, check: Callable | None = None) -> Any:
    """compute() with LAPACK's failures as LinAlgError: NumPy raises them; on CuPy, `check` of
    the result (default: all finite) flags a failure, and the host finds which matrix."""
    xp = A._xp
    try:
        out = compute()
    except np.linalg.LinAlgError:
        out = None
    else:
        if xp is np:
            return out
        flag = check(out) if check is not None else xp.isfinite(out).all()
        if bool(flag):
            return out
    _first_failure(op, _host(A.array), find, message)
    if out is None:
        raise LinAlgError(f"{op}: {fallback}")
    return out  # a non-finite input gives a non-finite result, as in torch


def _singular(info: int) -> str:
    return (f"The diagonal element {info} is zero, the inversion could not be completed "
            "because the input matrix is singular.")


def _not_pd(info: int) -> str:
    return (f"The factorization could not be completed because the input is not "
            f"positive-definite (the leading minor of order {info} is not positive-definite).")


# -- inverse, solve, determinants -------------------------------------------------------------
class Inv(Op):
    op_name, saves_outputs = "linalg.inv", True

    @staticmethod
    def forward(ctx, A):
        return _guarded("linalg.inv", A, lambda: A._xp.linalg.inv(A.array), _zero_pivot,
                        _singular, "the input matrix is singular")

    @staticmethod
    def backward(ctx, g):
        # NOTE: d(A^-1) = -A^-1 dA A^-1, so gA = -A^-T g A^-T.
        inv_t = _mT(ctx.outputs[0])
        return -matmul(matmul(inv_t, g), inv_t)


@autocast_policy("linalg.inv")
def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix (torch.linalg.inv)."""
    _check_input("linalg.inv", A)
    return Inv.apply(A)


@autocast_policy("inverse")
def inverse(input: Tensor) -> Tensor:
    """torch.inverse: linalg.inv."""
    return inv(input)


class Solve(Op):
    """X with A X = B, for A (..., n, n) and B (..., n, k) of one batch shape."""

    op_name, saves_outputs = "linalg.solve", True

    @staticmethod
    def forward(ctx, A, B):
        ctx.save_for_backward(A)
        xp = A._xp
        # NOTE: contiguous copies of broadcast (stride-0) batches for cuBLAS's batched solver
        a, b = xp.ascontiguousarray(A.array), xp.ascontiguousarray(B.array)
        return _guarded("linalg.solve", A, lambda: xp.linalg.solve(a, b),
                        _zero_pivot,
                        lambda info: "The solver failed because the input matrix is singular.",
                        "The solver failed because the input matrix is singular.")

    @staticmethod
    def backward(ctx, g):
        A, = ctx.saved_tensors
        gB = Solve.apply(_mT(A), g)
        gA = -matmul(gB, _mT(ctx.outputs[0])) if ctx.needs_input_grad[0] else None
        return gA, gB if ctx.needs_input_grad[1] else None


@autocast_policy("linalg.solve")
def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with A X = B (or X A = B when left=False) (torch.linalg.solve); B is a batch of
    vectors when it is 1-D or shaped A.shape[:-1], else of matrices; batches broadcast."""
    _check_input("linalg.solve", A)
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve: argument 'B' must be a Tensor, not {type(B).__name__}")
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A "
                           f"of type {dtypes.torch_name(A.dtype)} and B of type "
                           f"{dtypes.torch_name(B.dtype)} instead")
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    if not left:
        if vector:
            return solve(_mT(A), B)
        return _mT(solve(_mT(A), _mT(B)))
    Bm = unsqueeze(B, -1) if vector else B
    n = A.shape[-1]
    if Bm.ndim < 2 or Bm.shape[-2] != n:
        rows, cols = (Bm.shape[-2], Bm.shape[-1]) if Bm.ndim >= 2 else (Bm.shape[0], 1)
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                           f"AX = B ({n}x{n} and {rows}x{cols})")
    try:
        batch = np.broadcast_shapes(tuple(A.shape[:-2]), tuple(Bm.shape[:-2]))
    except ValueError:
        raise RuntimeError(f"linalg.solve: the batch dimensions of A {tuple(A.shape)} and B "
                           f"{tuple(B.shape)} do not broadcast") from None
    X = Solve.apply(expand(A, batch + (n, n)), expand(Bm, batch + tuple(Bm.shape[-2:])))
    return reshape(X, tuple(X.shape[:-1])) if vector else X


class Det(Op):
    op_name, saves_outputs = "linalg.det", True

    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        return A._xp.linalg.det(A.array)

    @staticmethod
    def backward(ctx, g):
        # NOTE: the gradient is g times A's cofactor matrix: det(A) A^-T where A is
        # invertible; at a singular A (one host sync to find which), from the SVD (torch's
        # linalg_det_backward with create_graph; without it, torch returns zeros there).
        A, = ctx.saved_tensors
        d = ctx.outputs[0]
        regular = (_host(d.array) != 0).reshape(-1)
        if regular.all():
            return _cofactors_invertible(A, g, d)
        n = A.shape[-1]
        A2, g2, d2 = reshape(A, (-1, n, n)), reshape(g, (-1,)), reshape(d, (-1,))
        singular, fine = np.nonzero(~regular)[0], np.nonzero(regular)[0]
        parts = [_cofactors_singular(getitem(A2, singular), getitem(g2, singular))]
        if fine.size:
            parts.insert(0, _cofactors_invertible(getitem(A2, fine), getitem(g2, fine),
                                                  getitem(d2, fine)))
        order = np.argsort(np.concatenate([fine, singular]))
        return reshape(getitem(cat(parts, 0), order), tuple(A.shape))


def _cofactors_invertible(A: Tensor, g: Tensor, d: Tensor) -> Tensor:
    """g det(A) A^-T."""
    return reshape(g * d, tuple(g.shape) + (1, 1)) * _mT(inv(A))


def _cofactors_singular(A: Tensor, g: Tensor) -> Tensor:
    """g times the cofactors of A = U diag(S) Vh: det(U) det(Vh) U diag(prod_{j != i} S_j) Vh,
    which needs no inverse."""
    U, S, Vh = SVD.apply(A, full_matrices=False)
    xp = A._xp
    signs = xp.asarray(xp.linalg.det(U.array) * xp.linalg.det(Vh.array))
    scale = unsqueeze(g * Tensor._wrap(signs), -1) * _others_product(S)
    return matmul(U * unsqueeze(scale, -2), Vh)


def _others_product(s: Tensor) -> Tensor:
    """out[..., i] = prod_{j != i} s[..., j], without dividing (zeros are fine): the running
    products from the left and from the right, each excluding i."""
    one = Tensor._wrap(s._xp.ones(tuple(s.shape[:-1]) + (1,), dtype=s.dtype))
    last = (Ellipsis, slice(None, -1))
    left = cumprod(cat([one, getitem(s, last)], -1), -1)
    right = flip(cumprod(cat([one, getitem(flip(s, (-1,)), last)], -1), -1), (-1,))
    return left * right


def det(A: Tensor) -> Tensor:
    """The determinant of each square matrix (torch.linalg.det, torch.det)."""
    _check_input("linalg.det", A)
    return Det.apply(A)


class Slogdet(Op):
    op_name = "linalg.slogdet"

    @staticmethod
    def forward(ctx, A):
        ctx.save_for_backward(A)
        sgn, logabs = A._xp.linalg.slogdet(A.array)
        return sgn, logabs

    @staticmethod
    def backward(ctx, _g_sign, g):
        if g is None:
            return None
        A, = ctx.saved_tensors
        return reshape(g, tuple(g.shape) + (1, 1)) * _mT(inv(A))


def slogdet(A: Tensor) -> tuple:
    """(sign, log|det|) of each square matrix (torch.linalg.slogdet); the sign's gradient is
    zero."""
    _check_input("linalg.slogdet", A)
    return linalg_slogdet(*Slogdet.apply(A))


def legacy_slogdet(input: Tensor) -> tuple:
    """torch.slogdet: linalg.slogdet as torch.return_types.slogdet."""
    return slogdet_result(*slogdet(input))


def logdet(input: Tensor) -> Tensor:
    """log(det) (torch.logdet): NaN where the determinant is negative, -inf where it is 0."""
    _check_input("logdet", input)
    sgn, logabs = slogdet(input)
    return where(sgn < 0, math.nan, logabs)


# -- decompositions ---------------------------------------------------------------------------
class Cholesky(Op):
    op_name, saves_outputs = "linalg.cholesky", True

    @staticmethod
    def forward(ctx, A):
        xp = A._xp

        def positive_diagonal(low):
            d = xp.diagonal(low, axis1=-2, axis2=-1)
            return xp.logical_and(xp.isfinite(low).all(), (d > 0).all())

        return _guarded("linalg.cholesky", A, lambda: xp.linalg.cholesky(A.array),
                        _not_positive_definite, _not_pd, "the input is not positive-definite",
                        check=positive_diagonal)

    @staticmethod
    def backward(ctx, g):
        # NOTE: Murray (2016), "Differentiation of the Cholesky decomposition", as torch: with
        # Phi(X) the lower triangle with half its diagonal, gA = L^-T Phi(L^T gL) L^-1,
        # symmetrised.
        low = ctx.outputs[0]
        phi = tril(matmul(_mT(low), g))
        phi = 0.5 * (phi + _mT(tril(phi, -1)))
        left = Solve.apply(_mT(low), phi)  # L^-T phi
        return _mT(Solve.apply(_mT(low), _mT(left)))  # (L^-T phi) L^-1


@autocast_policy("linalg.cholesky")
def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """The Cholesky factor L (lower, A = L L^T) of each symmetric positive-definite matrix,
    from its lower triangle; its transpose with upper=True (torch.linalg.cholesky)."""
    _check_input("linalg.cholesky", A)
    low = Cholesky.apply(A)
    return _mT(low).contiguous() if upper else low


def legacy_cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """torch.cholesky(input, upper=False)."""
    return cholesky(input, upper=upper)


_QR_MODES = ("reduced", "complete", "r")


class QR(Op):
    op_name = "linalg.qr"
    saves_outputs = True

    @staticmethod
    def forward(ctx, A, mode):
        xp = A._xp
        ctx.mode, ctx.shape = mode, A.shape
        if mode == "r":
            r = xp.linalg.qr(A.array, mode="r")
            return xp.empty((0,), dtype=A.dtype), r
        q, r = xp.linalg.qr(A.array, mode=mode)
        return q, r

    @staticmethod
    def backward(ctx, gQ, gR):
        m, n = ctx.shape[-2:]
        if ctx.mode == "r":
            raise RuntimeError("linalg.qr: The derivative of linalg.qr depends on Q, which is not "
                               "computed when mode='r'. Please use linalg.qr(A, "
                               "mode='reduced') if you are going to differentiate through "
                               "linalg.qr.")
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("linalg.qr: The QR decomposition is not differentiable when "
                               "mode='complete' and nrows > ncols.")
        Q, R = ctx.outputs
        if m >= n:
            return _qr_square_backward(Q, R, gQ, gR)
        # NOTE: m < n: A = [X | Y], R = [U | V] with X = Q U (a square QR) and Y = Q V. Then
        # gY = Q gV, and X sees the gradient gQ + Y gV^T on Q.
        A_y = matmul(Q, getitem(R, (Ellipsis, slice(None), slice(m, None))))
        U = getitem(R, (Ellipsis, slice(None), slice(0, m)))
        gU = gV = None
        if gR is not None:
            gU = getitem(gR, (Ellipsis, slice(None), slice(0, m)))
            gV = getitem(gR, (Ellipsis, slice(None), slice(m, None)))
        gQx = gQ
        if gV is not None:
            extra = matmul(A_y, _mT(gV))
            gQx = extra if gQx is None else gQx + extra
        gX = _qr_square_backward(Q, U, gQx, gU)
        gY = matmul(Q, gV) if gV is not None else _zeros_like(A_y)
        return cat([gX, gY], -1)


def _zeros_like(x: Tensor) -> Tensor:
    return Tensor._wrap(x._xp.zeros(x.shape, dtype=x.dtype))


def _qr_square_backward(Q: Tensor, R: Tensor, gQ: Tensor | None, gR: Tensor | None) -> Tensor:
    """gA for A = Q R with m >= n (reduced): with M = R gR^T - gQ^T Q,
    gA = (gQ + Q copyltu(M)) R^-T, copyltu(M) = tril(M) + tril(M, -1)^T (Walter and
    Lehmann; torch's linalg_qr_backward)."""
    M = None
    if gR is not None:
        M = matmul(R, _mT(gR))
    if gQ is not None:
        term = matmul(_mT(gQ), Q)
        M = -term if M is None else M - term
    assert M is not None
    inner = matmul(Q, tril(M) + _mT(tril(M, -1)))
    if gQ is not None:
        inner = inner + gQ
    # NOTE: X R^T = inner is R X^T = inner^T.
    return _mT(Solve.apply(R, _mT(inner)))


@autocast_policy("linalg.qr")
def qr(A: Tensor, mode: str = "reduced") -> tuple:
    """Q R = A with Q orthonormal and R upper triangular (torch.linalg.qr); mode 'reduced'
    (k = min(m, n) columns), 'complete' (Q square) or 'r' (R only, an empty Q)."""
    _check_input("linalg.qr", A, square=False)
    if mode not in _QR_MODES:
        raise RuntimeError(f"linalg.qr: qr received unrecognized mode '{mode}' but expected one "
                           "of 'reduced' (default), 'r', or 'complete'")
    q, r = QR.apply(A, mode=mode)
    return linalg_qr(q, r)


def legacy_qr(input: Tensor, some: bool = True) -> tuple:
    """torch.qr(input, some=True): linalg.qr, reduced when `some`, else complete."""
    return qr_result(*qr(input, "reduced" if some else "complete"))


class Eigh(Op):
    op_name, saves_outputs = "linalg.eigh", True

    @staticmethod
    def forward(ctx, A, UPLO):
        try:
            w, v = A._xp.linalg.eigh(A.array, UPLO=UPLO)
        except np.linalg.LinAlgError as err:
            raise LinAlgError(f"linalg.eigh: The algorithm failed to converge ({err})") from None
        return w, v

    @staticmethod
    def backward(ctx, gL, gV):
        # NOTE: with E_ij = L_j - L_i (1 on the diagonal),
        # gA = V (diag(gL) + skew(V^T gV) / 2 / E) V^T, the skew part because eigenvectors
        # are defined only up to sign (torch's linalg_eig_backward).
        L, V = ctx.outputs
        inner = None
        if gV is not None:
            vgv = matmul(_mT(V), gV)
            E = unsqueeze(L, -2) - unsqueeze(L, -1) + _eye(L, L.shape[-1])
            inner = 0.5 * (vgv - _mT(vgv)) / E
        if gL is not None:
            inner = diag_embed(gL) if inner is None else inner + diag_embed(gL)
        if inner is None:
            return None
        return matmul(V, matmul(inner, _mT(V)))


@autocast_policy("linalg.eigh")
def eigh(A: Tensor, UPLO: str = "L") -> tuple:
    """Eigenvalues (ascending) and orthonormal eigenvectors of each symmetric matrix, read from
    its lower (UPLO='L') or upper triangle (torch.linalg.eigh)."""
    if isinstance(A, Tensor) and A.dtype.kind in "biu":  # NOTE: as torch, which has no
        raise NotImplementedError(  # integer eigh kernel and says so
            f"linalg.eigh: not implemented for '{dtypes.torch_name(A.dtype)}'")
    _check_input("linalg.eigh", A, missing_kernel=True)
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"linalg.eigh: Expected UPLO argument to be 'L' or 'U', but got "
                           f"{UPLO}")
    w, v = Eigh.apply(A, UPLO=UPLO)
    return linalg_eigh(w, v)


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    """The eigenvalues of each symmetric matrix (torch.linalg.eigvalsh)."""
    _check_input("linalg.eigvalsh", A)
    return eigh(A, UPLO)[0]


class SVD(Op):
    op_name, saves_outputs = "linalg.svd", True

    @staticmethod
    def forward(ctx, A, full_matrices):
        ctx.full = full_matrices
        try:
            u, s, vh = A._xp.linalg.svd(A.array, full_matrices=full_matrices)
        except np.linalg.LinAlgError as err:
            raise LinAlgError(f"linalg.svd: The algorithm failed to converge ({err})") from None
        return u, s, vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        U, S, Vh = ctx.outputs
        m, n = U.shape[-2], Vh.shape[-1]
        k = S.shape[-1]
        if ctx.full:  # NOTE: as torch, only the first k columns of U and rows of Vh count
            U = getitem(U, (Ellipsis, slice(0, k)))
            Vh = getitem(Vh, (Ellipsis, slice(0, k), slice(None)))
            if gU is not None:
                gU = getitem(gU, (Ellipsis, slice(0, k)))
            if gVh is not None:
                gVh = getitem(gVh, (Ellipsis, slice(0, k), slice(None)))
        if gU is None and gVh is None:
            if gS is None:
                return None
            return matmul(U * unsqueeze(gS, -2), Vh)
        return _svd_backward(U, S, Vh, gU, gS, gVh, m, n, k)


def _svd_backward(U, S, Vh, gU, gS, gVh, m: int, n: int, k: int) -> Tensor:
    """torch's svd_backward (full_matrices=False): with skew(X) = X - X^T and
    E_jk = S_k^2 - S_j^2 (1 on the diagonal),
    gA = U [(skew(U^T gU) S + S skew(V^T gV)) / E + diag(gS)] V^T, plus the parts of gU and
    gV outside the spans of U and V when A is not square."""
    V = _mT(Vh)
    S2 = S * S
    E = unsqueeze(S2, -2) - unsqueeze(S2, -1) + _eye(S, k)
    inner = None
    if gU is not None:
        uhgu = matmul(_mT(U), gU)
        inner = (uhgu - _mT(uhgu)) * unsqueeze(S, -2)
    if gVh is not None:
        vhgv = matmul(Vh, _mT(gVh))
        term = unsqueeze(S, -1) * (vhgv - _mT(vhgv))
        inner = term if inner is None else inner + term
    assert inner is not None
    inner = inner / E
    if gS is not None:
        inner = inner + diag_embed(gS)
    if m > k and gU is not None:
        gA = matmul(U, inner)
        gu_sinv = gU / unsqueeze(S, -2)
        gA = gA + gu_sinv - matmul(U, matmul(_mT(U), gu_sinv))
        return matmul(gA, Vh)
    if n > k and gVh is not None:
        gA = matmul(inner, Vh)
        sinv_gvh = gVh / unsqueeze(S, -1)
        gA = gA + sinv_gvh - matmul(matmul(sinv_gvh, V), Vh)
        return matmul(U, gA)
    return matmul(matmul(U, inner), Vh)


@autocast_policy("linalg.svd")
def svd(A: Tensor, full_matrices: bool = True) -> tuple:
    """A = U diag(S) Vh with S descending (torch.linalg.svd); full_matrices gives square U and
    Vh, whose extra columns get no gradient (as in torch)."""
    _check_input("linalg.svd", A, square=False, missing_kernel=True)
    u, s, vh = SVD.apply(A, full_matrices=bool(full_matrices))
    return linalg_svd(u, s, vh)


def svdvals(A: Tensor) -> Tensor:
    """The singular values of each matrix, descending (torch.linalg.svdvals)."""
    _check_input("linalg.svdvals", A, square=False, missing_kernel=True)
    return SVD.apply(A, full_matrices=False)[1]


def legacy_svd(input: Tensor, some: bool = True, compute_uv: bool = True) -> tuple:
    """torch.svd: (U, S, V) with V = Vh^T; without compute_uv, U and V are zero matrices of
    shape (m, m) and (n, n)."""
    _check_input("svd", input, square=False)
    if not compute_uv:
        m, n = input.shape[-2:]
        batch = tuple(input.shape[:-2])
        xp = input._xp
        return svd_result(Tensor._wrap(xp.zeros(batch + (m, m), dtype=input.dtype)),
                          svdvals(input),
                          Tensor._wrap(xp.zeros(batch + (n, n), dtype=input.dtype)))
    u, s, vh = svd(input, full_matrices=not some)
    return svd_result(u, s, _mT(vh))


class Pinv(Op):
    op_name, saves_outputs = "linalg.pinv", True

    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        ctx.save_for_backward(A)
        xp, a = A._xp, A.array
        if hermitian:
            w, v = xp.linalg.eigh(a)
            size = xp.abs(w)
        else:
            u, size, vh = xp.linalg.svd(a, full_matrices=False)
        top = size.max(axis=-1, keepdims=True) if size.shape[-1] else xp.zeros(
            size.shape[:-1] + (1,), a.dtype)
        tol = xp.maximum(atol, rtol * top)
        keep = size > tol
        if hermitian:
            scale = xp.where(keep, 1 / xp.where(keep, w, 1), 0)
            return xp.matmul(v * scale[..., None, :], xp.swapaxes(v, -1, -2))
        scale = xp.where(keep, 1 / xp.where(keep, size, 1), 0)
        return xp.matmul(xp.swapaxes(vh, -1, -2) * scale[..., None, :], xp.swapaxes(u, -1, -2))

    @staticmethod
    def backward(ctx, g):
        # NOTE: Golub and Pereyra (1973): dP = -P dA P + P P^T dA^T (I - A P)
        # + (I - P A) dA^T P^T P, so gA = -P^T g P^T + (I - A P) g^T P P^T
        # + P^T P g^T (I - P A).
        A, = ctx.saved_tensors
        P = ctx.outputs[0]
        Pt, gt = _mT(P), _mT(g)
        left = _eye(A, A.shape[-2]) - matmul(A, P)
        right = _eye(A, A.shape[-1]) - matmul(P, A)
        return (-matmul(matmul(Pt, g), Pt) + matmul(matmul(left, gt), matmul(P, Pt))
                + matmul(matmul(Pt, P), matmul(gt, right)))


def pinv(A: Tensor, *, atol: Any = None, rtol: Any = None, hermitian: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse (torch.linalg.pinv): singular values at most
    max(atol, rtol * largest) count as zero; rtol defaults to eps * max(m, n) when atol is
    not given, else to 0."""
    _check_input("linalg.pinv", A, square=bool(hermitian))
    if rtol is None:
        rtol = np.finfo(A.dtype).eps * max(A.shape[-2:]) if atol is None or atol == 0 else 0.0
    return Pinv.apply(A, atol=0.0 if atol is None else float(atol), rtol=float(rtol),
                      hermitian=bool(hermitian))


@autocast_policy("pinverse")
def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """torch.pinverse: linalg.pinv with rtol=rcond."""
    return pinv(input, rtol=rcond)


# -- norms ------------------------------------------------------------------------------------
def _keep_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class VectorNorm(Op):
    op_name, saves_outputs = "linalg.vector_norm", True

    @staticmethod
    def forward(ctx, x, ord, axes, keepdim):
        ctx.save_for_backward(x)
        ctx.ord, ctx.axes, ctx.keepdim = ord, axes, keepdim
        xp, a = x._xp, x.array
        mag = xp.abs(a)
        if ord == math.inf:
            return mag.max(axis=axes, keepdims=keepdim)
        if ord == -math.inf:
            return mag.min(axis=axes, keepdims=keepdim)
        if ord == 0:
            return (mag != 0).sum(axis=axes, keepdims=keepdim).astype(a.dtype)
        if ord == 1:
            return mag.sum(axis=axes, keepdims=keepdim)
        if ord == 2:
            return xp.sqrt((a * a).sum(axis=axes, keepdims=keepdim))
        return ((mag ** ord).sum(axis=axes, keepdims=keepdim)) ** (1.0 / ord)

    @staticmethod
    def backward(ctx, g):
        # NOTE: torch's norm_backward: at a zero norm (or a zero entry, for p < 1) the
        # gradient is 0, never NaN.
        x, = ctx.saved_tensors
        p, axes = ctx.ord, ctx.axes
        keep = _keep_shape(tuple(x.shape), axes)
        norm = ctx.outputs[0]
        if not ctx.keepdim:
            g, norm = reshape(g, keep), reshape(norm, keep)
        if p == 0:
            return None
        if p == 1:
            return sign(x) * g
        zero_norm = norm == 0
        if p == 2:
            return g * where(zero_norm, 0.0, x / where(zero_norm, 1.0, norm))
        if math.isinf(p):
            hit = abs(x) == norm
            count = sum(hit, axes, keepdim=True)
            return sign(x) * hit * (g / count)
        mag = abs(x)
        if p < 1:
            safe = where(x == 0, 1.0, mag)
            return sign(x) * where(x == 0, 0.0, pow(safe, p - 1)) * g * pow(norm, 1 - p)
        scale = where(zero_norm, 0.0, g / pow(where(zero_norm, 1.0, norm), p - 1))
        if p < 2:
            return sign(x) * pow(mag, p - 1) * scale
        return x * pow(mag, p - 2) * scale


def _norm_input(op: str, x: Tensor, dtype: Any) -> Tensor:
    """A norm's floating input, cast to `dtype`: floating, and no narrower, as torch asks."""
    _check_floating(op, x)
    if dtype is None:
        return x
    dt = dtypes.as_dtype(dtype)
    if not dtypes.is_floating(dt):
        raise RuntimeError(f"{op}: dtype should be floating point or complex, but got "
                           f"{dtypes.torch_name(dt)}")
    if dt.itemsize < x.dtype.itemsize:
        raise RuntimeError(f"{op}: the dtype of the input ({dtypes.torch_name(x.dtype)}) should "
                           f"be convertible without narrowing to the specified dtype "
                           f"({dtypes.torch_name(dt)})")
    return with_dtype(x, dt)


def _norm_dims(op: str, dim: Any, ndim: int) -> tuple:
    if isinstance(dim, (list, tuple)) and len(dim) == 0:
        dim = None
    return normalize_dims(op, dim, ndim)


@numpy_names
def vector_norm(x: Tensor, ord: Any = 2, dim: Any = None, keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """(sum |x|^ord)^(1/ord) over `dim` (all dims by default) (torch.linalg.vector_norm);
    ord may be inf, -inf or 0 (the count of nonzeros)."""
    op = "linalg.vector_norm"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument 'x' must be a Tensor, not {type(x).__name__}")
    if isinstance(ord, bool) or not isinstance(ord, (int, float, np.number)):
        raise TypeError(f"{op}: argument 'ord' must be Number, not {type(ord).__name__}")
    x = _norm_input(op, x, dtype)
    axes = _norm_dims(op, dim, x.ndim)
    if ord < 0 or math.isinf(ord):
        for a in axes or range(x.ndim):
            if x.shape[a] == 0:
                raise RuntimeError(f"{op}: cannot compute the {ord} norm on an empty tensor "
                                   f"because the operation does not have an identity")
    return VectorNorm.apply(x, ord=float(ord), axes=axes, keepdim=bool(keepdim))


_MATRIX_ORDS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


def _matrix_dims(op: str, A: Tensor, dim: Any) -> tuple:
    if not isinstance(dim, (list, tuple)) or len(dim) != 2:
        raise RuntimeError(f"{op}: dim must be a 2-tuple. Got {dim}")
    d0, d1 = (normalize_dim(op, d, A.ndim) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


@numpy_names
def matrix_norm(A: Tensor, ord: Any = "fro", dim: Any = (-2, -1), keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """A matrix norm over the two dims `dim` (torch.linalg.matrix_norm): 'fro', 'nuc' (sum of
    singular values), inf/-inf (max/min row sum of |A|), 1/-1 (column sums), 2/-2 (largest and
    smallest singular value)."""
    op = "linalg.matrix_norm"
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: argument 'A' must be a Tensor, not {type(A).__name__}")
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    A = _norm_input(op, A, dtype)
    d0, d1 = _matrix_dims(op, A, dim)
    if isinstance(ord, str) and ord not in ("fro", "nuc"):
        raise RuntimeError(f"{op}: Order {ord} not supported.")
    if not isinstance(ord, str) and ord not in _MATRIX_ORDS:
        raise RuntimeError(f"{op}: Order {ord} not supported.")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        rest = [d for d in range(A.ndim) if d not in (d0, d1)]
        values = svdvals(permute(A, *rest, d0, d1))
        out = (sum(values, -1) if ord == "nuc" else amax(values, -1) if ord == 2
               else amin(values, -1))
        if keepdim:
            for d in sorted((d0, d1)):
                out = unsqueeze(out, d)
        return out
    # NOTE: ord 1 sums over rows (d0) and takes the extreme over columns; inf the other way.
    inner, outer = (d0, d1) if ord in (1, -1) else (d1, d0)
    sums = sum(abs(A), inner, keepdim=True)
    out = amax(sums, outer, keepdim=True) if ord > 0 else amin(sums, outer, keepdim=True)
    return out if keepdim else reshape(out, tuple(
        s for i, s in enumerate(A.shape) if i not in (d0, d1)))


def norm(A: Tensor, ord: Any = None, dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    """torch.linalg.norm: a vector norm over one dim, a matrix norm over two; without dim, a
    1-D or 2-D input's norm (or, without ord too, the 2-norm of all elements)."""
    op = "linalg.norm"
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: argument 'A' must be a Tensor, not {type(A).__name__}")
    if isinstance(dim, (int, np.integer)):
        dim = (dim,)
    if isinstance(ord, str):
        return matrix_norm(A, ord, (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    if dim is not None:
        if len(dim) not in (1, 2):
            raise RuntimeError(f"{op}: If dim is specified, it must be of length 1 or 2. Got "
                               f"{list(dim)}")
    elif ord is not None and A.ndim not in (1, 2):
        raise RuntimeError(f"{op}: If dim is not specified but ord is, the input must be 1D or "
                           f"2D. Got {A.ndim}D.")
    if ord is not None and ((dim is not None and len(dim) == 2) or (dim is None and A.ndim == 2)):
        return matrix_norm(A, ord, (0, 1) if dim is None else dim, keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def legacy_norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False,
                dtype: Any = None) -> Tensor:
    """torch.norm (Tensor.norm): p a number (a vector norm over `dim`, all dims by default),
    'fro' (the 2-norm over up to two dims) or 'nuc' (a matrix norm)."""
    dims = [dim] if isinstance(dim, (int, np.integer)) else dim
    if isinstance(p, str):
        if p == "fro" and (dims is None or len(dims) <= 2):
            return vector_norm(input, 2, dims, keepdim, dtype=dtype)
        if dims is None:
            dims = list(range(input.ndim))
        return matrix_norm(input, p, dims, keepdim, dtype=dtype)
    return vector_norm(input, 2.0 if p is None else p, dims, keepdim, dtype=dtype)


# -- powers and distances ---------------------------------------------------------------------
def matrix_power(A: Tensor, n: int) -> Tensor:
    """A @ A @ ... (n factors) of each square matrix (torch.linalg.matrix_power and
    torch.matrix_power), by repeated squaring; n = 0 gives identities, n < 0 powers of the
    inverse (floating A only)."""
    from .elementwise import clone
    op = "linalg.matrix_power"
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: argument 'A' must be a Tensor, not {type(A).__name__}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{op}: argument 'n' must be int, not {type(n).__name__}")
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{op}: A must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")
    if n == 0:
        # NOTE: identities that require grad when A does, with zero gradients (torch's)
        xp = A._xp
        eye = Tensor._wrap(xp.broadcast_to(xp.eye(A.shape[-1], dtype=A.dtype), A.shape).copy())
        return where(Tensor._wrap(xp.ones(A.shape, bool)), eye, A)
    if n < 0:
        A, n = inv(A), -n
    # NOTE: repeated squaring: A^n is the product of the squarings A^(2^k) at n's set bits
    factors, square = [], A
    while n:
        if n & 1:
            factors.append(square)
        n >>= 1
        if n:
            square = matmul(square, square)
    result = factors[0]
    for factor in factors[1:]:
        result = matmul(result, factor)
    return clone(result) if result is A else result  # a copy, never A itself, as torch's A^1


@autocast_policy("dist")
def dist(input: Tensor, other: Tensor, p: Any = 2) -> Tensor:
    """The p-norm of input - other, broadcast against each other (torch.dist)."""
    for name, v in (("input", input), ("other", other)):
        if not isinstance(v, Tensor):
            raise TypeError(f"dist: argument '{name}' must be a Tensor, not {type(v).__name__}")
    for v in (input, other):
        if not dtypes.is_floating(v.dtype):
            raise RuntimeError(f"dist: norm(): input dtype should be either floating point or "
                               f"complex. Got {dtypes.torch_name(v.dtype)} instead.")
    from .shape import broadcast_shapes
    broadcast_shapes("dist", tuple(input.shape), tuple(other.shape))
    return vector_norm(input - other, p)
