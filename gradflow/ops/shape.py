"""Shape ops, each a view of its input (`is_view`) as in PyTorch: reshape/view (and
view(dtype)), permute/transpose/movedim, squeeze/unsqueeze/flatten/unflatten, expand and
broadcasting, narrow, unbind, unfold, diagonal and meshgrid; also sum_to (expand's adjoint),
contiguous, and the per-channel view the normalisations broadcast with. The layout ops that
copy (flip, roll, repeat, tril, diag...) are in ops/layout.py; tensor_split and the NumPy-style
splits and stacks in ops/split_stack.py."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import dtypes
from ..autograd.function import Op
from ..backend import array_module
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .util import normalize_dim

VIEW_ERROR = ("view size is not compatible with input tensor's size and stride (at least one "
              "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
_MUST_VIEW = frozenset({"view", "view_as", "unflatten"})  # callers that may never copy


def _sizes(op: str, args: tuple) -> tuple:
    """Accept `f(2, 3)` and `f((2, 3))` alike, as PyTorch does."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for a in args:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: sizes must be ints, got {args!r}")
    return tuple(int(a) for a in args)


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


def view_strides(shape: tuple, strides: tuple, new_shape: tuple) -> tuple | None:
    """The strides a view of `new_shape` has over memory laid out as (`shape`, `strides`), or
    None where no view can express it (PyTorch's computeStride, aten/src/ATen/TensorUtils.cpp).

    NOTE: dims can merge only within a chunk of dims that are contiguous with each other
    (stride[d - 1] == size[d] * stride[d]); the new dims are matched to the old chunks from
    the right, and each chunk must be covered exactly. Size-1 dims fit anywhere.
    """
    if not shape:
        return (1,) * len(new_shape)
    numel = 1
    for s in shape:
        numel *= s
    if numel == 0:
        if tuple(shape) == tuple(new_shape):
            return tuple(strides)
        out, step = [], 1
        for s in reversed(new_shape):
            out.append(step)
            step *= max(s, 1)
        return tuple(reversed(out))
    new = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_stride = strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * chunk_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new[view_d] = view_numel * chunk_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_stride = strides[d - 1]
                tensor_numel = view_numel = 1
    return tuple(new) if view_d == -1 else None


class Reshape(LinearOp):
    """Same values in a new shape, copied where no view can hold them; its own adjoint."""

    op_name, params = "reshape", ("shape",)

    @staticmethod
    def compute(a, shape):
        return a.reshape(shape)


adjoints(Reshape, Reshape)


class View(Reshape):
    """A reshape that the input's strides allow without a copy (checked by `reshape`); NumPy's
    and CuPy's reshape then return a view, by the same rule as `view_strides`."""

    op_name, is_view = "view", True


class Permute(Op):
    op_name, is_view = "permute", True

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
    """Broadcast to `shape` without copying (a read-only view); its adjoint sums back."""

    op_name, params, is_view = "expand", ("shape",), True

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


class Narrow(LinearOp):
    """x[..., start:start + length, ...] along `dim`: a view; its adjoint pads with zeros."""

    op_name, params, is_view = "narrow", ("dim", "start", "length"), True

    @staticmethod
    def compute(a, dim, start, length):
        return a[(slice(None),) * dim + (slice(start, start + length),)]


class NarrowBackward(LinearOp):
    op_name, params = "narrow_backward", ("shape", "dim", "start", "length")

    @staticmethod
    def compute(g, shape, dim, start, length):
        out = array_module(g).zeros(shape, g.dtype)
        out[(slice(None),) * dim + (slice(start, start + length),)] = g
        return out


adjoints(Narrow, NarrowBackward)


class Unbind(Op):
    """The slices x[..., i, ...] along `dim`, each a view; backward stacks their gradients."""

    op_name, is_view = "unbind", True

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim, ctx.shape = dim, x.shape
        lead = (slice(None),) * dim
        return tuple(x.array[lead + (i,)] for i in range(x.shape[dim]))

    @staticmethod
    def backward(ctx, *grads):
        from .index import stack  # NOTE: index.py imports this module
        ref = next(g for g in grads if g is not None)
        shape = ctx.shape[:ctx.dim] + ctx.shape[ctx.dim + 1:]
        grads = [Tensor._wrap(ref._xp.zeros(shape, ref.dtype)) if g is None else g
                 for g in grads]
        return stack(grads, ctx.dim)


class Unfold(LinearOp):
    """Windows of `size` every `step` along `dimension`, as a new last dim: a strided view
    (windows overlap where step < size). Its adjoint adds each window back (`UnfoldBackward`)."""

    op_name, params, is_view = "unfold", ("dimension", "size", "step"), True

    @staticmethod
    def compute(a, dimension, size, step):
        d, st = dimension, a.strides
        count = (a.shape[d] - size) // step + 1
        shape = a.shape[:d] + (count,) + a.shape[d + 1:] + (size,)
        strides = st[:d] + (st[d] * step,) + st[d + 1:] + (st[d],)
        return strided_view(a, shape, strides)


def strided_view(a: Any, shape: tuple, strides: tuple) -> Any:
    """A view of `a`'s memory as (`shape`, `strides` in bytes) from a's first element, writable
    where `a` is. On NumPy it is made over the memory's owner, so its `.base` is the owner, as
    for other views (as_strided's `.base` is a wrapper that hides it)."""
    xp = array_module(a)
    owner = a if a.base is None else a.base
    if xp is not np or not isinstance(owner, np.ndarray) or not (
            owner.flags.c_contiguous or owner.flags.f_contiguous):
        return xp.lib.stride_tricks.as_strided(a, shape, strides)
    offset = a.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    return np.ndarray(shape, a.dtype, buffer=owner, offset=offset, strides=strides)


class UnfoldBackward(LinearOp):
    op_name, params = "unfold_backward", ("shape", "dimension", "size", "step")

    @staticmethod
    def compute(g, shape, dimension, size, step):
        out = array_module(g).zeros(shape, g.dtype)
        lead, count = (slice(None),) * dimension, g.shape[dimension]
        # NOTE: offset j of every window at once: the targets of one offset are distinct (step
        # >= 1), so `+=` is exact without a scatter-add; size rounds in all.
        for j in range(size):
            out[lead + (slice(j, j + step * (count - 1) + 1, step),)] += g[..., j]
        return out


adjoints(Unfold, UnfoldBackward)


def _diagonal_geometry(shape: tuple, offset: int, dim1: int, dim2: int) -> tuple:
    """(length, first row, first column) of diagonal `offset` of dims (dim1, dim2)."""
    n1, n2 = shape[dim1], shape[dim2]
    if offset >= 0:
        return max(0, min(n1, n2 - offset)), 0, offset
    return max(0, min(n1 + offset, n2)), -offset, 0


class Diagonal(LinearOp):
    """The diagonal `offset` of dims (dim1, dim2), as the last dim of a writable view; its
    adjoint writes a gradient onto the diagonal of zeros (`DiagonalScatter`)."""

    op_name, params, is_view = "diagonal", ("offset", "dim1", "dim2"), True

    @staticmethod
    def compute(a, offset, dim1, dim2):
        xp = array_module(a)
        out = xp.diagonal(a, offset, dim1, dim2)
        if xp is np and a.flags.writeable:
            # NOTE: NumPy's diagonal is a read-only view only by a deprecated default; torch
            # lets users write through x.diagonal()
            out.flags.writeable = True
        return out


class DiagonalScatter(LinearOp):
    """Zeros of `shape` with `g` (whose last dim runs along the diagonal) on diagonal
    `offset` of dims (dim1, dim2): diagonal's adjoint, and diag_embed."""

    op_name, params = "diagonal_scatter", ("shape", "offset", "dim1", "dim2")

    @staticmethod
    def compute(g, shape, offset, dim1, dim2):
        xp = array_module(g)
        out = xp.zeros(shape, g.dtype)
        length, row, col = _diagonal_geometry(shape, offset, dim1, dim2)
        steps = xp.arange(length)
        xp.moveaxis(out, (dim1, dim2), (-2, -1))[..., steps + row, steps + col] = g
        return out


adjoints(Diagonal, DiagonalScatter)


class ViewDtype(Op):
    """The same memory read as another dtype (torch's Tensor.view(dtype)); no gradient."""

    op_name, is_view, differentiable = "view", True, False

    @staticmethod
    def forward(ctx, x, dtype):
        return x.array.view(dtype)


# -- reshaping --------------------------------------------------------------------------------
def reshape(x: Tensor, *shape: Any, op: str = "reshape") -> Tensor:
    """Same values in a new shape; one dimension may be -1 (torch.reshape: a view where the
    strides allow one, else a copy). `op` names the caller in errors; view, view_as and
    unflatten never copy, and raise PyTorch's error where a view is impossible."""
    a = x.array
    in_shape = a.shape
    shape = _infer_shape(op, _sizes(op, shape), a.size, in_shape)
    if shape == in_shape:
        return x
    if a.flags.c_contiguous or view_strides(in_shape, a.strides, shape) is not None:
        return View.apply(x, shape=shape)
    if op in _MUST_VIEW:
        raise RuntimeError(f"{op}: {VIEW_ERROR}")
    return Reshape.apply(x, shape=shape)


def view(x: Tensor, *shape: Any) -> Tensor:
    """torch.Tensor.view: a view in a new shape (never a copy), or `view(dtype)`: the same
    memory read as `dtype`, whose element size may differ (the last dim then scales)."""
    if len(shape) == 1 and isinstance(shape[0], (np.dtype, type, str)):
        return view_dtype(x, shape[0])
    return reshape(x, *shape, op="view")


def view_dtype(x: Tensor, dtype: Any) -> Tensor:
    dt, a = dtypes.as_dtype(dtype), x.array
    if dt.itemsize != a.itemsize:
        name = f"view {a.dtype} as {dt} (different element sizes)"
        if a.ndim == 0:
            raise RuntimeError(f"view: self.dim() cannot be 0 to {name}")
        if a.strides[-1] != a.itemsize:
            raise RuntimeError(f"view: self.stride(-1) must be 1 to {name}, but got "
                               f"{a.strides[-1] // a.itemsize}")
        ratio = dt.itemsize // a.itemsize
        if ratio > 1 and a.shape[-1] % ratio:
            raise RuntimeError(f"view: self.size(-1) must be divisible by {ratio} to {name}, "
                               f"but got {a.shape[-1]}")
    return ViewDtype.apply(x, dtype=dt)


def view_as(x: Tensor, other: Tensor) -> Tensor:
    return reshape(x, tuple(other.shape), op="view_as")


def reshape_as(x: Tensor, other: Tensor) -> Tensor:
    return reshape(x, tuple(other.shape), op="reshape_as")


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


def unflatten(x: Tensor, dim: int, sizes: Any) -> Tensor:
    """Split dim `dim` into `sizes` (one may be -1): a view (torch.unflatten)."""
    sizes = _sizes("unflatten", (sizes,))
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    d = normalize_dim("unflatten", dim, x.ndim)
    n, known = x.shape[d], 1
    for s in sizes:
        known *= s if s != -1 else 1
    if sizes.count(-1) > 1 or (-1 in sizes and (known == 0 or n % known)) or (
            -1 not in sizes and known != n):
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                           f"size of dim {dim} ({n}) in the input tensor")
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(x, tuple(x.shape[:d]) + sizes + tuple(x.shape[d + 1:]), op="unflatten")


# -- reordering dims --------------------------------------------------------------------------
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


def _swap(op: str, x: Tensor, dim0: int, dim1: int) -> Tensor:
    axes = list(range(x.ndim))
    d0, d1 = normalize_dim(op, dim0, x.ndim), normalize_dim(op, dim1, x.ndim)
    if x.ndim < 2 and d0 == d1:
        return x
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Permute.apply(x, dims=tuple(axes))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    return _swap("transpose", x, dim0, dim1)


def swapaxes(x: Tensor, axis0: int, axis1: int) -> Tensor:
    """torch.swapaxes: transpose under NumPy's name."""
    return _swap("swapaxes", x, axis0, axis1)


def swapdims(x: Tensor, dim0: int, dim1: int) -> Tensor:
    return _swap("swapdims", x, dim0, dim1)


def t(x: Tensor) -> Tensor:
    """Transpose a tensor of at most 2 dimensions (torch.t)."""
    if x.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but got {x.ndim}D "
                           f"(shape {tuple(x.shape)})")
    return x if x.ndim < 2 else transpose(x, 0, 1)


def _dim_list(op: str, dims: Any, ndim: int, what: str) -> list:
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    out = [normalize_dim(op, d, ndim) for d in dims]
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: repeated dim in `{what}` ({dims})")
    return out


def movedim(x: Tensor, source: Any, destination: Any, op: str = "movedim") -> Tensor:
    """Move dims `source` to positions `destination`, the others keeping their order
    (torch.movedim, alias moveaxis)."""
    src = list(source) if isinstance(source, (tuple, list)) else [source]
    dst = list(destination) if isinstance(destination, (tuple, list)) else [destination]
    if len(src) != len(dst):
        raise RuntimeError(f"{op}: Invalid source or destination dims: source ({src} dims) "
                           f"should contain the same number of dims as destination ({dst} "
                           f"dims)")
    src = _dim_list(op, src, x.ndim, "source")
    dst = _dim_list(op, dst, x.ndim, "destination")
    if x.ndim == 0:  # NOTE: a 0-d tensor takes dim 0 or -1 and has none to move
        return Permute.apply(x, dims=())
    order: list = [None] * x.ndim
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(x.ndim) if i not in src)
    dims = tuple(next(rest) if o is None else o for o in order)
    return Permute.apply(x, dims=dims)


def moveaxis(x: Tensor, source: Any, destination: Any) -> Tensor:
    return movedim(x, source, destination, op="moveaxis")


# -- broadcasting -----------------------------------------------------------------------------
def _expand(op: str, x: Tensor, sizes: tuple) -> Tensor:
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise RuntimeError(f"{op}: the number of sizes provided ({len(sizes)}) must be "
                           f"greater or equal to the number of dimensions in the tensor "
                           f"({x.ndim})")
    target = []
    for i, s in enumerate(sizes):
        own = x.shape[i - lead] if i >= lead else None
        if s == -1:
            if own is None:
                raise RuntimeError(f"{op}: -1 is not allowed in a leading, new dimension "
                                   f"(sizes {sizes})")
            s = own
        if own is not None and own != s and own != 1:
            raise RuntimeError(f"{op}: the expanded size of the tensor ({s}) must match the "
                               f"existing size ({own}) at non-singleton dimension {i}.  Target "
                               f"sizes: {list(sizes)}.  Tensor sizes: {list(x.shape)}")
        target.append(s)
    shape = tuple(target)
    return x if shape == x.shape else Expand.apply(x, shape=shape)


def expand(x: Tensor, *sizes: Any) -> Tensor:
    """Broadcast size-1 dimensions to `sizes` without copying; -1 keeps a size."""
    return _expand("expand", x, _sizes("expand", sizes))


def expand_as(x: Tensor, other: Tensor) -> Tensor:
    return _expand("expand_as", x, tuple(other.shape))


def broadcast_to(x: Tensor, size: Any) -> Tensor:
    """torch.broadcast_to: expand to `size` (-1 keeps a size), a read-only view."""
    return _expand("broadcast_to", x, _sizes("broadcast_to", (size,)))


def broadcast_shapes(op: str, *shapes: tuple) -> tuple:
    """The shape that all `shapes` broadcast to, by PyTorch's (NumPy's) rule."""
    ndim = max((len(s) for s in shapes), default=0)
    out, source = [1] * ndim, [0] * ndim
    for k, s in enumerate(shapes):
        for i, n in enumerate(s, ndim - len(s)):
            if n == 1:
                continue
            if out[i] != 1 and n != out[i]:
                raise RuntimeError(f"{op}: the size of tensor {source[i]} ({out[i]}) must "
                                   f"match the size of tensor {k} ({n}) at non-singleton "
                                   f"dimension {i}")
            out[i], source[i] = n, k
    return tuple(out)


def broadcast_tensors(*tensors: Tensor) -> tuple:
    """The tensors expanded to their common broadcast shape, as views (torch's)."""
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"broadcast_tensors: expected Tensors, got {type(t).__name__} at "
                            f"position {i}")
    shape = broadcast_shapes("broadcast_tensors", *(tuple(t.shape) for t in tensors))
    return tuple(_expand("broadcast_tensors", t, shape) for t in tensors)


def sum_to(x: Tensor, shape: tuple) -> Tensor:
    """Sum `x` down to a shape it was broadcast from (used by broadcasting backward)."""
    shape = tuple(shape)
    return x if x.array.shape == shape else SumTo.apply(x, shape=shape)


def contiguous(x: Tensor) -> Tensor:
    return x if x.is_contiguous() else Contiguous.apply(x)


# -- parts: narrow, unbind, unfold, diagonal, tensor_split ------------------------------------
def _int(op: str, name: str, value: Any) -> int:
    """An int argument; a one-element integer tensor is read as its value (a host read)."""
    if isinstance(value, Tensor) and value.numel() == 1 and value.dtype.kind in "iu":
        return int(value.item())
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    return int(value)


def narrow(x: Tensor, dim: int, start: Any, length: Any) -> Tensor:
    """Elements start .. start + length - 1 of dim `dim`, a view (torch.narrow); a negative
    start counts from the end."""
    if x.ndim == 0:
        raise RuntimeError("narrow: narrow() cannot be applied to a 0-dim tensor.")
    d = normalize_dim("narrow", dim, x.ndim)
    start, length = _int("narrow", "start", start), _int("narrow", "length", length)
    n = x.shape[d]
    if length < 0:
        raise RuntimeError(f"narrow: length must be non-negative, got {length}")
    if not -n <= start <= n:
        raise IndexError(f"narrow: start out of range (expected to be in range of [{-n}, {n}], "
                         f"but got {start})")
    start = start + n if start < 0 else start
    if start + length > n:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension "
                           f"size ({n}).")
    return Narrow.apply(x, dim=d, start=start, length=length)


def unbind(x: Tensor, dim: int = 0) -> tuple:
    """The slices along `dim`, each a view without that dim (torch.unbind)."""
    if x.ndim == 0:
        raise IndexError("unbind: Dimension specified as 0 but tensor has no dimensions")
    d = normalize_dim("unbind", dim, x.ndim)
    return Unbind.apply(x, dim=d) if x.shape[d] else ()


def unfold(x: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """torch.Tensor.unfold: every window of `size` elements along `dimension`, `step` apart,
    as a new last dim of a strided view."""
    d = normalize_dim("unfold", dimension, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if size < 0:
        raise RuntimeError(f"unfold: size is {size} but must be >= 0")
    if size > n:
        raise RuntimeError(f"unfold: maximum size for tensor at dimension {d} is {n} but size "
                           f"is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold: step is {step} but must be > 0")
    if x.ndim == 0:  # NOTE: torch gives a 0-d tensor one window of `size` (0 or 1) elements
        return reshape(Unfold.apply(reshape(x, (1,)), dimension=0, size=size, step=1), (size,))
    return Unfold.apply(x, dimension=d, size=size, step=step)


def _diagonal_dims(op: str, ndim: int, dim1: int, dim2: int) -> tuple:
    d1, d2 = normalize_dim(op, dim1, ndim), normalize_dim(op, dim2, ndim)
    if d1 == d2:
        raise RuntimeError(f"{op}: diagonal dimensions cannot be identical {dim1}, {dim2}")
    return d1, d2


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """Diagonal `offset` of the (dim1, dim2) planes, as the last dim of a writable view
    (torch.diagonal); offset > 0 is above the main diagonal."""
    d1, d2 = _diagonal_dims("diagonal", x.ndim, dim1, dim2)
    return Diagonal.apply(x, offset=int(offset), dim1=d1, dim2=d2)


# -- grids ----------------------------------------------------------------------------------
def _tensor_args(op: str, tensors: tuple) -> list:
    """`f(a, b)` and `f([a, b])` alike, each a Tensor."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__} at position {i}")
    return list(tensors)


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple:
    """Coordinate grids from 0-d or 1-D tensors, each expanded (a view) to the grid's shape
    (torch.meshgrid); indexing 'ij' (the default, with torch's warning when not given) puts
    the first tensor along dim 0, 'xy' along dim 1."""
    inputs = _tensor_args("meshgrid", tensors)
    if indexing is None:
        warnings.warn("meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'meshgrid: indexing must be one of "xy" or "ij", but received: '
                           f'{indexing}')
    if not inputs:
        raise RuntimeError("meshgrid: expects a non-empty TensorList")
    for t in inputs:
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: Expected 0D or 1D tensor in the tensor list but got "
                               f"a tensor of shape {tuple(t.shape)}")
        if t.dtype != inputs[0].dtype:
            raise RuntimeError(f"meshgrid: expects all tensors to have the same dtype, got "
                               f"{inputs[0].dtype} and {t.dtype}")
        if t.device != inputs[0].device:
            raise RuntimeError(f"meshgrid: expects all tensors to be on the same device, got "
                               f"{inputs[0].device} and {t.device}")
    # NOTE: 'xy' swaps the first two tensors' axes: grids of shape (n1, n0, n2, ...)
    n = len(inputs)
    axes = [1, 0, *range(2, n)] if indexing == "xy" and n >= 2 else list(range(n))
    sizes = [0] * n
    for t, axis in zip(inputs, axes):
        sizes[axis] = t.numel()
    return tuple(expand(reshape(t, tuple(-1 if k == axis else 1 for k in range(n))), sizes)
                 for t, axis in zip(inputs, axes))


# -- select and ravel (round 2) ---------------------------------------------------------------
def select(x: Tensor, dim: int, index: Any) -> Tensor:
    """The slice at `index` along `dim`, without that dim: a view (torch.select, x[..., i,
    ...]); a negative index counts from the end."""
    if x.ndim == 0:
        raise IndexError("select: select() cannot be applied to a 0-dim tensor.")
    d = normalize_dim("select", dim, x.ndim)
    i, n = _int("select", "index", index), x.shape[d]
    if not -n <= i < n:
        raise IndexError(f"select(): index {i} out of range for tensor of size "
                         f"{list(x.shape)} at dimension {d}")
    return squeeze(Narrow.apply(x, dim=d, start=i % n, length=1), d)


def ravel(x: Tensor) -> Tensor:
    """The elements as one dim, in row-major order (torch.ravel): a view where the strides
    allow, else a copy."""
    return reshape(x, (-1,))
