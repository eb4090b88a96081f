"""Counting and searching: histc, bincount, bucketize, searchsorted (PyTorch's names and
rules). None has a gradient: their outputs are counts or positions (histc's and bincount's
float counts included, as in torch). Each counts or searches on the tensor's own array
module; histc with min == max and bincount read the data's range on the host first, as
torch does, since the output's length depends on it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import dtypes
from ..autograd.function import Op
from ..backend import host_read
from ..tensor import Tensor
from .util import Number


def _tensor(op: str, name: str, value: Any) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not {type(value).__name__}")


def _host_scalar(array: Any) -> Any:
    """A 0-d array's value on the host (a sync on the GPU, as torch's .item())."""
    if isinstance(array, (np.ndarray, np.generic)):
        return array.item()
    return host_read(array, array.item)


class Histc(Op):
    """Counts of input's values in `bins` equal bins over [lo, hi] (torch.histc): a value x
    falls in bin floor((x - lo) * bins / (hi - lo)), the top edge in the last bin; values
    outside, and NaN, are left out."""

    op_name, differentiable = "histc", False

    @staticmethod
    def forward(ctx, x, bins, lo, hi):
        xp, a = x._xp, x.array.reshape(-1)
        inside = (a >= lo) & (a <= hi)
        with np.errstate(invalid="ignore"):
            pos = xp.where(inside, (a - lo) * (bins / (hi - lo)), 0).astype(np.int64)
        pos = xp.minimum(pos, bins - 1)
        counts = xp.bincount(pos, weights=inside.astype(a.dtype), minlength=bins)
        return counts.astype(a.dtype, copy=False)


def histc(input: Tensor, bins: int = 100, min: Any = 0, max: Any = 0) -> Tensor:
    """A histogram of input's values (torch.histc): `bins` equal bins over [min, max], or over
    the data's own range when min == max (widened by 1 each way if that is one value too)."""
    _tensor("histc", "input", input)
    if not dtypes.is_floating(input.dtype):
        raise NotImplementedError(f"histc: expected a floating-point input, got {input.dtype} "
                                  "(\"histogram_cpu\" not implemented)")
    if bins <= 0:
        raise RuntimeError(f"histc: bins must be > 0, but got {bins}")
    lo, hi = float(min), float(max)
    if lo > hi:
        raise RuntimeError(f"histc: max must be larger than min (got min={min}, max={max})")
    if lo == hi and input.numel():
        a = input.array
        lo, hi = float(_host_scalar(a.min())), float(_host_scalar(a.max()))
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"histc: range of [{lo:g}, {hi:g}] is not finite")
    return Histc.apply(input, bins=int(bins), lo=lo, hi=hi)


class Bincount(Op):
    op_name, differentiable = "bincount", False

    @staticmethod
    def forward(ctx, x, weights, length):
        xp = x._xp
        if weights is None:
            return xp.bincount(x.array, minlength=length).astype(np.int64, copy=False)
        w = weights.array
        # NOTE: as torch: float32 and float64 weights keep their dtype, all others give float64
        dt = w.dtype if w.dtype in (dtypes.float32, dtypes.float64) else dtypes.float64
        return xp.bincount(x.array, weights=w.astype(np.float64), minlength=length).astype(
            dt, copy=False)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each non-negative int occurs in the 1-d input (torch.bincount), or the sum
    of its weights; max(input) + 1 counts, at least minlength. int64 counts, or the weights'
    float dtype (float64 for integer weights)."""
    _tensor("bincount", "input", input)
    if input.dtype.kind not in "iu":
        raise NotImplementedError(f"bincount: expected an integer input, got {input.dtype}")
    if minlength < 0:
        raise RuntimeError(f"bincount: minlength should be >= 0, got {minlength}")
    if input.ndim != 1:
        raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs (got "
                           f"shape {tuple(input.shape)})")
    if weights is not None:
        _tensor("bincount", "weights", weights)
        if tuple(weights.shape) != tuple(input.shape):
            raise RuntimeError(f"bincount: weights should be 1-d and have the same length as "
                               f"input (weights shape {tuple(weights.shape)}, input shape "
                               f"{tuple(input.shape)})")
    length = int(minlength)
    if input.numel():
        a = input.array
        low, high = int(_host_scalar(a.min())), int(_host_scalar(a.max()))
        if low < 0:
            raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs (got "
                               f"the value {low})")
        length = max(length, high + 1)
    return Bincount.apply(input, weights, length=length)


class SearchSorted(Op):
    """Where each value would go in the sorted last dim of `sequence` to keep it sorted
    (torch.searchsorted): the first such place (side 'left') or the last ('right'). A 1-d
    sequence serves every value; else each row of values searches its own row of the
    sequence (`_row_search`)."""

    op_name, differentiable = "searchsorted", False

    @staticmethod
    def forward(ctx, sequence, values, side, out_dtype, sorter):
        xp = sequence._xp
        seq = sequence.array
        dt = np.result_type(seq.dtype, values.array.dtype)
        seq, v = seq.astype(dt, copy=False), values.array.astype(dt, copy=False)
        if sorter is not None:
            seq = xp.take_along_axis(seq, sorter.array, axis=-1)
        if seq.ndim == 1:
            out = xp.searchsorted(seq, v, side=side)
        else:
            batch = math.prod(seq.shape[:-1])
            out = _row_search(xp, seq.reshape(batch, seq.shape[-1]),
                              v.reshape(batch, v.shape[-1]), side).reshape(v.shape)
        if side == "left" and dtypes.is_floating(dt):
            # NOTE: torch puts a NaN value after everything, the sequence's NaNs too (NumPy's
            # left search puts it before them)
            out = xp.where(xp.isnan(v), seq.shape[-1], out)
        return out.astype(out_dtype, copy=False)


def _row_search(xp, rows, values, side: str):
    """searchsorted of each row of `values` in the same row of `rows` (2-D arrays), all rows
    at once: each row's sequence and values are sorted together by one stable argsort, the
    values placed before equal sequence elements for side 'left' and after them for 'right';
    a value's position is then the count of sequence elements sorted before it."""
    r, n = rows.shape
    seq_first = side == "right"
    keys = xp.concatenate([rows, values] if seq_first else [values, rows], axis=1)
    is_seq = xp.zeros(keys.shape, np.int64)
    if seq_first:
        is_seq[:, :n] = 1
    else:
        is_seq[:, values.shape[1]:] = 1
    if keys.dtype == dtypes.bfloat16:  # NOTE: CuPy 14.2's sorts have no bfloat16
        keys = keys.astype(dtypes.float32)
    order = xp.argsort(keys, axis=1, kind="stable")
    counts = xp.empty(keys.shape, np.int64)
    counts[xp.arange(r)[:, None], order] = xp.cumsum(xp.take_along_axis(is_seq, order, 1), 1)
    return counts[:, n:] if seq_first else counts[:, :values.shape[1]]


def _shape_list(t: Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def searchsorted(sorted_sequence: Tensor, input: Any, *, out_int32: bool = False,
                 right: bool = False, side: str | None = None,
                 sorter: Tensor | None = None) -> Tensor:
    """Insertion points of `input` in `sorted_sequence` along its last dim (torch.searchsorted):
    side 'left' (right=False) gives the first, 'right' the last; `sorter` holds the indices
    that sort an unsorted sequence. int64 positions, or int32 with out_int32."""
    op = "searchsorted"
    _tensor(op, "sorted_sequence", sorted_sequence)
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but "
                               f"got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, "
                               "got side of left while right was True")
    side = side or ("right" if right else "left")
    if sorted_sequence.ndim == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive "
                           "dimension, but got 0 dimension")
    scalar = isinstance(input, Number)
    if scalar:
        if sorted_sequence.ndim != 1:
            raise RuntimeError(f"torch.searchsorted(): input value can be a scalar only when "
                               f"boundaries tensor dimension is 1, but we got boundaries tensor "
                               f"dim({sorted_sequence.ndim})")
        input = Tensor._wrap(sorted_sequence._xp.asarray(
            input, dtype=dtypes.result_type([sorted_sequence.dtype], [], [input])))
    _tensor(op, "input", input)
    seq_shape, val_shape = tuple(sorted_sequence.shape), tuple(input.shape)
    if len(seq_shape) > 1 and (len(val_shape) != len(seq_shape)
                               or seq_shape[:-1] != val_shape[:-1]):
        raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or "
                           f"the first N-1 dimensions of boundaries tensor and input value "
                           f"tensor must match, but we got boundaries tensor "
                           f"{_shape_list(sorted_sequence)} and input value tensor "
                           f"{_shape_list(input)}")
    if sorter is not None:
        _tensor(op, "sorter", sorter)
        if tuple(sorter.shape) != seq_shape:
            raise RuntimeError(f"torch.searchsorted(): boundary and sorter must have the same "
                               f"size, but got boundary tensor {_shape_list(sorted_sequence)} "
                               f"and got sorter tensor {_shape_list(sorter)}")
        if sorter.dtype != dtypes.int64:
            raise RuntimeError(f"torch.searchsorted(): sorter must be a tensor of long dtype "
                               f"but got {sorter.dtype}")
        if sorter.numel():
            a = sorter.array
            low, high = int(_host_scalar(a.min())), int(_host_scalar(a.max()))
            if low < 0 or high >= seq_shape[-1]:
                raise RuntimeError(f"torch.searchsorted(): sorter index out of range (got "
                                   f"indices in [{low}, {high}] for size {seq_shape[-1]})")
    out_dtype = np.dtype(np.int32 if out_int32 else np.int64)
    return SearchSorted.apply(sorted_sequence, input, side=side, out_dtype=out_dtype,
                              sorter=sorter)


def bucketize(input: Any, boundaries: Tensor, *, out_int32: bool = False,
              right: bool = False) -> Tensor:
    """The bucket of each input value among the 1-d sorted `boundaries` (torch.bucketize):
    i with boundaries[i-1] < x <= boundaries[i], or boundaries[i-1] <= x < boundaries[i]
    with right=True (searchsorted of the values, its `right` the other way round)."""
    _tensor("bucketize", "boundaries", boundaries)
    if boundaries.ndim != 1:
        raise RuntimeError(f"bucketize: boundaries tensor must be 1 dimension, but got "
                           f"dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)
