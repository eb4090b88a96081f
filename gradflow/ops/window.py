"""Window geometry shared by the 2-D sliding-window ops (convolution and pooling): the
`Window` a kernel slides over, the batched view of an (N, C, H, W) or unbatched (C, H, W)
input, the check that at least one window fits, and conv's padding rules ('same', 'valid').
The int-or-pair sizes these ops take are parsed by `gradflow.argcheck.pair`.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..tensor import Tensor
from .shape import squeeze, unsqueeze


class Window(NamedTuple):
    """Where a 2-D sliding op reads: (height, width) pairs, and the padding of the input
    as (top, bottom, left, right)."""

    kernel: tuple
    stride: tuple
    dilation: tuple
    padding: tuple

    def out_size(self, h: int, w: int) -> tuple:
        pt, pb, pl, pr = self.padding
        return tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(
            (h + pt + pb, w + pl + pr), self.kernel, self.stride, self.dilation))


def to_batch(op: str, x: Any) -> tuple:
    """A 4-D view of an (N, C, H, W) or unbatched (C, H, W) input, and whether it was batched."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise RuntimeError(f"{op}: expected a 3-D (unbatched) or 4-D (batched) input, got "
                           f"shape {tuple(x.shape)}")
    if 0 in x.shape[1:]:
        raise RuntimeError(f"{op}: expected non-zero sizes for the non-batch dimensions, got "
                           f"shape {tuple(x.shape)}")
    return (x, True) if x.ndim == 4 else (unsqueeze(x, 0), False)


def from_batch(out: Tensor, batched: bool) -> Tensor:
    """Undo `to_batch`: drop the batch dimension it added to an unbatched input."""
    return out if batched else squeeze(out, 0)


def check_window(op: str, window: Window, shape: tuple) -> tuple:
    """The output size (oh, ow), checked to be at least one window per axis."""
    oh, ow = window.out_size(*shape[2:])
    if oh < 1 or ow < 1:
        pt, pb, pl, pr = window.padding
        padded = (shape[2] + pt + pb, shape[3] + pl + pr)
        span = tuple(d * (k - 1) + 1 for k, d in zip(window.kernel, window.dilation))
        raise RuntimeError(f"{op}: kernel size {window.kernel} (dilated span {span}) is larger "
                           f"than the padded input {padded} (input shape {tuple(shape)}); the "
                           f"output size would be ({oh}, {ow})")
    return oh, ow


def batch_view(op: str, x: Any, spatial: int) -> tuple:
    """A batched view of an (N, C, *spatial) or unbatched (C, *spatial) input with `spatial`
    axes, and whether it was batched (`from_batch` undoes it): the convolutions' and pools'."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D "
                           f"(batched) input, got shape {tuple(x.shape)}")
    if 0 in x.shape[x.ndim - spatial - 1:]:
        raise RuntimeError(f"{op}: expected non-zero sizes for the non-batch dimensions, got "
                           f"shape {tuple(x.shape)}")
    return (x, True) if x.ndim == spatial + 2 else (unsqueeze(x, 0), False)
