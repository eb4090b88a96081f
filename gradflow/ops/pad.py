"""Padding of the trailing dimensions (torch.nn.functional.pad): constant, reflect, replicate
and circular modes; negative widths crop.

Constant padding is its own op, whose adjoint is the same op with the widths negated. The
other modes are a gather (`getitem` with one index array per padded dimension), so their
backward is the scatter-add that indexing already has.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.function import Op
from ..backend import array_module
from ..tensor import Tensor
from .index import getitem

MODES = ("constant", "reflect", "replicate", "circular")


def constant_pad_array(a: Any, widths: tuple, value: float):
    """Pad array `a` by `widths` ((before, after) for every dimension) with `value`; a
    negative width drops that many entries instead."""
    xp = array_module(a)
    shape, src, dst = [], [], []
    for n, (lo, hi) in zip(a.shape, widths):
        start, stop = max(-lo, 0), n - max(-hi, 0)
        length = max(stop - start, 0)
        shape.append(n + lo + hi)
        src.append(slice(start, start + length))
        dst.append(slice(max(lo, 0), max(lo, 0) + length))
    out = xp.full(tuple(shape), value, a.dtype)
    out[tuple(dst)] = a[tuple(src)]
    return out


class ConstantPad(Op):
    """Constant padding; its adjoint pads the gradient by the negated widths (a crop where the
    forward padded, zeros where the forward cropped)."""

    op_name = "pad"

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.widths = widths
        return constant_pad_array(x.array, widths, value)

    @staticmethod
    def backward(ctx, g):
        return ConstantPad.apply(g, widths=tuple((-lo, -hi) for lo, hi in ctx.widths),
                                 value=0.0)


def _source_positions(mode: str, n: int, lo: int, hi: int) -> np.ndarray:
    """For each output position along one dimension, the input position it copies."""
    if mode == "circular":
        # NOTE: torch crops first and wraps around what is left: positions c0..c1-1 survive.
        c0, c1 = max(-lo, 0), n - max(-hi, 0)
        return c0 + np.arange(-max(lo, 0), c1 - c0 + max(hi, 0)) % (c1 - c0)
    j = np.arange(-lo, n + hi)
    if mode == "replicate":
        return np.clip(j, 0, n - 1)
    # NOTE: reflect about both edges without repeating them: -1 -> 1 and n -> n - 2.
    return (n - 1) - np.abs((n - 1) - np.abs(j))


def _check_mode(x: Tensor, widths: list, mode: str, value: Any) -> None:
    """The limits torch puts on the non-constant modes."""
    if value is not None and value != 0:
        raise RuntimeError(f'pad: padding mode "{mode}" doesn\'t take in value argument '
                           f"(got value={value})")
    k = len(widths)
    if x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: padding size {2 * k} is not supported for {x.ndim}D input tensor in "
            f"{mode!r} mode: it pads the last {k} dimension(s) of a {k + 1}D or {k + 2}D input")
    for d, (lo, hi) in enumerate(widths, x.ndim - k):
        n = x.shape[d]
        if mode == "reflect" and (lo >= n or hi >= n):
            raise RuntimeError(f"pad: padding size should be less than the corresponding input "
                               f"dimension in reflect mode, but got padding ({lo}, {hi}) at "
                               f"dimension {d} of input {tuple(x.shape)}")
        kept = n - max(-lo, 0) - max(-hi, 0)
        if mode == "circular" and (lo > kept or hi > kept):
            raise RuntimeError(f"pad: padding ({lo}, {hi}) at dimension {d} of input "
                               f"{tuple(x.shape)} wraps around the {kept} remaining entries "
                               "more than once in circular mode")
        if n == 0:
            raise RuntimeError(f"pad: cannot pad the empty dimension {d} of input "
                               f"{tuple(x.shape)} in {mode!r} mode")


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last len(pad) // 2 dimensions, with `pad` listing (before, after) widths from
    the last dimension backwards (torch.nn.functional.pad)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: input must be a Tensor, got {type(input).__name__}")
    widths_rev = [int(p) for p in pad]
    if len(widths_rev) % 2:
        raise RuntimeError(f"pad: padding length must be divisible by 2, got {tuple(pad)}")
    k = len(widths_rev) // 2
    if k > input.ndim:
        raise RuntimeError(f"pad: padding length {len(widths_rev)} is too large for a "
                           f"{input.ndim}D input (shape {tuple(input.shape)})")
    if mode not in MODES:
        raise NotImplementedError(f"pad: unknown padding mode {mode!r}; use one of {MODES}")
    widths = [(widths_rev[2 * i], widths_rev[2 * i + 1]) for i in reversed(range(k))]
    lead = input.ndim - k
    for d, (lo, hi) in enumerate(widths, lead):
        if input.shape[d] + lo + hi < 0:
            raise RuntimeError(f"pad: input size {input.shape[d]} at dimension {d}, plus "
                               f"padding ({lo}, {hi}), gives a negative output size (input "
                               f"shape {tuple(input.shape)})")
    if mode == "constant":
        full = ((0, 0),) * lead + tuple(widths)
        return ConstantPad.apply(input, widths=full, value=0.0 if value is None else value)
    _check_mode(input, widths, mode, value)
    positions = [_source_positions(mode, input.shape[d], lo, hi)
                 for d, (lo, hi) in enumerate(widths, lead)]
    return getitem(input, (Ellipsis,) + np.ix_(*positions))
