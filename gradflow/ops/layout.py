"""Layout ops that copy, as PyTorch's do: repeat, tile, repeat_interleave, roll, flip (and
fliplr/flipud), rot90, tril/triu, diag and diag_embed.

Most are linear maps paired with their adjoints (`LinearOp`): flip and the triangles are
their own, roll's is the roll back, diag_embed's is diagonal. repeat (and repeat_interleave
by an int) is an expand of a reshape, copied by the reshape after, so its gradient sums the
copies; repeat_interleave by a tensor of counts is indexing.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..backend import array_module
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .elementwise import clone
from .shape import (
    Diagonal,
    DiagonalScatter,
    _diagonal_dims,
    _sizes,
    expand,
    flatten,
    reshape,
    transpose,
    unsqueeze,
)
from .util import normalize_dim


class Flip(LinearOp):
    """Reverse the order along `dims`, into a fresh array; its own adjoint."""

    op_name, params = "flip", ("dims",)

    @staticmethod
    def compute(a, dims):
        if not dims:
            return a.copy()
        return a[tuple(slice(None, None, -1) if i in dims else slice(None)
                       for i in range(a.ndim))].copy()


adjoints(Flip, Flip)


class Roll(LinearOp):
    """Shift along `dims` by `shifts`, wrapping around; its adjoint rolls back."""

    op_name, params = "roll", ("shifts", "dims")

    @staticmethod
    def compute(a, shifts, dims):
        return array_module(a).roll(a, shifts, axis=dims)


class RollBack(LinearOp):
    op_name, params = "roll_backward", ("shifts", "dims")

    @staticmethod
    def compute(a, shifts, dims):
        return array_module(a).roll(a, tuple(-s for s in shifts), axis=dims)


adjoints(Roll, RollBack)


class Triangle(LinearOp):
    """The lower (tril) or upper (triu) triangle of the last two dims, zeros elsewhere: a
    mask, so its own adjoint."""

    params = ("diagonal",)
    op_name: str
    function: str

    @classmethod
    def compute(cls, a, diagonal):
        return getattr(array_module(a), cls.function)(a, diagonal)


class Tril(Triangle):
    op_name = function = "tril"


class Triu(Triangle):
    op_name = function = "triu"


adjoints(Tril, Tril)
adjoints(Triu, Triu)


# -- repeating ----------------------------------------------------------------------------------
def _repeat(op: str, x: Tensor, sizes: tuple) -> Tensor:
    if len(sizes) < x.ndim:
        raise RuntimeError(f"{op}: Number of dimensions of repeat dims ({len(sizes)}) can not be "
                           f"smaller than number of dimensions of tensor ({x.ndim})")
    if any(r < 0 for r in sizes):
        raise RuntimeError(f"{op}: repeats must be non-negative, got {list(sizes)}")
    shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
    # NOTE: (s0, s1, ...) viewed as (1, s0, 1, s1, ...), expanded to (r0, s0, r1, s1, ...) and
    # merged pairwise: the copies lie one after another, as torch's repeat lays them out
    pairs = reshape(x, tuple(v for s in shape for v in (1, s)))
    pairs = expand(pairs, tuple(v for r, s in zip(sizes, shape) for v in (r, s)))
    out = reshape(pairs, tuple(r * s for r, s in zip(sizes, shape)))
    return clone(out) if all(r == 1 for r in sizes) else out  # a copy, as torch's always is


def repeat(x: Tensor, *sizes: Any) -> Tensor:
    """torch.Tensor.repeat: x tiled `sizes[i]` times along dim i (leading sizes add dims)."""
    return _repeat("repeat", x, _sizes("repeat", sizes))


def tile(x: Tensor, dims: Any) -> Tensor:
    """torch.tile: repeat, with `dims` padded by leading 1s to x's number of dims."""
    if not isinstance(dims, (tuple, list)):
        raise TypeError(f"tile: dims must be a tuple of ints, not {type(dims).__name__}")
    dims = _sizes("tile", (dims,))
    return _repeat("tile", x, (1,) * (x.ndim - len(dims)) + dims)


def repeat_interleave(x: Tensor, repeats: Any = None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Repeat each element (each slice along `dim`; of the flattened input if dim is None)
    `repeats` times: an int, or a tensor of one count per slice (torch.repeat_interleave).
    `repeat_interleave(counts)` alone gives the indices 0, 1, ... each repeated."""
    if repeats is None:
        counts = _counts(x)
        from ..creation import arange
        return repeat_interleave(arange(counts.numel(), device=x.device), counts,
                                 output_size=output_size)
    if dim is None:
        x, d = flatten(x), 0
    else:
        d = normalize_dim("repeat_interleave", dim, x.ndim)
    n = x.shape[d]
    if isinstance(repeats, Tensor):
        counts = _counts(repeats)
        if counts.numel() != 1:
            return _by_counts(x, counts, d, output_size)
        repeats = int(counts.item())
    r = _int_repeats(repeats)
    if output_size is not None and output_size != n * r:
        raise RuntimeError(f"repeat_interleave: Invalid output_size, expected {n * r} but got "
                           f"{output_size}")
    shape = list(x.shape)
    shape.insert(d + 1, r)
    return flatten(expand(unsqueeze(x, d + 1), tuple(shape)), d, d + 1)


def _int_repeats(repeats: Any) -> int:
    if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool):
        raise TypeError(f"repeat_interleave: repeats must be an int or a tensor, got "
                        f"{type(repeats).__name__}")
    if repeats < 0:
        raise RuntimeError(f"repeat_interleave: Repeats must be non-negative, got {repeats}")
    return int(repeats)


def _counts(repeats: Tensor) -> Tensor:
    if repeats.dtype.kind not in "iu":
        # NOTE: NotImplementedError, as torch's (a RuntimeError subclass)
        raise NotImplementedError(f"repeat_interleave: repeats must be an integer tensor, got "
                                  f"{repeats.dtype}")
    if repeats.ndim > 1:
        raise RuntimeError(f"repeat_interleave: repeats must be 0-dim or 1-dim tensor, got "
                           f"shape {tuple(repeats.shape)}")
    return reshape(repeats, (-1,))


def _by_counts(x: Tensor, counts: Tensor, d: int, output_size: int | None) -> Tensor:
    """Slice i of dim `d` repeated counts[i] times: indexing with the slice numbers, found by
    a sorted search of the running counts (no per-slice loop, on either backend)."""
    from .index import getitem  # NOTE: index.py imports shape.py, which this module uses
    n = x.shape[d]
    if counts.numel() != n:
        raise RuntimeError(f"repeat_interleave: repeats must have the same size as input along "
                           f"dim, but got repeats.size(0) = {counts.numel()} and input.size("
                           f"{d}) = {n}")
    if counts.device != x.device:
        raise RuntimeError(f"repeat_interleave: repeats are on {counts.device} but the input is "
                           f"on {x.device}")
    xp, c = x._xp, counts.array
    # NOTE: the total (the output's size) is read on the host, as torch does without
    # output_size; the negativity check rides on the same read
    low, total = (int(v) for v in xp.stack([c.min(), c.sum()]).tolist()) if n else (0, 0)
    if low < 0:
        raise RuntimeError("repeat_interleave: repeats can not be negative")
    if output_size is not None and output_size != total:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the "
                           f"sum of repeats {total}")
    ends = xp.cumsum(c)
    slices = xp.searchsorted(ends, xp.arange(total), side="right").astype(dtypes.int64)
    return getitem(x, (slice(None),) * d + (Tensor._wrap(slices),))


# -- rolling, flipping, rotating ------------------------------------------------------------
def _int_tuple(op: str, name: str, value: Any) -> tuple:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {value!r}")
    return tuple(int(v) for v in values)


def roll(x: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Shift elements along `dims` by `shifts`, wrapping around (torch.roll); without dims,
    the flattened tensor rolls and takes x's shape back."""
    shifts = _int_tuple("roll", "shifts", shifts)
    if not shifts:
        raise RuntimeError("roll: `shifts` required")
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: "
                               f"{len(shifts)}, dims:0")
        return reshape(Roll.apply(flatten(x), shifts=shifts, dims=(0,)), tuple(x.shape))
    dims = _int_tuple("roll", "dims", dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims:{len(dims)}")
    if x.ndim == 0:
        raise IndexError(f"roll: Dimension specified as {dims[0]} but tensor has no dimensions")
    dims = tuple(normalize_dim("roll", d, x.ndim) for d in dims)
    return Roll.apply(x, shifts=shifts, dims=dims)


def _flip_dims(op: str, x: Tensor, dims: Any) -> tuple:
    if not isinstance(dims, (tuple, list)):
        raise TypeError(f"{op}: dims must be a tuple of ints, not {type(dims).__name__}")
    axes = tuple(normalize_dim(op, d, x.ndim) for d in dims)
    for a in axes:
        if axes.count(a) > 1:
            raise RuntimeError(f"{op}: dim {a} appears multiple times in the list of dims")
    return axes if x.ndim else ()


def flip(x: Tensor, dims: Any) -> Tensor:
    """Reverse the order of elements along `dims`, as a copy (torch.flip)."""
    return Flip.apply(x, dims=_flip_dims("flip", x, dims))


def fliplr(x: Tensor) -> Tensor:
    """Flip dim 1 (left to right), for tensors of 2 or more dims (torch.fliplr)."""
    if x.ndim < 2:
        raise RuntimeError(f"fliplr: Input must be >= 2-d, got {x.ndim}-d")
    return Flip.apply(x, dims=(1,))


def flipud(x: Tensor) -> Tensor:
    """Flip dim 0 (up to down), for tensors of 1 or more dims (torch.flipud)."""
    if x.ndim < 1:
        raise RuntimeError("flipud: Input must be >= 1-d, got 0-d")
    return Flip.apply(x, dims=(0,))


def rot90(x: Tensor, k: int = 1, dims: Any = (0, 1)) -> Tensor:
    """Rotate by 90 degrees `k` times in the plane of `dims`, from the first dim towards the
    second (torch.rot90): a flip and a transpose."""
    dims = _int_tuple("rot90", "dims", dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected total rotation dims == 2, but got dims = "
                           f"{len(dims)}")
    if x.ndim < 2:
        raise RuntimeError(f"rot90: expected total dims >= 2, but got total dims = {x.ndim}")
    d0, d1 = (normalize_dim("rot90", d, x.ndim) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"rot90: expected rotation dims to be different, but got dim0 = "
                           f"{dims[0]} and dim1 = {dims[1]}")
    k %= 4
    if k == 1:
        return transpose(Flip.apply(x, dims=(d1,)), d0, d1)
    if k == 2:
        return Flip.apply(x, dims=(d0, d1))
    if k == 3:
        return transpose(Flip.apply(x, dims=(d0,)), d0, d1)
    return clone(x)


# -- triangles and diagonals ----------------------------------------------------------------
def _triangle(op: type[Triangle], x: Tensor, diagonal: int) -> Tensor:
    if x.ndim < 2:
        raise RuntimeError(f"{op.op_name}: input tensor must have at least 2 dimensions, got "
                           f"shape {tuple(x.shape)}")
    return op.apply(x, diagonal=int(diagonal))


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims: elements on and below diagonal `diagonal`
    (torch.tril), zeros above."""
    return _triangle(Tril, x, diagonal)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims, on and above diagonal `diagonal` (torch.triu)."""
    return _triangle(Triu, x, diagonal)


def diag_embed(x: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices (in dims dim1, dim2 of the result) with x's last dim on diagonal `offset`,
    zeros elsewhere (torch.diag_embed)."""
    d1, d2 = _diagonal_dims("diag_embed", x.ndim + 1, dim1, dim2)
    n = x.shape[-1] + abs(int(offset))
    shape = list(x.shape[:-1])
    for d in sorted((d1, d2)):
        shape.insert(d, n)
    return DiagonalScatter.apply(x, shape=tuple(shape), offset=int(offset), dim1=d1, dim2=d2)


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """torch.diag: a 1-D tensor as the diagonal `diagonal` of a square matrix, or a 2-D
    tensor's diagonal `diagonal`, copied."""
    if x.ndim == 1:
        return diag_embed(x, diagonal, 0, 1)
    if x.ndim == 2:
        return clone(Diagonal.apply(x, offset=int(diagonal), dim1=0, dim2=1))
    raise RuntimeError(f"diag: Supports 1D or 2D tensors. Got {x.ndim}D")


# -- copies of parts: narrow_copy, diff (round 2) ---------------------------------------------
def narrow_copy(x: Tensor, dim: int, start: Any, length: Any) -> Tensor:
    """narrow's elements as a new tensor, not a view (torch.narrow_copy)."""
    from .shape import narrow
    try:
        view = narrow(x, dim, start, length)
    except (IndexError, RuntimeError, TypeError) as err:
        raise type(err)(f"narrow_copy: {err}") from None
    return clone(view)


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend: Tensor | None = None,
         append: Tensor | None = None) -> Tensor:
    """The n-th forward difference along `dim` (torch.diff), after `prepend` and `append` are
    concatenated at its ends; bool tensors give logical_xor of neighbours, as torch."""
    from .elementwise import logical_xor
    from .index import cat
    from .shape import narrow
    if not isinstance(input, Tensor):
        raise TypeError(f"diff: argument 'input' must be a Tensor, not {type(input).__name__}")
    if input.ndim == 0:
        raise RuntimeError("diff: diff expects input to be at least one-dimensional")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise RuntimeError(f"diff: order must be non-negative but got {n}")
    d = normalize_dim("diff", dim, input.ndim)
    parts = []
    for name, part in (("prepend", prepend), (None, input), ("append", append)):
        if part is None:
            continue
        if not isinstance(part, Tensor):
            raise TypeError(f"diff: argument '{name}' must be a Tensor, not "
                            f"{type(part).__name__}")
        if part.ndim != input.ndim:
            raise RuntimeError(f"diff: diff expects prepend or append to be the same dimension "
                               f"as input (got {name} of {part.ndim} dims, input of "
                               f"{input.ndim})")
        parts.append(part)
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(int(n)):
        size = x.shape[d]
        if size == 0:
            break
        hi, lo = narrow(x, d, 1, size - 1), narrow(x, d, 0, size - 1)
        x = logical_xor(hi, lo) if x.dtype == dtypes.bool else hi - lo
    return x


def _trapezoids(op: str, y: Tensor, x: Tensor | None, dx: Any, dim: int) -> tuple:
    """(the trapezoids' areas along dim, the dim): (y[i] + y[i+1]) / 2 times the spacing,
    dx (1 by default) or the steps of the sample points x."""
    from .shape import narrow
    if not isinstance(y, Tensor):
        raise TypeError(f"{op}: argument 'y' must be a Tensor, not {type(y).__name__}")
    if y.ndim == 0:
        raise IndexError(f"{op}: Dimension specified as {dim} but tensor has no dimensions")
    d = normalize_dim(op, dim, y.ndim)
    n = y.shape[d]
    m = max(n - 1, 0)  # the trapezoids' count
    ends = narrow(y, d, min(n, 1), m) + narrow(y, d, 0, m)
    if x is None:
        return ends * (1 if dx is None else dx) / 2, d
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: argument 'x' must be a Tensor, not {type(x).__name__}")
    if x.ndim == 1:
        if x.shape[0] != n:
            raise RuntimeError(f"{op}: There must be one `x` value for each sample point (x "
                               f"has {x.shape[0]}, y has {n} along dim {d})")
        steps = reshape(diff(x), tuple(m if k == d else 1 for k in range(y.ndim)))
    else:
        steps = diff(x, dim=d)
    return steps * ends / 2, d


def trapezoid(y: Tensor, x: Tensor | None = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """The trapezoidal rule's integral of y along `dim` (torch.trapezoid), over sample points
    x or a constant spacing dx (1 by default)."""
    from .reduce import sum
    areas, d = _trapezoids("trapezoid", y, x, dx, dim)
    # (no samples: torch's zeros of y's sum, int64 for integers)
    return sum(areas if y.shape[d] else y, d)


def trapz(y: Tensor, x: Tensor | None = None, *, dx: Any = None, dim: int = -1) -> Tensor:
    """torch.trapz: trapezoid."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Tensor, x: Tensor | None = None, *, dx: Any = None,
                         dim: int = -1) -> Tensor:
    """The running trapezoidal integral of y along `dim`, one fewer than y's samples
    (torch.cumulative_trapezoid)."""
    from .scan import cumsum
    areas, d = _trapezoids("cumulative_trapezoid", y, x, dx, dim)
    return cumsum(areas, d)
