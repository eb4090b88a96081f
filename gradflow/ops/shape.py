"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze/flatten, expand, sum_to,
contiguous, and the per-channel view the normalisations broadcast with. Each returns a view
where the array library can, like PyTorch."""
from __future__ import annotations

from typing import Any

from ..autograd.function import Op
from ..backend import array_module
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .util import normalize_dim


def _sizes(op: str, args: tuple) -> tuple:
    """Accept `f(2, 3)` and `f((2, 3))` alike, as PyTorch does."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if not isinstance(a, int) or isinstance(a, bool):
            raise TypeError(f"{op}: sizes must be ints, got {args!r}")
    return tuple(args)


def _infer_shape(op: str, shape: tuple, numel: int, in_shape: tuple) -> tuple:
    if shape.count(-1) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred, got shape {shape}")
    known = 1
    for s in shape:
        if s < -1:
            raise RuntimeError(f"{op}: invalid shape dimension in {shape}")
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel} "
                               f"(input shape {in_shape})")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"{op}: shape {shape} is invalid for input of size {numel} "
                           f"(input shape {in_shape})")
    return shape


class Reshape(LinearOp):
    """Same values in a new shape; its own adjoint, back to the input's shape."""

    op_name, params = "reshape", ("shape",)

    @staticmethod
    def compute(a, shape):
        return a.reshape(shape)


adjoints(Reshape, Reshape)


class Permute(Op):
    op_name = "permute"

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.array.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return permute(g, *inverse)


class Expand(LinearOp):
    """Broadcast to `shape` without copying; its adjoint sums back (`SumTo`)."""

    op_name, params = "expand", ("shape",)

    @staticmethod
    def compute(a, shape):
        return array_module(a).broadcast_to(a, shape)


class SumTo(LinearOp):
    """Sum a broadcast result back down to `shape`: the adjoint of `expand`."""

    op_name, params = "sum_to", ("shape",)

    @staticmethod
    def compute(a, shape):
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1)
        out = a.sum(axis=axes, keepdims=True) if axes else a
        return out.reshape(shape)


adjoints(Expand, SumTo)


class Contiguous(Op):
    op_name = "contiguous"

    @staticmethod
    def forward(ctx, x):
        return x._xp.ascontiguousarray(x.array)

    @staticmethod
    def backward(ctx, g):
        return g


def reshape(x: Tensor, *shape: Any, op: str = "reshape") -> Tensor:
    """Same values in a new shape; one dimension may be -1 (torch.reshape, and view: `op`
    names the caller in errors)."""
    in_shape = x.array.shape
    shape = _infer_shape(op, _sizes(op, shape), x.array.size, in_shape)
    return x if shape == in_shape else Reshape.apply(x, shape=shape)


def permute(x: Tensor, *dims: Any) -> Tensor:
    dims = _sizes("permute", dims)
    if len(dims) != x.ndim:
        raise RuntimeError(f"permute: number of dims {len(dims)} does not match the input's "
                           f"{x.ndim} dimensions (shape {tuple(x.shape)})")
    axes = tuple(normalize_dim("permute", d, x.ndim) for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of the input's "
                           f"{x.ndim} dimensions")
    return Permute.apply(x, dims=axes)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    axes = list(range(x.ndim))
    d0, d1 = normalize_dim("transpose", dim0, x.ndim), normalize_dim("transpose", dim1, x.ndim)
    if x.ndim < 2 and d0 == d1:
        return x
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Permute.apply(x, dims=tuple(axes))


def t(x: Tensor) -> Tensor:
    """Transpose a tensor of at most 2 dimensions (torch.t)."""
    if x.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but got {x.ndim}D "
                           f"(shape {tuple(x.shape)})")
    return x if x.ndim < 2 else transpose(x, 0, 1)


def squeeze(x: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dimensions (all, or those in `dim`; other sizes are left, as PyTorch)."""
    if dim is None:
        drop = {i for i, s in enumerate(x.shape) if s == 1}
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        # NOTE: a 0-d tensor takes dim 0 or -1, as torch's scalars do, and keeps its shape
        normalized = [normalize_dim("squeeze", d, max(x.ndim, 1)) for d in dims]
        drop = {d for d in normalized if x.ndim and x.shape[d] == 1}
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in drop))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    d = normalize_dim("unsqueeze", dim, x.ndim + 1)
    shape = list(x.shape)
    shape.insert(d, 1)
    return reshape(x, tuple(shape))


def channel_view(t: Tensor, ndim: int) -> Tensor:
    """A per-channel (C,) tensor shaped (1, C, 1, ...) to broadcast over (N, C, ...) inputs
    of `ndim` dimensions."""
    return reshape(t, (1, -1) + (1,) * (ndim - 2))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_dim("flatten", start_dim, x.ndim)
    e = normalize_dim("flatten", end_dim, x.ndim)
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    n = 1
    for size in x.shape[s:e + 1]:
        n *= size
    return reshape(x, tuple(x.shape[:s]) + (n,) + tuple(x.shape[e + 1:]))


def expand(x: Tensor, *sizes: Any) -> Tensor:
    """Broadcast size-1 dimensions to `sizes` without copying; -1 keeps a size."""
    sizes = _sizes("expand", sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be "
                           f"greater or equal to the number of dimensions in the tensor "
                           f"({x.ndim})")
    target = []
    for i, s in enumerate(sizes):
        own = x.shape[i - lead] if i >= lead else None
        if s == -1:
            if own is None:
                raise RuntimeError(f"expand: -1 is not allowed in a leading, new dimension "
                                   f"(sizes {sizes})")
            s = own
        if own is not None and own != s and own != 1:
            raise RuntimeError(f"expand: the expanded size of the tensor ({s}) must match the "
                               f"existing size ({own}) at non-singleton dimension {i}.  Target "
                               f"sizes: {list(sizes)}.  Tensor sizes: {list(x.shape)}")
        target.append(s)
    shape = tuple(target)
    return x if shape == x.shape else Expand.apply(x, shape=shape)


def sum_to(x: Tensor, shape: tuple) -> Tensor:
    """Sum `x` down to a shape it was broadcast from (used by broadcasting backward)."""
    shape = tuple(shape)
    return x if x.array.shape == shape else SumTo.apply(x, shape=shape)


def contiguous(x: Tensor) -> Tensor:
    return x if x.is_contiguous() else Contiguous.apply(x)
