"""The linear layer and dropout (torch.nn.functional.linear, dropout, dropout2d)."""
from __future__ import annotations

from ... import argcheck
from ...amp.autocast_mode import autocast_policy
from ...autograd.inplace import maybe_inplace
from ...creation import rand
from ...ops.matmul import LinearProduct
from ...tensor import Tensor

__all__ = ["linear", "dropout", "dropout2d"]


@autocast_policy("linear")
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b (torch.nn.functional.linear)."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linear: {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                           f"{tuple(weight.shape)}")
    if input.shape[-1:] != weight.shape[1:]:
        raise RuntimeError(f"linear: input has {input.shape[-1] if input.ndim else 0} features "
                           f"but weight expects {weight.shape[1]} (input shape "
                           f"{tuple(input.shape)}, weight shape {tuple(weight.shape)})")
    if input.dtype != weight.dtype:
        raise RuntimeError(f"linear: input dtype {input.dtype} does not match weight dtype "
                           f"{weight.dtype}; convert one, e.g. input.to({weight.dtype})")
    if bias is None:
        return LinearProduct.apply(input, weight)
    if tuple(bias.shape) != tuple(weight.shape[:1]) or bias.dtype != weight.dtype:
        raise RuntimeError(f"linear: bias must have shape ({weight.shape[0]},) and the weight's "
                           f"dtype {weight.dtype}, got shape {tuple(bias.shape)} and dtype "
                           f"{bias.dtype}")
    return LinearProduct.apply(input, weight, bias)


def _dropped(input: Tensor, p: float, mask_shape: tuple) -> Tensor:
    """input with elements (or whole channels, by `mask_shape`) zeroed with probability p and
    the rest scaled by 1/(1-p): inverted dropout."""
    if p == 1.0:
        return input * 0.0
    keep = rand(*mask_shape, dtype=input.dtype, device=input.device) >= p
    return input * keep * (1.0 / (1.0 - p))


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    argcheck.probability("dropout", p)
    if not training or p == 0.0:
        return input
    return maybe_inplace("dropout", _dropped, input, inplace, p, tuple(input.shape))


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Drop whole channels of an (N, C, H, W) or (C, H, W) input (torch's dropout2d)."""
    argcheck.probability("dropout2d", p)
    if input.ndim not in (3, 4):
        raise RuntimeError(f"dropout2d: expected a 3-D or 4-D input, got shape "
                           f"{tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    mask_shape = tuple(input.shape[:-2]) + (1, 1)
    return maybe_inplace("dropout2d", _dropped, input, inplace, p, mask_shape)
