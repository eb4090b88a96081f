"""Indexing (basic, integer-array and boolean-mask) with a scatter-add backward, in-place
item assignment, and cat/stack/split/chunk."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import determinism
from ..autograd.function import Op
from ..backend import array_module, move_array, on_device
from ..cuda import checks
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .shape import unsqueeze
from .util import normalize_dim, operand_arrays, result_dtype


def _index_items(x: Tensor, index: Any, op: str) -> tuple:
    """Turn a user index into a tuple of ints, slices, None, Ellipsis and device arrays."""
    with on_device(x.device):  # the bounds checks run on x's device, before the op's guard
        return _items_on_device(x, index, op)


def _items_on_device(x: Tensor, index: Any, op: str) -> tuple:
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []  # ints, slices, None, Ellipsis and index arrays
    for it in items:
        if isinstance(it, Tensor):
            if it.device != x.device:
                raise RuntimeError(f"{op}: indices are on {it.device} but the indexed tensor is "
                                   f"on {x.device}")
            arr = it.array
        elif isinstance(it, (list, np.ndarray)):
            arr = np.asarray(it)  # checked on the host below, then moved to x's device
            if arr.size == 0 and arr.dtype.kind == "f":
                arr = arr.astype(np.int64)
        elif it is None or it is Ellipsis or isinstance(it, slice):
            out.append(it)
            continue
        elif isinstance(it, (int, np.integer)) and not isinstance(it, bool):
            out.append(int(it))
            continue
        else:
            raise TypeError(f"{op}: unsupported index of type {type(it).__name__}; use ints, "
                            "slices, None, Ellipsis, or integer/bool tensors")
        if arr.dtype.kind not in "iub":
            raise IndexError(f"{op}: tensors used as indices must be long, int or bool tensors, "
                             f"got {arr.dtype}")
        out.append(arr)
    _check_bounds(x, out, op)
    return tuple(move_array(it, x.device) if isinstance(it, np.ndarray) else it for it in out)


def _check_bounds(x: Tensor, items: list, op: str) -> None:
    """Check every index against the dimension it addresses (CuPy would wrap silently)."""
    consumed = sum(it.ndim if _is_mask(it) else 1 for it in items
                   if it is not None and it is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"{op}: too many indices for tensor of dimension {x.ndim} (shape "
                         f"{tuple(x.shape)})")
    dim = 0
    for it in items:
        if it is None:
            continue
        if it is Ellipsis:
            dim += x.ndim - consumed
            continue
        if _is_mask(it):
            covered = tuple(x.shape[dim:dim + it.ndim])
            if tuple(it.shape) != covered:
                raise IndexError(f"{op}: boolean mask of shape {tuple(it.shape)} does not match "
                                 f"the indexed dimensions {covered} of shape {tuple(x.shape)}")
            dim += it.ndim
            continue
        if not isinstance(it, slice):
            size = x.shape[dim]
            check_range(op, "index", it, -size, size,
                        f"dimension {dim} with size {size} (tensor shape {tuple(x.shape)})")
        dim += 1


def check_range(op: str, what: str, index: Any, low: int, high: int, where: str) -> None:
    """Raise IndexError unless every entry of `index` (an int, or an integer array on any
    device) lies in [low, high). Host values are checked now; device arrays by a deferred
    check (gradflow.cuda.checks), so the host never waits for the GPU."""
    if isinstance(index, int) or array_module(index) is np:
        values = np.asarray(index)
        if values.size == 0:
            return
        lo, hi = int(values.min()), int(values.max())
        if lo < low or hi >= high:
            raise IndexError(f"{op}: {what} {lo if lo < low else hi} is out of bounds for "
                             f"{where}")
    elif index.size:
        checks.defer_range(index, low, high,
                           f"{op}: a value of the {what} is out of bounds for {where}")


def _is_mask(it: Any) -> bool:
    return hasattr(it, "dtype") and it.dtype.kind == "b"


def _is_basic(items: tuple) -> bool:
    return all(it is None or it is Ellipsis or isinstance(it, (int, slice)) for it in items)


class GetItem(LinearOp):
    """x[items]; its adjoint scatter-adds the gradient back (`IndexAddInto`)."""

    op_name, params = "getitem", ("items",)

    @staticmethod
    def compute(a, items):
        return a[items]


def scatter_add_in_order(out: Any, items: tuple, values: Any) -> None:
    """out[items] += values, summing the values that land on one element in their original
    order: a deterministic scatter-add without atomics, for NumPy or CuPy arrays.

    The targets are sorted (stably), each value gets its rank among those sharing its target,
    and one round per rank adds values whose targets are distinct, so no two collide.
    """
    xp = array_module(out)
    targets = xp.arange(out.size).reshape(out.shape)[items]
    values = xp.broadcast_to(values, targets.shape).reshape(-1)
    order = xp.argsort(targets.reshape(-1), kind="stable")
    targets, values = targets.reshape(-1)[order], values[order]
    if targets.size == 0:
        return
    starts = xp.concatenate([xp.ones(1, bool), targets[1:] != targets[:-1]])
    first = xp.nonzero(starts)[0]
    rank = xp.arange(targets.size) - first[xp.cumsum(starts) - 1]
    flat = out.reshape(-1)
    for k in range(int(rank.max()) + 1):
        chosen = rank == k
        flat[targets[chosen]] += values[chosen]


class IndexAddInto(LinearOp):
    """Scatter-add `g` into zeros of `shape` at `items`: the adjoint of indexing."""

    op_name, params = "index_backward", ("shape", "items")

    @staticmethod
    def compute(g, shape, items):
        xp = array_module(g)
        out = xp.zeros(shape, g.dtype)
        if _is_basic(items):
            out[items] = g
        elif xp is np:
            np.add.at(out, items, g)
        elif determinism.are_deterministic_algorithms_enabled():
            scatter_add_in_order(out, items, g)
        else:
            import cupyx
            cupyx.scatter_add(out, items, g)
        return out


adjoints(GetItem, IndexAddInto)


def getitem(x: Tensor, index: Any) -> Tensor:
    return GetItem.apply(x, items=_index_items(x, index, "getitem"))


def setitem(x: Tensor, index: Any, value: Any) -> None:
    """x[index] = value, in place (no graph; Tensor.__setitem__ checks that first)."""
    items = _index_items(x, index, "setitem")
    if isinstance(value, Tensor):
        if value.device != x.device:
            raise RuntimeError(f"setitem: value is on {value.device} but the tensor is on "
                               f"{x.device}")
        value = value.array
    try:
        x.array[items] = value
    except ValueError as err:
        shape = getattr(value, "shape", ())
        raise RuntimeError(f"setitem: value of shape {tuple(shape)} cannot be assigned to the "
                           f"selected region of a tensor of shape {tuple(x.shape)}: {err}"
                           ) from None


class Cat(Op):
    op_name = "cat"

    @staticmethod
    def forward(ctx, *tensors, dim):
        ctx.dim, ctx.sizes = dim, [t.shape[dim] for t in tensors]
        ctx.dtypes = [t.dtype for t in tensors]
        arrays = operand_arrays("cat", *tensors, dtype=result_dtype(*tensors))
        return tensors[0]._xp.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        pieces = split_sizes(g, ctx.sizes, ctx.dim)
        return tuple(p if p.dtype == dt else p.to(dt) for p, dt in zip(pieces, ctx.dtypes))


class Split(Op):
    op_name = "split"

    @staticmethod
    def forward(ctx, x, sizes, dim):
        ctx.dim, ctx.shape = dim, x.shape
        ctx.sizes = sizes
        lead = (slice(None),) * dim
        starts = np.cumsum((0,) + tuple(sizes[:-1]))
        return tuple(x.array[lead + (slice(int(s), int(s) + n),)] for s, n in zip(starts, sizes))

    @staticmethod
    def backward(ctx, *grads):
        parts = []
        for g, n in zip(grads, ctx.sizes):
            if g is None:
                shape = list(ctx.shape)
                shape[ctx.dim] = n
                ref = next(x for x in grads if x is not None)
                g = Tensor._wrap(array_module(ref.array).zeros(tuple(shape), ref.dtype))
            parts.append(g)
        return cat(parts, ctx.dim)


def _tensor_list(op: str, tensors: Any) -> list:
    """The tensors cat and stack join: a non-empty sequence of Tensors, as a list."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__} at position {i}")
    return tensors


def cat(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension (torch.cat)."""
    tensors = _tensor_list("cat", tensors)
    first = tensors[0]
    d = normalize_dim("cat", dim, first.ndim)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or any(a != b for k, (a, b) in
                                       enumerate(zip(t.shape, first.shape)) if k != d):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}; "
                               f"tensor 0 has shape {tuple(first.shape)} and tensor {i} has "
                               f"shape {tuple(t.shape)}")
    if len(tensors) == 1:
        return tensors[0]
    return Cat.apply(*tensors, dim=d)


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """Join equally shaped tensors along a new dimension (torch.stack)."""
    tensors = _tensor_list("stack", tensors)
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got "
                               f"{tuple(tensors[0].shape)} at entry 0 and {tuple(t.shape)} at "
                               f"entry {i}")
    d = normalize_dim("stack", dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


def split_sizes(x: Tensor, sizes: list, dim: int) -> tuple:
    return Split.apply(x, sizes=tuple(sizes), dim=dim) if len(sizes) > 1 else (x,)


def split(x: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """Split into pieces of a given size, or of the listed sizes (torch.split)."""
    d = normalize_dim("split", dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(f"split: sizes {sizes} must be non-negative and sum to the size "
                               f"{n} of dimension {d} (shape {tuple(x.shape)})")
    else:
        size = int(split_size_or_sections)
        if size <= 0:
            raise RuntimeError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
        sizes = sizes or [0]
    return split_sizes(x, sizes, d)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` nearly equal pieces, the last possibly smaller (torch.chunk)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk: expects `chunks` to be greater than 0, got {chunks}")
    d = normalize_dim("chunk", dim, x.ndim)
    n = x.shape[d]
    size = -(-n // chunks) if n else 1
    return split(x, size, d)
