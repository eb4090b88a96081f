"""Sorting and selection along a dim: sort, argsort, msort, topk, kthvalue, median and
nanmedian, mode, and unique, unique_consecutive.

Each selection is one stable argsort (equal values keep their order, NaN sorts as the largest,
as in PyTorch) and a choice of positions in it. The values are read from the input at the
chosen indices by indexing (`index.GetItem`), so their gradient scatters back through the
indices, as PyTorch's does; the indices are int64 and never require grad. The median of a whole
tensor is its own op (`MedianOfAll`): its gradient is shared by every element equal to it, as
PyTorch's. A 0-d input is sorted as a one-element vector, as PyTorch allows.
"""
from __future__ import annotations

import math
import operator
from typing import Any

from .. import dtypes
from ..autograd.function import Op
from ..tensor import Tensor
from .elementwise import isnan, where
from .index import GetItem
from .reduce import sum, values_indices
from .scan import _scan
from .util import normalize_dim, numpy_names


def _stable_argsort(xp, a, dim: int, descending: bool):
    """The indices that sort `a` along `dim`, equal values in their original order and NaN
    as the largest (NumPy's and CuPy's stable sorts put it last)."""
    if a.dtype == dtypes.bfloat16:  # NOTE: CuPy 14.2's sorts have no bfloat16; float32
        a = a.astype(dtypes.float32)  # holds every value, so the order is the same
    if not descending:
        return xp.argsort(a, axis=dim, kind="stable")
    # NOTE: descending is the ascending order of the reversed slice, read backwards: equal
    # values come out in their original order again, and NaN first.
    n = a.shape[dim]
    return (n - 1) - xp.flip(xp.argsort(xp.flip(a, dim), axis=dim, kind="stable"), dim)


def _pick(x: Tensor, indices, dim: int, keepdim: bool = True) -> values_indices:
    """(values, indices): x's values at `indices` along `dim` (an index array shaped like x
    but along `dim`, which it lacks unless `keepdim`) and the indices as int64."""
    xp = x._xp
    ndim = indices.ndim

    def axis_of(i: int) -> int:  # where x's dim i is in the output
        return i if keepdim or i < dim else i - 1

    items = tuple(indices if i == dim else
                  xp.arange(n).reshape([-1 if j == axis_of(i) else 1 for j in range(ndim)])
                  for i, n in enumerate(x.shape))
    return values_indices(GetItem.apply(x, items=items),
                          Tensor._wrap(indices.astype(dtypes.int64, copy=False)))


def _check_selectable(op: str, x: Tensor, dim: int, bool_error: type | None) -> int:
    """The size of `dim` (1 for a 0-d tensor), checked to be nonempty; `bool_error` is the
    error PyTorch raises for a bool input (None where it takes one)."""
    if bool_error is not None and x.dtype == dtypes.bool:
        raise bool_error(f"{op}: not implemented for bool tensors, as in PyTorch")
    n = x.shape[dim] if x.ndim else 1
    if n == 0:
        raise IndexError(f"{op}: expected reduction dim {dim} to have non-zero size (input "
                         f"shape {tuple(x.shape)})")
    return n


def _check_k(op: str, k: Any, low: int, n: int, dim: int, x: Tensor) -> int:
    """`k` as an int, checked to lie in [low, n]."""
    if isinstance(k, bool) or not hasattr(k, "__index__"):
        raise TypeError(f"{op}: argument 'k' must be int, not {type(k).__name__}")
    k = operator.index(k)
    if not low <= k <= n:
        raise RuntimeError(f"{op}: k ({k}) is out of range for dimension {dim} of size {n} "
                           f"(input shape {tuple(x.shape)}): expected {low} <= k <= {n}")
    return k


# -- sort -------------------------------------------------------------------------------------
@numpy_names
def sort(input: Tensor, dim: int = -1, descending: bool = False, *,
         stable: bool = False) -> values_indices:
    """(values, indices) sorted along `dim` (torch.sort). The order is always the stable one
    (what PyTorch gives with stable=True); NaN sorts as the largest."""
    return _scan("sort", input, dim, lambda x, d: _pick(
        x, _stable_argsort(x._xp, x.array, d, descending), d))


@numpy_names
def argsort(input: Tensor, dim: int = -1, descending: bool = False, *,
            stable: bool = False) -> Tensor:
    """The indices that sort along `dim` (torch.argsort), in the stable order."""
    return _scan("argsort", input, dim, lambda x, d: Tensor._wrap(
        _stable_argsort(x._xp, x.array, d, descending).astype(dtypes.int64, copy=False)))


def msort(input: Tensor) -> Tensor:
    """The values sorted along dim 0 (torch.msort)."""
    return sort(input, 0).values


@numpy_names
def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> values_indices:
    """The k largest (or smallest) values along `dim` and their indices (torch.topk), always
    in sorted order, equal values by their index; NaN counts as the largest."""
    d = normalize_dim("topk", dim, input.ndim)
    if input.dtype == dtypes.bool:
        raise RuntimeError("topk: bool tensors are not supported, as in PyTorch")
    k = _check_k("topk", k, 0, input.shape[d] if input.ndim else 1, d, input)
    keep = k if input.ndim else 1  # NOTE: PyTorch gives a 0-d tensor itself for k=0 too

    def run(x: Tensor, d: int) -> values_indices:
        order = _stable_argsort(x._xp, x.array, d, descending=largest)
        return _pick(x, order[(slice(None),) * d + (slice(0, keep),)], d)
    return _scan("topk", input, d, run)


@numpy_names
def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> values_indices:
    """The k-th smallest value along `dim` and its index (torch.kthvalue); of equal values,
    the k-th in their stable order."""
    d = normalize_dim("kthvalue", dim, input.ndim)
    k = _check_k("kthvalue", k, 1,
                 _check_selectable("kthvalue", input, d, NotImplementedError), d, input)

    def run(x: Tensor, d: int) -> values_indices:
        order = _stable_argsort(x._xp, x.array, d, descending=False)
        chosen = order[(slice(None),) * d + (slice(k - 1, k),)]
        return _pick(x, chosen if keepdim else chosen.squeeze(d), d, keepdim)
    return _scan("kthvalue", input, d, run)


# -- medians and mode -------------------------------------------------------------------------
def _median_positions(xp, a, dim: int, skip_nan: bool):
    """Where each slice's lower median sits in its ascending sort (size 1 along `dim`): among
    the non-NaN values where `skip_nan` (the first NaN where all are NaN: PyTorch's index there
    depends on the length), else at the first NaN where the slice has one (NaN propagates),
    as in PyTorch."""
    n = a.shape[dim]
    if dtypes.is_floating(a.dtype):
        nans = xp.isnan(a).sum(axis=dim, keepdims=True)
    else:
        nans = xp.zeros([1 if i == dim else s for i, s in enumerate(a.shape)], dtypes.int64)
    if skip_nan:
        count = n - nans
        return xp.where(count > 0, (count - 1) // 2, 0)
    return xp.where(nans > 0, n - nans, (n - 1) // 2)


class MedianOfAll(Op):
    """The lower median of every element (torch.median(input)); its gradient is shared
    evenly by the elements equal to it (the NaNs, when it is NaN), as PyTorch's."""

    op_name, saves_outputs = "median", True
    skip_nan = False

    @classmethod
    def forward(cls, ctx, x):
        ctx.save_for_backward(x)
        xp, a = x._xp, x.array.reshape(-1)
        if a.size == 0:
            return xp.full((), math.nan, a.dtype)
        positions = _median_positions(xp, a, 0, cls.skip_nan)
        return a[_stable_argsort(xp, a, 0, False)[positions]].reshape(())

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        out = ctx.outputs[0]
        hit = where(isnan(out), isnan(x), x == out)
        return g * hit / sum(hit)


class NanMedianOfAll(MedianOfAll):
    """The lower median of the non-NaN elements (torch.nanmedian(input)); NaN if all are."""

    op_name, skip_nan = "nanmedian", True


def _median(op: type[MedianOfAll], input: Tensor, dim: Any, keepdim: bool):
    """The median of all elements (`dim` None), or (values, indices) along `dim`."""
    name = op.op_name
    if dim is None:
        if input.dtype == dtypes.bool:
            raise NotImplementedError(f"{name}: not implemented for bool tensors, as in "
                                      f"PyTorch")
        return op.apply(input)
    d = normalize_dim(name, dim, input.ndim)
    _check_selectable(name, input, d, NotImplementedError)

    def run(x: Tensor, d: int) -> values_indices:
        xp, a = x._xp, x.array
        order = _stable_argsort(xp, a, d, descending=False)
        chosen = xp.take_along_axis(order, _median_positions(xp, a, d, op.skip_nan), axis=d)
        return _pick(x, chosen if keepdim else chosen.squeeze(d), d, keepdim)
    return _scan(name, input, d, run)


@numpy_names
def median(input: Tensor, dim: Any = None, keepdim: bool = False):
    """The lower of the two middle values (torch.median): of every element, or with `dim`,
    (values, indices) along it. NaN propagates: a slice with one has median NaN, at the
    index of its first NaN."""
    return _median(MedianOfAll, input, dim, keepdim)


@numpy_names
def nanmedian(input: Tensor, dim: Any = None, keepdim: bool = False):
    """median ignoring NaN (torch.nanmedian); NaN where a slice has only NaN."""
    return _median(NanMedianOfAll, input, dim, keepdim)


def _same(xp, a, b):
    """a == b elementwise, NaN equal to NaN (so the NaNs of a slice are one value)."""
    if not dtypes.is_floating(a.dtype):
        return a == b
    return (a == b) | (xp.isnan(a) & xp.isnan(b))


def _mode_along_last(xp, a):
    """(end, order) for the slices along the last axis of `a`: `order` sorts each stably, and
    `end` (size 1) is the position in it of the last of the mode's equal values (the mode is
    the smallest of the most frequent values)."""
    order = _stable_argsort(xp, a, -1, descending=False)
    s = xp.take_along_axis(a, order, axis=-1)
    first = xp.ones(s.shape[:-1] + (1,), dtypes.bool)
    starts = xp.concatenate([first, ~_same(xp, s[..., 1:], s[..., :-1])], axis=-1)
    # NOTE: the run of equal values holding position i began at the run_id-th start; the
    # starts' positions come first in a stable argsort of ~starts (no running max: CuPy's
    # ufuncs have no accumulate).
    run_id = xp.cumsum(starts, axis=-1) - 1
    start_of = xp.take_along_axis(xp.argsort(~starts, axis=-1, kind="stable"), run_id, -1)
    length = xp.arange(s.shape[-1]) - start_of + 1
    # the first position whose run reaches the longest length ends the smallest mode's run
    longest = length == length.max(axis=-1, keepdims=True)
    return xp.argmax(longest, axis=-1)[..., None], order


@numpy_names
def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> values_indices:
    """The most frequent value along `dim` (the smallest, of equally frequent ones) and an
    index of it (torch.mode): its last occurrence, as PyTorch gives on small inputs; the NaNs
    of a slice count as one value."""
    d = normalize_dim("mode", dim, input.ndim)
    _check_selectable("mode", input, d, None)

    def run(x: Tensor, d: int) -> values_indices:
        xp = x._xp
        end, order = _mode_along_last(xp, xp.moveaxis(x.array, d, -1))
        chosen = xp.moveaxis(xp.take_along_axis(order, end, axis=-1), -1, d)
        return _pick(x, chosen if keepdim else chosen.squeeze(d), d, keepdim)
    return _scan("mode", input, d, run)


# -- unique -----------------------------------------------------------------------------------
def _unique_dim(op: str, input: Tensor, dim: Any) -> int | None:
    if dim is None:
        return None
    if input.ndim == 0:
        raise IndexError(f"{op}: dim {dim} was given but the tensor has no dimensions")
    return normalize_dim(op, dim, input.ndim)


def _requested(outputs: tuple, return_inverse: bool, return_counts: bool):
    """unique's result: the values alone, or a tuple with the inverse and counts asked for."""
    values, inverse, counts = outputs
    if not (return_inverse or return_counts):
        return values
    return (values,) + ((inverse,) if return_inverse else ()) + \
        ((counts,) if return_counts else ())


class Unique(Op):
    """The sorted distinct values (or slices along `dim`), the inverse indices that rebuild the
    input from them, and their counts; NaNs are each distinct, as in PyTorch."""

    op_name, differentiable = "unique", False

    @staticmethod
    def forward(ctx, x, dim):
        xp, a = x._xp, x.array
        if a.dtype == dtypes.bfloat16:  # NOTE: CuPy 14.2's sorts have no bfloat16; float32
            values, inverse, counts = Unique.forward(  # holds its values exactly
                ctx, Tensor._wrap(a.astype(dtypes.float32)), dim)
            return values.astype(a.dtype), inverse, counts
        if dim is None:
            values, inverse, counts = xp.unique(a.reshape(-1), return_inverse=True,
                                                return_counts=True, equal_nan=False)
        else:
            values, inverse, counts = xp.unique(a, return_inverse=True, return_counts=True,
                                                axis=dim)
        inverse = inverse.reshape(a.shape if dim is None else -1)
        return values, inverse.astype(dtypes.int64), counts.astype(dtypes.int64)


class UniqueConsecutive(Op):
    """The first of each run of equal consecutive values (or slices along `dim`), the inverse
    indices and the run lengths; NaN is unequal to NaN, as in PyTorch."""

    op_name, differentiable = "unique_consecutive", False

    @staticmethod
    def forward(ctx, x, dim):
        xp, a = x._xp, x.array
        along = a.reshape(-1) if dim is None else xp.moveaxis(a, dim, 0)
        n = along.shape[0]
        rows = along.reshape(n, math.prod(along.shape[1:]))
        starts = xp.concatenate([xp.ones(min(n, 1), dtypes.bool),
                                 (rows[1:] != rows[:-1]).any(axis=1)])
        first = xp.nonzero(starts)[0]
        values = along[first] if dim is None else xp.moveaxis(along[first], 0, dim)
        inverse = (xp.cumsum(starts) - 1).reshape(a.shape if dim is None else -1)
        counts = xp.diff(xp.concatenate([first, xp.full(1, n, first.dtype)]))
        return values, inverse.astype(dtypes.int64), counts.astype(dtypes.int64)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: Any = None):
    """The distinct values, sorted (torch.unique: always sorted, as PyTorch's CPU result is
    also with sorted=False); with `dim`, the distinct slices along it. With the flags, a tuple
    (values, inverse, counts) of those asked for. No gradient."""
    d = _unique_dim("unique", input, dim)
    return _requested(Unique.apply(input, dim=d), return_inverse, return_counts)


def unique_consecutive(input: Tensor, return_inverse: bool = False,
                       return_counts: bool = False, dim: Any = None):
    """The values with each run of equal consecutive ones collapsed (torch.unique_consecutive);
    with `dim`, runs of equal slices along it. No gradient."""
    d = _unique_dim("unique_consecutive", input, dim)
    return _requested(UniqueConsecutive.apply(input, dim=d), return_inverse, return_counts)
