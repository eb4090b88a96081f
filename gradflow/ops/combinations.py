"""Products of sets and index sets: cartesian_prod, combinations, tril_indices,
triu_indices and block_diag (PyTorch's names and rules).

cartesian_prod and combinations pick elements of their inputs (meshgrid and stack, or indexing
by the combinations' positions), and block_diag concatenates its blocks with zeros, so their
gradients come from those ops; the index sets are int64 (or int32) tensors.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .. import dtypes
from ..backend import module_for, on_device
from ..creation import tensor, zeros
from ..tensor import Tensor
from .elementwise import cast
from .index import GetItem, cat, stack
from .shape import _tensor_args, meshgrid, reshape
from .util import result_dtype


def _vector(op: str, t: Tensor) -> None:
    if t.ndim != 1:
        raise RuntimeError(f"{op}: Expect a 1D vector, but got shape {list(t.shape)}")


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every tuple of one element from each 1-D tensor, in row-major order, as the rows of a
    (n1 * n2 * ..., k) tensor (torch.cartesian_prod); one tensor is returned as it is."""
    inputs = _tensor_args("cartesian_prod", tensors)
    for t in inputs:
        _vector("cartesian_prod", t)
    if len(inputs) == 1:
        return inputs[0]
    grids = meshgrid(*inputs, indexing="ij")
    return stack([reshape(g, (-1,)) for g in grids], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The r-element combinations of a 1-D tensor's elements, in lexicographic order of
    their positions, as rows (torch.combinations, like itertools.combinations or, with
    with_replacement, combinations_with_replacement); r = 0 gives an empty vector."""
    op = "combinations"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: argument 'input' must be a Tensor, not {type(input).__name__}")
    _vector(op, input)
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
        raise RuntimeError(f"{op}: Expect a non-negative number, but got {r}")
    if r == 0:
        return Tensor._wrap(input._xp.empty((0,), input.dtype))
    choose = itertools.combinations_with_replacement if with_replacement \
        else itertools.combinations
    picks = np.array(list(choose(range(input.shape[0]), int(r))), np.int64).reshape(-1, r)
    with on_device(input.device):
        index = module_for(input.device).asarray(picks)
    return GetItem.apply(input, items=(index,))


def _index_set(op: str, row: int, col: int, offset: int, dtype: Any, device: Any,
               upper: bool) -> Tensor:
    for name, v in (("row", row), ("col", col)):
        if v < 0:
            raise RuntimeError(f"{op}: {name} must be non-negative, got {v}")
    dt = dtypes.as_dtype(dtypes.int64 if dtype is None else dtype)
    if dt not in (np.dtype(np.int64), np.dtype(np.int32)):
        raise NotImplementedError(f"{op}: not implemented for dtype {dt} (int64 or int32 "
                                  "only)")
    # NOTE: the coordinates are made on the host and copied once to `device`
    where = np.triu_indices if upper else np.tril_indices
    return tensor(np.stack(where(int(row), int(offset), int(col))), dtype=dt, device=device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None,
                 device: Any = None, layout: Any = None) -> Tensor:
    """The (row, col) coordinates of a row x col matrix's lower triangle (below diagonal
    `offset` and on it), row by row, as a 2 x N tensor (torch.tril_indices)."""
    return _index_set("tril_indices", row, col, offset, dtype, device, upper=False)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None,
                 device: Any = None, layout: Any = None) -> Tensor:
    """The (row, col) coordinates of a row x col matrix's upper triangle (on diagonal
    `offset` and above it), row by row, as a 2 x N tensor (torch.triu_indices)."""
    return _index_set("triu_indices", row, col, offset, dtype, device, upper=True)


def block_diag(*tensors: Tensor) -> Tensor:
    """The tensors (0-d, 1-D as one row, or 2-D) placed along the diagonal of one matrix,
    zeros elsewhere, in their promoted dtype (torch.block_diag)."""
    op = "block_diag"
    inputs = list(tensors)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__} at position {i}")
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer "
                               f"dimensions. Input {i} has {t.ndim} dimensions")
    if not inputs:
        return zeros(1, 0)
    dt = result_dtype(*inputs)
    blocks = [reshape(t, (1, -1) if t.ndim == 1 else (1, 1) if t.ndim == 0 else tuple(t.shape))
              for t in inputs]
    blocks = [b if b.dtype == dt else cast(b, dtype=dt) for b in blocks]
    width = sum(b.shape[1] for b in blocks)
    rows, before = [], 0
    for b in blocks:
        h, w = b.shape
        dev = b.device
        parts = [zeros(h, before, dtype=dt, device=dev), b,
                 zeros(h, width - before - w, dtype=dt, device=dev)]
        rows.append(cat(parts, 1))
        before += w
    return cat(rows, 0)
