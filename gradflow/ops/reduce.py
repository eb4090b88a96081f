"""Reductions: sum, mean, max/min (with indices along a dim), amax/amin, argmax/argmin, and
var, std, logsumexp composed from them.

The extremes are three ops, each serving both directions by its `largest` flag:
`ExtremeOverAxes` (amax/amin), `ExtremeAlongDim` (max/min along a dim, with indices) and
`ExtremeIndex` (argmax/argmin); `max(x, tensor)` is elementwise.BinaryExtreme (maximum).
"""
from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any, Callable

from .. import dtypes
from ..autograd.function import Op
from ..tensor import Tensor
from .elementwise import exp, log, maximum, minimum, sqrt, where
from .shape import expand, reshape, unsqueeze
from .util import normalize_dim, normalize_dims

values_indices = namedtuple("values_indices", ["values", "indices"])


def _keep_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _spread(g: Tensor, in_shape: tuple, axes: tuple, keepdim: bool) -> Tensor:
    """Broadcast a reduced gradient back over the reduced axes."""
    if not keepdim:
        g = reshape(g, _keep_shape(in_shape, axes))
    return expand(g, in_shape)


def _check_nonempty(op: str, x: Tensor, axes: tuple) -> None:
    if any(x.shape[a] == 0 for a in axes) or (not axes and x.numel() == 0):
        raise RuntimeError(f"{op}: cannot reduce over an empty dimension (input shape "
                           f"{tuple(x.shape)}, dims {axes}); the operation has no identity")


class Sum(Op):
    op_name = "sum"

    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype):
        ctx.in_shape, ctx.axes, ctx.keepdim = x.array.shape, axes, keepdim
        if dtype is None and x.array.dtype.kind in "biu":
            dtype = dtypes.int64
        return x.array.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.in_shape, ctx.axes, ctx.keepdim)


class Mean(Op):
    op_name = "mean"

    @staticmethod
    def forward(ctx, x, axes, keepdim):
        if x.dtype.kind != "f":
            raise RuntimeError(f"mean: could not infer output dtype; input dtype must be "
                               f"floating point, got {x.dtype}")
        ctx.in_shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.count = 1
        for a in axes:
            ctx.count *= x.shape[a]
        return x.array.mean(axis=axes, keepdims=keepdim)

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


def sum(x: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    axes = normalize_dims("sum", dim, x.ndim)
    dt = None if dtype is None else dtypes.as_dtype(dtype)
    return Sum.apply(x, axes=axes, keepdim=keepdim, dtype=dt)


def mean(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Mean.apply(x, axes=normalize_dims("mean", dim, x.ndim), keepdim=keepdim)


def _max_or_min(x: Tensor, dim: Any, keepdim: bool, of_two: Callable, over_axes: type[Op],
                along_dim: type[Op]):
    """max or min by what `dim` is: a tensor (the elementwise `of_two`), None (the extreme
    value `over_axes`, all of them) or a dim ((values, indices) `along_dim`)."""
    if isinstance(dim, Tensor):
        return of_two(x, dim)
    if dim is None:
        return over_axes.apply(x, axes=tuple(range(x.ndim)), keepdim=False)
    d = normalize_dim(along_dim.name(), dim, x.ndim)
    if x.ndim == 0:  # NOTE: PyTorch lets a 0-d tensor be its own max at index 0, still 0-d
        x, keepdim = reshape(x, (1,)), False
    values, indices = along_dim.apply(x, dim=d, keepdim=keepdim)
    return values_indices(values, indices)


def max(x: Tensor, dim: Any = None, keepdim: bool = False):
    """Largest value; with `dim`, (values, indices) along it; with a tensor, `maximum`."""
    return _max_or_min(x, dim, keepdim, maximum, Amax, MaxDim)


def min(x: Tensor, dim: Any = None, keepdim: bool = False):
    """Smallest value; with `dim`, (values, indices) along it; with a tensor, `minimum`."""
    return _max_or_min(x, dim, keepdim, minimum, Amin, MinDim)


def amax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Amax.apply(x, axes=normalize_dims("amax", dim, x.ndim), keepdim=keepdim)


def amin(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return Amin.apply(x, axes=normalize_dims("amin", dim, x.ndim), keepdim=keepdim)


def _extreme_index(op: type[Op], x: Tensor, dim: Any, keepdim: bool) -> Tensor:
    d = None if dim is None else normalize_dim(op.name(), dim, x.ndim)
    # NOTE: a 0-d tensor takes dim 0 or -1, as in PyTorch; its only index is 0.
    return op.apply(x, dim=None if x.ndim == 0 else d, keepdim=keepdim)


def argmax(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _extreme_index(Argmax, x, dim, keepdim)


def argmin(x: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    return _extreme_index(Argmin, x, dim, keepdim)


def _correction(op: str, unbiased: Any, correction: Any) -> float:
    if unbiased is not None and correction is not None:
        raise ValueError(f"{op}: pass either unbiased or correction, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


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


def std(x: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def logsumexp(x: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) computed after subtracting the max, so it never overflows."""
    axes = normalize_dims("logsumexp", dim, x.ndim)
    m = amax(x.detach(), axes, keepdim=True)
    m = where(m.isfinite(), m, 0.0)
    out = log(sum(exp(x - m), axes, keepdim=True)) + m
    return out if keepdim else reshape(out, tuple(
        s for i, s in enumerate(out.shape) if i not in axes))
