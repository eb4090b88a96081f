"""Scans along one dim (PyTorch's cumulative ops): cumsum, cumprod, cummax/cummin (values and
indices) and logcumsumexp.

cumsum is linear, and its adjoint is the same sum run from the far end, so the two are a
`LinearOp` pair; cummax/cummin pick their values by indexing, whose gradient scatters back to
the indices. A 0-d input is scanned as a one-element vector, as PyTorch allows.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

import numpy as np

from .. import dtypes
from ..autograd.function import Op
from ..backend import array_module
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .elementwise import exp, log, logical_and, where
from .index import getitem
from .reduce import amax, sum, with_dtype
from .shape import reshape
from .util import normalize_dim, numpy_names

values_indices = namedtuple("values_indices", ["values", "indices"])


def _int64_if_integral(a) -> Any:
    return dtypes.int64 if a.dtype.kind in "biu" else None


class CumSum(LinearOp):
    op_name, params = "cumsum", ("dim",)

    @staticmethod
    def compute(a, dim):
        wide = dtypes.accumulation(a.dtype)
        if wide != a.dtype:  # NOTE: float16/bfloat16 accumulate in float32, as torch's
            return a.cumsum(axis=dim, dtype=wide).astype(a.dtype)
        return a.cumsum(axis=dim, dtype=_int64_if_integral(a))


class ReverseCumSum(LinearOp):
    """Sums from the end of `dim`: out[i] = sum(a[i:]), cumsum's adjoint."""

    op_name, params = "cumsum_backward", ("dim",)

    @staticmethod
    def compute(a, dim):
        xp = array_module(a)
        wide = dtypes.accumulation(a.dtype)
        if wide != a.dtype:  # NOTE: float16/bfloat16 accumulate in float32, as torch's
            return xp.flip(xp.flip(a, dim).cumsum(axis=dim, dtype=wide), dim).astype(a.dtype)
        return xp.flip(xp.flip(a, dim).cumsum(axis=dim), dim)


adjoints(CumSum, ReverseCumSum)


class CumProd(Op):
    op_name, saves_outputs = "cumprod", True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_for_backward(x)
        ctx.dim = dim
        return x.array.cumprod(axis=dim, dtype=_int64_if_integral(x.array))

    @staticmethod
    def backward(ctx, g):
        # NOTE: d out[k] / d x[i] = out[k] / x[i] for k >= i, valid before a slice's first zero
        # z. From z on, with y = x but y[z] = 1 and R the reverse scan of g * cumprod(y), the
        # gradient is R at z and x[z] * R / x[i] past it: zero in value, but written so that
        # its derivative in x[z] (second order) is right for a slice with one zero.
        x, = ctx.saved_tensors
        dim = ctx.dim
        zero = x == 0
        zeros_so_far = CumSum.apply(zero, dim=dim)
        before = zeros_so_far == 0
        first = logical_and(zero, zeros_so_far == 1)
        tail = ReverseCumSum.apply(g * ctx.outputs[0], dim=dim) / where(before, x, 1.0)
        r = ReverseCumSum.apply(g * CumProd.apply(where(first, 1.0, x), dim=dim), dim=dim)
        x_z = sum(where(first, x, 0.0), dim, keepdim=True)
        return where(before, tail, where(first, r, x_z * r / where(zero, 1.0, x)))


def _scan(op: str, x: Tensor, dim: Any, run: Callable[[Tensor, int], Any]) -> Any:
    """`run(x, dim)` with `dim` checked; a 0-d input runs as shape (1,) and comes back 0-d."""
    d = normalize_dim(op, dim, x.ndim)
    if x.ndim:
        return run(x, d)
    out = run(reshape(x, (1,)), 0)
    if isinstance(out, tuple):
        return type(out)(*(reshape(o, ()) for o in out))
    return reshape(out, ())


@numpy_names
def cumsum(x: Tensor, dim: Any, *, dtype: Any = None) -> Tensor:
    """Running sums along `dim` (torch.cumsum); integer and bool inputs give int64."""
    return _scan("cumsum", with_dtype(x, dtype), dim, lambda t, d: CumSum.apply(t, dim=d))


@numpy_names
def cumprod(x: Tensor, dim: Any, *, dtype: Any = None) -> Tensor:
    """Running products along `dim` (torch.cumprod); the gradient is right with zeros too."""
    return _scan("cumprod", with_dtype(x, dtype), dim, lambda t, d: CumProd.apply(t, dim=d))


def _accumulated(ufunc, a: Any, axis: int) -> Any:
    """`ufunc.accumulate(a, axis)` (a running maximum or minimum); on CuPy, whose ufuncs
    accumulate only add and multiply, as log2(n) whole-array steps (Hillis and Steele's scan:
    step k combines each element with the one 2^k before it)."""
    xp = array_module(a)
    if xp is np:
        return ufunc.accumulate(a, axis=axis)
    out, n, step = a.copy(), a.shape[axis], 1
    while step < n:
        later = tuple(slice(step, None) if i == axis else slice(None) for i in range(a.ndim))
        earlier = tuple(slice(None, n - step) if i == axis else slice(None)
                        for i in range(a.ndim))
        out[later] = ufunc(out[later], out[earlier])
        step *= 2
    return out


def _running_extreme(x: Tensor, dim: int, largest: bool) -> values_indices:
    """Values and indices of the running max (min): on a tie the later index, as in PyTorch;
    the values are read from `x` at those indices, so the gradient goes to them."""
    xp, a = x._xp, x.array
    ufunc = xp.maximum if largest else xp.minimum
    positions = xp.arange(a.shape[dim]).reshape([-1 if i == dim else 1 for i in range(a.ndim)])
    hit = a == _accumulated(ufunc, a, dim)
    indices = _accumulated(xp.maximum, xp.where(hit, positions, 0), dim).astype(dtypes.int64)
    items = tuple(Tensor._wrap(indices if i == dim else
                               xp.arange(n).reshape([-1 if j == i else 1 for j in range(a.ndim)]))
                  for i, n in enumerate(a.shape))
    return values_indices(getitem(x, items), items[dim])


@numpy_names
def cummax(x: Tensor, dim: Any) -> values_indices:
    return _scan("cummax", x, dim, lambda t, d: _running_extreme(t, d, True))


@numpy_names
def cummin(x: Tensor, dim: Any) -> values_indices:
    return _scan("cummin", x, dim, lambda t, d: _running_extreme(t, d, False))


@numpy_names
def logcumsumexp(x: Tensor, dim: Any) -> Tensor:
    """log(cumsum(exp(x))) along `dim` (torch.logcumsumexp), shifted by the slice's max so it
    never overflows."""
    # NOTE: a running value more than ~700 (float64; ~88 in float32) below the slice's max
    # underflows to -inf here, where PyTorch's pairwise log-add stays finite.
    d = normalize_dim("logcumsumexp", dim, x.ndim)
    m = amax(x.detach(), d, keepdim=True)
    m = where(m.isfinite(), m, 0.0)
    return log(cumsum(exp(x - m), d)) + m
