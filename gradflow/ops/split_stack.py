"""Splitting into pieces and stacking pieces, NumPy-style: tensor_split and hsplit/vsplit/
dsplit (views, narrowed from the input), hstack/vstack/dstack/column_stack (copies, through
cat) and the atleast_1d/2d/3d reshapes they build on. cat/stack/split/chunk are in index.py."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor
from .elementwise import clone
from .index import cat, split_sizes
from .shape import Narrow, _int, _tensor_args, reshape
from .util import normalize_dim


def _split_points(op: str, x: Tensor, sections: Any, d: int) -> list:
    """(start, stop) per piece of tensor_split: `sections` pieces, the first n % sections one
    longer, or pieces between the listed indices (Python slice bounds)."""
    n = x.shape[d]
    if isinstance(sections, Tensor):
        if sections.dtype != dtypes.int64:
            raise RuntimeError(f"{op}: expected tensor_indices_or_sections to have dtype of "
                               f"long, but got {sections.dtype}")
        if sections.ndim > 1:
            raise RuntimeError(f"{op}: expected tensor_indices_or_sections to be a "
                               f"zero-dimensional or one-dimensional tensor, but got a tensor "
                               f"with {sections.ndim} dims")
        sections = sections.tolist()  # NOTE: a host read, as in torch
    if isinstance(sections, (int, np.integer)) and not isinstance(sections, bool):
        k = int(sections)
        if k <= 0:
            raise RuntimeError(f"{op}: number of sections must be larger than 0, got {k}")
        size, extra = divmod(n, k)
        bounds = [i * size + min(i, extra) for i in range(k + 1)]
        return list(zip(bounds[:-1], bounds[1:]))
    if not isinstance(sections, (list, tuple)):
        raise TypeError(f"{op}: indices_or_sections must be an int, a list of ints or a "
                        f"tensor, got {type(sections).__name__}")
    cuts = [None] + [_int(op, "index", i) for i in sections] + [None]
    return [slice(a, b).indices(n)[:2] for a, b in zip(cuts[:-1], cuts[1:])]


def tensor_split(x: Tensor, indices_or_sections: Any = None, dim: int = 0, *,
                 sections: Any = None, indices: Any = None,
                 tensor_indices_or_sections: Any = None) -> tuple:
    """Views of x in `sections` nearly equal pieces along `dim`, or cut at `indices`
    (torch.tensor_split; pieces may be empty)."""
    given = [v for v in (indices_or_sections, sections, indices, tensor_indices_or_sections)
             if v is not None]
    if len(given) != 1:
        raise TypeError("tensor_split: pass exactly one of indices_or_sections, sections, "
                        "indices or tensor_indices_or_sections")
    if x.ndim == 0:
        raise RuntimeError("tensor_split: expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")
    d = normalize_dim("tensor_split", dim, x.ndim)
    pieces = _split_points("tensor_split", x, given[0], d)
    sizes = [b - a for a, b in pieces]
    if len(pieces) > 1 and min(sizes) >= 0 and all(
            a == b for (_, b), (a, _) in zip(pieces[:-1], pieces[1:])):
        # NOTE: pieces that tile the dim in order are one split, whose backward is one cat;
        # overlapping ones (indices out of order) are narrowed one by one
        return split_sizes(x, sizes, d)
    return tuple(Narrow.apply(x, dim=d, start=a, length=max(0, b - a)) for a, b in pieces)


def _split_at_least(op: str, x: Tensor, sections: Any, dim: int, ndim: int) -> tuple:
    """hsplit/vsplit/dsplit: tensor_split along `dim`; an int must divide that dim evenly."""
    if x.ndim < ndim:
        raise RuntimeError(f"{op}: requires a tensor with at least {ndim} dimension, but got a "
                           f"tensor with {x.ndim} dimensions!")
    if isinstance(sections, (int, np.integer)) and not isinstance(sections, bool):
        n = x.shape[dim]
        if sections <= 0 or n % sections:
            raise RuntimeError(f"{op}: attempted to split along dimension {dim}, but the size "
                               f"of the dimension {n} is not divisible by the split_size "
                               f"{sections}!")
    return tensor_split(x, sections, dim)


def hsplit(x: Tensor, indices_or_sections: Any) -> tuple:
    """Split along dim 1 (dim 0 for a 1-D tensor), as torch.hsplit."""
    return _split_at_least("hsplit", x, indices_or_sections, 0 if x.ndim == 1 else 1, 1)


def vsplit(x: Tensor, indices_or_sections: Any) -> tuple:
    return _split_at_least("vsplit", x, indices_or_sections, 0, 2)


def dsplit(x: Tensor, indices_or_sections: Any) -> tuple:
    return _split_at_least("dsplit", x, indices_or_sections, 2, 3)


# -- stacking ---------------------------------------------------------------------------------
def _at_least(op: str, tensors: tuple, ndim: int) -> Any:
    """atleast_{1,2,3}d: a tensor for one tensor, a tuple for several or a list of them."""
    one = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    out = tuple(_raise_ndim(t, ndim) for t in _tensor_args(op, tensors))
    return out[0] if one else out


def _raise_ndim(t: Tensor, ndim: int) -> Tensor:
    """A 0-d tensor as (1,)*ndim; a 1-D (n,) as (1, n) or (1, n, 1); a 2-D (m, n) as
    (m, n, 1), as NumPy's atleast_*d (and torch's) shape them."""
    if t.ndim >= ndim:
        return t
    shape = tuple(t.shape)
    if t.ndim == 0:
        shape = (1,) * ndim
    elif t.ndim == 1:
        shape = ((1,) + shape + (1,))[:ndim]
    else:
        shape = shape + (1,)
    return reshape(t, shape)


def atleast_1d(*tensors: Any) -> Any:
    return _at_least("atleast_1d", tensors, 1)


def atleast_2d(*tensors: Any) -> Any:
    return _at_least("atleast_2d", tensors, 2)


def atleast_3d(*tensors: Any) -> Any:
    return _at_least("atleast_3d", tensors, 3)


def _stack_list(op: str, tensors: Any) -> list:
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}: expected a sequence of Tensors, got a Tensor")
    tensors = _tensor_args(op, (tensors,))
    if not tensors:
        raise RuntimeError(f"{op}: expects a non-empty TensorList")
    return tensors


def _cat(op: str, parts: list, dim: int) -> Tensor:
    """cat under the stacking op's name; a fresh tensor even for one part, as torch's."""
    if len(parts) == 1:
        return clone(parts[0])
    try:
        return cat(parts, dim)
    except RuntimeError as err:
        raise RuntimeError(f"{op}: {err}") from None


def hstack(tensors: Any) -> Tensor:
    """Join along dim 1, or dim 0 for 1-D tensors (torch.hstack)."""
    parts = [_raise_ndim(t, 1) for t in _stack_list("hstack", tensors)]
    return _cat("hstack", parts, 0 if parts[0].ndim == 1 else 1)


def vstack(tensors: Any) -> Tensor:
    """Join along dim 0, 1-D tensors as rows (torch.vstack, alias row_stack)."""
    return _cat("vstack", [_raise_ndim(t, 2) for t in _stack_list("vstack", tensors)], 0)


def dstack(tensors: Any) -> Tensor:
    """Join along dim 2, after atleast_3d (torch.dstack)."""
    return _cat("dstack", [_raise_ndim(t, 3) for t in _stack_list("dstack", tensors)], 2)


def column_stack(tensors: Any) -> Tensor:
    """Join along dim 1, 0-d and 1-D tensors as columns (torch.column_stack)."""
    parts = [reshape(t, (t.numel(), 1)) if t.ndim <= 1 else t
             for t in _stack_list("column_stack", tensors)]
    return _cat("column_stack", parts, 1)
