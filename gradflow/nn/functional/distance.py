"""Distances and similarities (torch.nn.functional.cosine_similarity, pairwise_distance,
normalize, and torch.cdist), composed from `linalg.vector_norm`, whose gradient is torch's
(zero at a zero norm, never NaN)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import argcheck, dtypes
from ...amp.autocast_mode import autocast_policy
from ...ops.linalg import vector_norm
from ...ops.matmul import matmul
from ...ops.shape import broadcast_tensors
from ...ops.util import normalize_dim
from ...tensor import Tensor

__all__ = ["cosine_similarity", "pairwise_distance", "normalize"]

CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
               "donot_use_mm_for_euclid_dist")


def _tensors(op: str, **arguments: Any) -> None:
    for name, value in arguments.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}; wrap "
                            f"it with gradflow.tensor(...)")


def _order(op: str, p: Any) -> float:
    """The p of a p-norm: any real number, or +-inf (negative p as torch's norm allows)."""
    return argcheck.real(op, "p", p)


def _clamped_below(t: Tensor, eps: float) -> Tensor:
    """t's values clamped below at eps, with t's own gradient (torch clamps in place under
    no_grad, so the gradient passes through the clamp)."""
    held = t.detach()
    return t + (held.clamp(min=eps) - held)


def _broadcast_pair(op: str, x1: Tensor, x2: Tensor) -> tuple:
    try:
        np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    except ValueError:
        raise RuntimeError(f"{op}: the shapes of x1 {tuple(x1.shape)} and x2 "
                           f"{tuple(x2.shape)} do not broadcast together") from None
    return tuple(broadcast_tensors(x1, x2))


@autocast_policy("normalize")
def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Tensor | None = None) -> Tensor:
    """input / max(||input||_p along dim, eps) (torch.nn.functional.normalize)."""
    _tensors("normalize", input=input)
    p = _order("normalize", p)
    argcheck.real("normalize", "eps", eps, 0)
    d = normalize_dim("normalize", dim, input.ndim)
    norm = vector_norm(input, p, d if input.ndim else None, keepdim=True)
    result = input / norm.clamp(min=eps)
    if out is not None:
        return out.copy_(result)
    return result


@autocast_policy("cosine_similarity")
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 / ||x1|| * x2 / ||x2||) along dim, each norm clamped below at eps (torch's
    formula: each input is divided by its own norm first, which keeps the result in [-1, 1])."""
    _tensors("cosine_similarity", x1=x1, x2=x2)
    argcheck.real("cosine_similarity", "eps", eps, 0)
    x1, x2 = _broadcast_pair("cosine_similarity", x1, x2)
    # NOTE: as torch, integer (and bool) inputs are taken in the default float dtype
    x1, x2 = (x if x.is_floating_point() else x.to(dtypes.get_default_dtype()) for x in (x1, x2))
    d = normalize_dim("cosine_similarity", dim, x1.ndim)
    axes = d if x1.ndim else None
    n1 = _clamped_below(vector_norm(x1, 2, axes, keepdim=True), eps)
    n2 = _clamped_below(vector_norm(x2, 2, axes, keepdim=True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(axes)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim (torch adds eps to the difference)."""
    _tensors("pairwise_distance", x1=x1, x2=x2)
    p = _order("pairwise_distance", p)
    argcheck.real("pairwise_distance", "eps", eps)
    _broadcast_pair("pairwise_distance", x1, x2)
    diff = x1 - x2 + eps
    if diff.ndim == 0:
        return vector_norm(diff, p, None, keepdim=keepdim)
    return vector_norm(diff, p, -1, keepdim=keepdim)


@autocast_policy("cdist")
def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The p-norm distance between each row of x1 (..., P, M) and each row of x2 (..., R, M),
    (..., P, R) (torch.cdist). For p = 2 and more than 25 rows (or with
    compute_mode='use_mm_for_euclid_dist') it comes from one matrix product, as in torch;
    otherwise from the differences."""
    op = "cdist"
    _tensors(op, x1=x1, x2=x2)
    if _order(op, p) < 0:
        raise RuntimeError(f"{op}: cdist only supports non-negative p values, got {p}")
    argcheck.choice(op, "compute_mode", compute_mode, CDIST_MODES)
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(f"{op}: cdist only supports at least 2D tensors, X1 got: "
                           f"{x1.ndim}D, X2 got: {x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"{op}: X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if not dtypes.is_floating(x1.dtype) or not dtypes.is_floating(x2.dtype):
        raise RuntimeError(f"{op}: only supports floating-point dtypes, X1 got: {x1.dtype}, "
                           f"X2 got: {x2.dtype}")
    try:
        np.broadcast_shapes(tuple(x1.shape[:-2]), tuple(x2.shape[:-2]))
    except ValueError:
        raise RuntimeError(f"{op}: the batch dims of X1 {tuple(x1.shape)} and X2 "
                           f"{tuple(x2.shape)} do not broadcast together") from None
    by_product = p == 2 and (compute_mode == "use_mm_for_euclid_dist" or (
        compute_mode == CDIST_MODES[0] and (x1.shape[-2] > 25 or x2.shape[-2] > 25)))
    if by_product:
        return _euclidean_by_product(x1, x2)
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., P, R, M)
    return vector_norm(diff, p, -1)


def _euclidean_by_product(x1: Tensor, x2: Tensor) -> Tensor:
    """sqrt(|a|^2 + |b|^2 - 2 a.b) for every pair of rows, through one matrix product (P R
    values, where the differences take P R M), as torch's matrix-product mode; the squares
    are clamped at 1e-30 as torch clamps them, which also keeps the gradient finite."""
    n1 = (x1 * x1).sum(-1, keepdim=True)
    n2 = (x2 * x2).sum(-1, keepdim=True).transpose(-2, -1)
    squares = n1 + n2 - matmul(x1, x2.transpose(-2, -1)) * 2
    return squares.clamp(min=1e-30).sqrt()
