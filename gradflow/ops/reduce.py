"""Reductions: sum, prod, mean, max/min (with indices along a dim), amax/amin, argmax/argmin,
all/any, and aminmax, count_nonzero, nansum, nanmean, var, std, var_mean, std_mean, logsumexp
composed from them. Every public function takes NumPy's `axis=`/`keepdims=`, as torch's do.

The extremes are three ops, each serving both directions by its `largest` flag:
`ExtremeOverAxes` (amax/amin), `ExtremeAlongDim` (max/min along a dim, with indices) and
`ExtremeIndex` (argmax/argmin); `max(x, tensor)` is elementwise.BinaryExtreme (maximum).
"""
from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any, Callable

import numpy as np

from .. import dtypes
from ..autograd.function import Op
from ..tensor import Tensor
from .elementwise import cast, exp, isnan, log, logical_not, maximum, minimum, ne, sqrt, where
from .shape import expand, reshape, unsqueeze
from .util import normalize_dim, normalize_dims, numpy_names

values_indices = namedtuple("values_indices", ["values", "indices"])
min_max = namedtuple("min_max", ["min", "max"])


def _keep_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _spread(g: Tensor, in_shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """Broadcast a reduced gradient back over the reduced axes."""
    if not keepdim:
        g = reshape(g, _keep_shape(in_shape, axes))
    return expand(g, in_shape)


def _check_nonempty(op: str, x: Tensor, axes: tuple) -> None:
    if builtins.any(x.shape[a] == 0 for a in axes) or (not axes and x.numel() == 0):
        raise RuntimeError(f"{op}: cannot reduce over an empty dimension (input shape "
                           f"{tuple(x.shape)}, dims {axes}); the operation has no identity")


_add_reduce: Callable[..., Any] = np.add.reduce


def _summed(a: Any, axes: tuple, keepdim: bool, dtype: Any = None) -> Any:
    """`a.sum(axes)`; on NumPy through `add.reduce` called here, so that a RuntimeWarning
    (inf + -inf) is raised in gradflow's frame, where the import-time filter silences it as
    PyTorch is silent (ndarray.sum runs in NumPy's own Python code, out of the filter's reach)."""
    if isinstance(a, np.ndarray):
        return _add_reduce(a, axis=axes, dtype=dtype, keepdims=keepdim)
    return a.sum(axis=axes, dtype=dtype, keepdims=keepdim)


class Sum(Op):
    op_name = "sum"

    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype):
        ctx.in_shape, ctx.axes, ctx.keepdim = x.array.shape, axes, keepdim
        if dtype is None and x.array.dtype.kind in "biu":
            dtype = dtypes.int64
        target = x.array.dtype if dtype is None else np.dtype(dtype)
        wide = dtypes.accumulation(target)
        if wide != target:  # NOTE: float16/bfloat16 sum in float32, rounded once, as torch's
            return _summed(x.array, axes, keepdim, wide).astype(target)
        return _summed(x.array, axes, keepdim, dtype)

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.in_shape, ctx.axes, ctx.keepdim)


class Prod(Op):
    """The product over axes; integer and bool inputs give int64, as in PyTorch."""

    op_name, saves_outputs = "prod", True

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdim = axes, keepdim
        dtype = dtypes.int64 if x.array.dtype.kind in "biu" else None
        return x.array.prod(axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        # NOTE: d prod / d x_i is prod / x_i only where x_i != 0. At a zero it is the product of
        # the others: nonzero only when that zero is the slice's one zero. Dividing by `safe`
        # (zeros replaced by 1) keeps NaNs out of both branches of the `where`.
        x, = ctx.saved_tensors
        zero = x == 0
        safe = where(zero, 1.0, x)
        lone = Sum.apply(zero, axes=ctx.axes, keepdim=True, dtype=None) == 1
        others = where(lone, Prod.apply(safe, axes=ctx.axes, keepdim=True), 0.0)
        g = _spread(g, x.shape, ctx.axes, ctx.keepdim)
        out = _spread(ctx.outputs[0], x.shape, ctx.axes, ctx.keepdim)
        return where(zero, g * expand(others, x.shape), g * out / safe)


class Truth(Op):
    """all/any over axes: bool results, no gradient."""

    differentiable = False
    function: str

    @classmethod
    def forward(cls, ctx, x, axes, keepdim):
        return getattr(x.array, cls.function)(axis=axes, keepdims=keepdim)


class AllOf(Truth):
    op_name = function = "all"


class AnyOf(Truth):
    op_name = function = "any"


class Mean(Op):
    op_name = "mean"

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        if not dtypes.is_floating(x.dtype):
            raise RuntimeError(f"mean: could not infer output dtype; input dtype must be "
                               f"floating point, got {x.dtype}")
        ctx.in_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.count = 1
        for a in axes:
            ctx.count *= x.shape[a]
        # NOTE: as torch's: float16 and bfloat16 sum in float32; an empty mean is 0/0, NaN
        a = x.array
        total = _summed(a, axes, keepdim, dtypes.accumulation(a.dtype))
        return (total / ctx.count).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.in_shape, ctx.axes, ctx.keepdim) / builtins.max(ctx.count, 1)


# -- extremes ---------------------------------------------------------------------------------
class ExtremeOverAxes(Op):
    """amax/amin: the extreme value over axes; ties share the gradient evenly, as PyTorch's
    amax does."""

    saves_outputs = True
    largest: bool

    @classmethod
    def forward(cls, ctx, x, axes, keepdim):
        _check_nonempty(cls.op_name, x, axes)
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdim = axes, keepdim
        extreme = x.array.max if cls.largest else x.array.min
        return extreme(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        out = ctx.outputs[0]
        hit = x == _spread(out, x.shape, ctx.axes, ctx.keepdim)
        count = Sum.apply(hit, axes=ctx.axes, keepdim=True, dtype=x.dtype)
        return _spread(g, x.shape, ctx.axes, ctx.keepdim) * hit / count


class ExtremeAlongDim(Op):
    """max/min along one dim: (values, indices); the gradient goes to the first extreme, the
    one the index names."""

    saves_outputs = True
    largest: bool

    @classmethod
    def forward(cls, ctx, x, dim, keepdim):
        _check_nonempty(cls.op_name, x, (dim,))
        ctx.in_shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        xp = x._xp
        idx = xp.expand_dims(_arg_function(xp, cls.largest)(x.array, axis=dim), dim)
        values = xp.take_along_axis(x.array, idx, axis=dim)
        if not keepdim:
            idx, values = idx.squeeze(dim), values.squeeze(dim)
        return values, idx.astype(dtypes.int64, copy=False)

    @staticmethod
    def backward(ctx, g, _g_indices):
        if g is None:
            return None
        idx = ctx.outputs[1]
        if not ctx.keepdim:
            g, idx = unsqueeze(g, ctx.dim), unsqueeze(idx, ctx.dim)
        xp = idx._xp
        positions = xp.arange(ctx.in_shape[ctx.dim]).reshape(
            [-1 if i == ctx.dim else 1 for i in range(len(ctx.in_shape))])
        return expand(g, ctx.in_shape) * Tensor._wrap(positions == idx.array)


class ExtremeIndex(Op):
    """argmax/argmin: the index of the first extreme, along a dim or in the flattened input;
    an index has no gradient."""

    differentiable = False
    largest: bool

    @classmethod
    def forward(cls, ctx, x, dim, keepdim):
        fn = _arg_function(x._xp, cls.largest)
        if dim is None:
            _check_nonempty(cls.op_name, x, ())
            out = fn(x.array.reshape(-1))
            return out.reshape((1,) * x.ndim) if keepdim else out.astype(dtypes.int64)
        _check_nonempty(cls.op_name, x, (dim,))
        return fn(x.array, axis=dim, keepdims=keepdim).astype(dtypes.int64, copy=False)


def _arg_function(xp, largest: bool):
    return xp.argmax if largest else xp.argmin


class Amax(ExtremeOverAxes):
    op_name, largest = "amax", True


class Amin(ExtremeOverAxes):
    op_name, largest = "amin", False


class MaxDim(ExtremeAlongDim):
    op_name, largest = "max", True


class MinDim(ExtremeAlongDim):
    op_name, largest = "min", False


class Argmax(ExtremeIndex):
    op_name, largest = "argmax", True


class Argmin(ExtremeIndex):
    op_name, largest = "argmin", False


def with_dtype(x: Tensor, dtype: Any) -> Tensor:
    """`x` cast to a reduction's `dtype=` before it reduces, as PyTorch does; the cast's
    backward brings the gradient back in the input's dtype."""
    if dtype is None or dtypes.as_dtype(dtype) == x.dtype:
        return x
    return cast(x, dtype=dtypes.as_dtype(dtype))


@numpy_names
def sum(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    axes = normalize_dims("sum", dim, x.ndim)
    return Sum.apply(with_dtype(x, dtype), axes=axes, keepdim=keepdim, dtype=None)


@numpy_names
def prod(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """torch.prod: over every element, or along one dim (an int, as in PyTorch)."""
    axes = normalize_dims("prod", None if dim is None else normalize_dim("prod", dim, x.ndim),
                          x.ndim)
    return Prod.apply(with_dtype(x, dtype), axes=axes, keepdim=keepdim)


@numpy_names
def mean(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    axes = normalize_dims("mean", dim, x.ndim)
    return Mean.apply(with_dtype(x, dtype), axes=axes, keepdim=keepdim)


@numpy_names
def all(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return AllOf.apply(x, axes=normalize_dims("all", dim, x.ndim), keepdim=keepdim)


@numpy_names
def any(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return AnyOf.apply(x, axes=normalize_dims("any", dim, x.ndim), keepdim=keepdim)


@numpy_names
def count_nonzero(x: Tensor, dim: Any = None) -> Tensor:
    """The number of nonzero elements (int64), over every element or along `dim`."""
    return Sum.apply(ne(x, 0), axes=normalize_dims("count_nonzero", dim, x.ndim),
                     keepdim=False, dtype=None)


@numpy_names
def nansum(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """sum with NaNs counted as zero; they get no gradient (torch.nansum)."""
    axes = normalize_dims("nansum", dim, x.ndim)
    return sum(where(isnan(x), 0, x), axes, keepdim, dtype=dtype)


@numpy_names
def nanmean(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """mean of the non-NaN elements (torch.nanmean); NaN where there are none."""
    x = with_dtype(x, dtype)
    if not dtypes.is_floating(x.dtype):
        raise RuntimeError(f"nanmean: expected a floating point input, got {x.dtype}")
    count = sum(logical_not(isnan(x)), dim, keepdim)
    return nansum(x, dim, keepdim) / count


def _max_or_min(x: Tensor, dim: Any, keepdim: bool, of_two: Callable, over_axes: type[Op],
                along_dim: type[Op]):
    """max or min by what `dim` is: a tensor (the elementwise `of_two`), None (the extreme
    value `over_axes`, all of them) or a dim ((values, indices) `along_dim`)."""
    if isinstance(dim, Tensor):
        return of_two(x, dim)
    if dim is None:
        return over_axes.apply(x, axes=tuple(range(x.ndim)), keepdim=False)
    d = normalize_dim(along_dim.label(), dim, x.ndim)
    if x.ndim == 0:  # NOTE: PyTorch lets a 0-d tensor be its own max at index 0, still 0-d
        x, keepdim = reshape(x, (1,)), False
    values, indices = along_dim.apply(x, dim=d, keepdim=keepdim)
    return values_indices(values, indices)


@numpy_names
def max(x: Tensor, dim: Any = None, keepdim: bool = False):
    """Largest value; with `dim`, (values, indices) along it; with a tensor, `maximum`."""
    return _max_or_min(x, dim, keepdim, maximum, Amax, MaxDim)


@numpy_names
def min(x: Tensor, dim: Any = None, keepdim: bool = False):
    """Smallest value; with `dim`, (values, indices) along it; with a tensor, `minimum`."""
    return _max_or_min(x, dim, keepdim, minimum, Amin, MinDim)


@numpy_names
def amax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Amax.apply(x, axes=normalize_dims("amax", dim, x.ndim), keepdim=keepdim)


@numpy_names
def amin(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Amin.apply(x, axes=normalize_dims("amin", dim, x.ndim), keepdim=keepdim)


def _extreme_index(op: type[Op], x: Tensor, dim: Any, keepdim: bool) -> Tensor:
    d = None if dim is None else normalize_dim(op.label(), dim, x.ndim)
    # NOTE: a 0-d tensor takes dim 0 or -1, as in PyTorch; its only index is 0.
    return op.apply(x, dim=None if x.ndim == 0 else d, keepdim=keepdim)


@numpy_names
def argmax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _extreme_index(Argmax, x, dim, keepdim)


@numpy_names
def argmin(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _extreme_index(Argmin, x, dim, keepdim)


def aminmax(x: Tensor, *, dim: Any = None, keepdim: bool = False) -> tuple:
    """(min, max) together (torch.aminmax), over every element or along one dim (an int)."""
    axes = None if dim is None else normalize_dim("aminmax", dim, x.ndim)
    return min_max(amin(x, axes, keepdim), amax(x, axes, keepdim))


def _correction(op: str, unbiased: Any, correction: Any) -> float:
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: pass either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


@numpy_names
def var(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    """Variance with Bessel's correction by default (torch.var)."""
    c = _correction("var", unbiased, correction)
    axes = normalize_dims("var", dim, x.ndim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    centred = x - mean(x, axes, keepdim=True)
    return sum(centred * centred, axes, keepdim) / builtins.max(n - c, 0)


@numpy_names
def std(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


@numpy_names
def var_mean(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
             correction: Any = None) -> tuple:
    """(var, mean) in one call (torch.var_mean)."""
    axes = normalize_dims("var_mean", dim, x.ndim)
    return var(x, axes, unbiased, keepdim, correction=correction), mean(x, axes, keepdim)


@numpy_names
def std_mean(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
             correction: Any = None) -> tuple:
    """(std, mean) in one call (torch.std_mean)."""
    axes = normalize_dims("std_mean", dim, x.ndim)
    return std(x, axes, unbiased, keepdim, correction=correction), mean(x, axes, keepdim)


@numpy_names
def logsumexp(x: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) computed after subtracting the max, so it never overflows."""
    axes = normalize_dims("logsumexp", dim, x.ndim)
    m = amax(x.detach(), axes, keepdim=True)
    m = where(m.isfinite(), m, 0.0)
    out = log(sum(exp(x - m), axes, keepdim=True)) + m
    return out if keepdim else reshape(out, tuple(
        s for i, s in enumerate(out.shape) if i not in axes))
