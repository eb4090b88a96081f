"""Embeddings (torch.nn.functional.embedding, embedding_bag).

A lookup is one gather of the weight's rows (its backward the deterministic scatter-add of
`IndexAddInto`); padding_idx and scale_grad_by_freq only scale the gradient of each looked-up
row, which `EmbeddingLookup` folds into that same scatter.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd.function import Op
from ...autograd.grad_mode import no_grad
from ...backend import CPU, array_module, move_array
from ...creation import zeros
from ...ops.index import GetItem, IndexAddInto, check_range, scatter_reduce
from ...ops.shape import reshape, unsqueeze
from ...tensor import Tensor

__all__ = ["embedding", "embedding_bag"]

_MODES = ("sum", "mean", "max")


class EmbeddingLookup(Op):
    """weight[index] whose gradient row for each index is scaled by `scale` (an array of the
    index's shape: 0 at padding_idx, 1/count with scale_grad_by_freq) before the scatter-add."""

    op_name = "embedding"

    @staticmethod
    def forward(ctx, weight, index, scale):
        ctx.index, ctx.scale, ctx.shape = index, scale, tuple(weight.shape)
        return weight.array[index]

    @staticmethod
    def backward(ctx, g):
        g = g * Tensor._wrap(ctx.scale[..., None].astype(g.dtype))
        return IndexAddInto.apply(g, shape=ctx.shape, items=(ctx.index,))


def _index(op: str, input: Any, weight: Tensor, error: type = IndexError) -> Any:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: argument 'indices' must be a Tensor, not {type(input).__name__}")
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: argument 'weight' must be a Tensor, not {type(weight).__name__}")
    if input.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: Expected tensor for argument #1 'indices' to have one of the "
                           f"following scalar types: Long, Int; but got {input.dtype} instead")
    if weight.ndim != 2:
        raise RuntimeError(f"{op}: 'weight' must be 2-D (num_embeddings, embedding_dim), got "
                           f"shape {tuple(weight.shape)}")
    if input.device != weight.device:
        raise RuntimeError(f"{op}: indices are on {input.device} but weight is on "
                           f"{weight.device}")
    n = weight.shape[0]
    check_range(op, "index", input.array, 0, n, f"a weight of {n} rows (index out of range "
                f"in self)", error)
    return input.array.astype(np.int64, copy=False)


def _padding_idx(op: str, padding_idx: int | None, n: int) -> int | None:
    if padding_idx is None:
        return None
    if not -n <= padding_idx < n:
        raise AssertionError(f"{op}: padding_idx {padding_idx} must be within num_embeddings "
                             f"({n})")
    return padding_idx % n


def _renorm_(weight: Tensor, index: Any, max_norm: float, norm_type: float) -> None:
    """Rescale, in place and outside autograd, the rows of weight at `index` whose
    norm_type-norm exceeds max_norm to max_norm (torch.embedding_renorm_)."""
    xp = array_module(index)
    rows = xp.unique(index.reshape(-1))
    with no_grad():
        w = weight.array
        sel = w[rows]
        norms = xp.sum(xp.abs(sel) ** norm_type, axis=1) ** (1.0 / norm_type)
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
        w[rows] = sel * scale[:, None]
    weight._version_box[0] += 1


def _scale(index: Any, padding_idx: int | None, by_freq: bool, dtype: Any) -> Any:
    """The gradient scale of each looked-up row, or None where all are 1."""
    if padding_idx is None and not by_freq:
        return None
    xp = array_module(index)
    scale = xp.ones(index.shape, dtype)
    if by_freq and index.size:
        _, inverse, counts = xp.unique(index.reshape(-1), return_inverse=True,
                                       return_counts=True)
        scale = (1.0 / counts[inverse.reshape(-1)]).reshape(index.shape).astype(dtype)
    if padding_idx is not None:
        scale = xp.where(index == padding_idx, 0, scale).astype(dtype)
    return scale


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """The rows of `weight` at the indices `input`, of shape input.shape + (embedding_dim,)
    (torch.nn.functional.embedding). With max_norm the looked-up rows are first renormalised in
    place; the padding_idx row gets no gradient; scale_grad_by_freq divides each row's
    gradient by its count in the batch. `sparse` is accepted; the gradient is dense."""
    op = "embedding"
    index = _index(op, input, weight)
    padding_idx = _padding_idx(op, padding_idx, weight.shape[0])
    if max_norm is not None:
        _renorm_(weight, index, float(max_norm), float(norm_type))
    scale = _scale(index, padding_idx, scale_grad_by_freq, weight.dtype)
    if scale is None:
        return GetItem.apply(weight, items=(index,))
    return EmbeddingLookup.apply(weight, index=index, scale=scale)


def _bags(op: str, input: Tensor, offsets: Tensor | None, include_last_offset: bool
          ) -> tuple[Any, int]:
    """Each flat index's bag number (a host array; -1 for none) and the number of bags."""
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{op}: if input is 2D, then offsets has to be None, as input is "
                             "treated is a mini-batch of fixed length sequences. However, "
                             f"found offsets of type {type(offsets).__name__}")
        b, n = input.shape
        return np.repeat(np.arange(b), n), b
    if input.ndim != 1:
        raise ValueError(f"{op}: input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.ndim}")
    if offsets is None:
        raise ValueError(f"{op}: offsets has to be a 1D Tensor but got None")
    if not isinstance(offsets, Tensor) or offsets.ndim != 1:
        raise ValueError(f"{op}: offsets has to be a 1D Tensor, got "
                         f"{getattr(offsets, 'shape', type(offsets).__name__)}")
    if offsets.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: Expected tensor for argument 'offsets' to have one of the "
                           f"following scalar types: Long, Int; but got {offsets.dtype} instead")
    offs = move_array(offsets.array, CPU).astype(np.int64)
    n = input.shape[0]
    if offs.size and offs[0] != 0:
        raise RuntimeError(f"{op}: offsets[0] has to be 0, i.e., the first sequence in the "
                           f"mini-batch has to start from position 0. However, got {int(offs[0])}")
    if offs.size and (offs[-1] > n or (np.diff(offs) < 0).any()):
        raise ValueError(f"{op}: offsets must be non-decreasing and at most the input size "
                         f"{n}, got {offs.tolist()}")
    bags = offs.size - 1 if include_last_offset else offs.size
    ends = offs[1:] if include_last_offset else np.append(offs[1:], n)
    # NOTE: indices past the last offset (include_last_offset) join no bag; torch 2.13 treats
    # them differently in each mode (sum drops them, max keeps them, mean divides by them)
    bag = np.full(n, -1, np.int64)
    if bags:
        bag[:ends[-1]] = np.repeat(np.arange(bags), ends - offs[:bags])
    return bag, max(bags, 0)


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None,
                  max_norm: float | None = None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    """Sums, means or maxima of bags of embeddings, without building the looked-up rows'
    tensor per bag (torch.nn.functional.embedding_bag). Bags are the rows of a 2-D input, or
    runs of a 1-D input starting at `offsets`; indices equal to padding_idx are left out of
    their bag, and an empty bag gives zeros. per_sample_weights scale the rows (mode 'sum')."""
    op = "embedding_bag"
    if mode not in _MODES:
        raise ValueError(f"{op}: mode has to be one of sum, mean or max, got {mode!r}")
    index = _index(op, input, weight, RuntimeError)  # torch: IndexError for embedding only
    padding_idx = _padding_idx(op, padding_idx, weight.shape[0])
    bag, bags = _bags(op, input, offsets, include_last_offset)
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(f"{op}: per_sample_weights was not None. "
                                      "per_sample_weights is only supported for mode='sum' "
                                      f"(got mode='{mode}'). Please open a feature request on "
                                      "GitHub.")
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(f"{op}: per_sample_weights of shape "
                             f"{tuple(per_sample_weights.shape)} must have the input's shape "
                             f"{tuple(input.shape)}")
    flat_index = move_array(index.reshape(-1), CPU)
    keep = bag >= 0
    if padding_idx is not None:
        keep &= flat_index != padding_idx
    chosen = np.nonzero(keep)[0]
    xp = weight._xp
    rows = xp.asarray(flat_index[chosen])
    if max_norm is not None:
        _renorm_(weight, rows, float(max_norm), float(norm_type))
    scale = _scale(rows, None, scale_grad_by_freq, weight.dtype)
    values = (GetItem.apply(weight, items=(rows,)) if scale is None else
              EmbeddingLookup.apply(weight, index=rows, scale=scale))
    dim = weight.shape[1]
    target = xp.asarray(bag[chosen])
    if per_sample_weights is not None:
        w = GetItem.apply(reshape(per_sample_weights, (-1,)), items=(xp.asarray(chosen),))
        values = values * unsqueeze(w, 1)
    if mode == "max":
        slots = Tensor._wrap(xp.broadcast_to(target[:, None], (chosen.size, dim)).copy())
        base = zeros(bags, dim, dtype=weight.dtype, device=weight.device)
        return scatter_reduce(base, 0, slots, values, "amax", include_self=False)
    out = IndexAddInto.apply(values, shape=(bags, dim), items=(target,))
    if mode == "mean":
        counts = np.bincount(bag[chosen], minlength=bags).astype(weight.dtype)
        out = out / Tensor._wrap(xp.asarray(np.maximum(counts, 1)[:, None]))
    return out

