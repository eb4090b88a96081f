"""2-D convolution lowered to im2col and one batched matmul (as in Caffe and Chainer).

`Im2col` copies every kernel window of the padded input into a column; `Col2im`, its adjoint,
adds columns back into the image. Each is the other's backward, so `conv2d`, composed from them,
reshape and matmul, gets first and second derivatives from existing ops. The pooling ops reuse
the same windows.
"""
from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np

from ..autograd.function import Op
from ..backend import array_module
from ..tensor import Tensor
from .matmul import matmul
from .pad import constant_pad_array
from .shape import reshape, squeeze, unsqueeze


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


def im2col_array(a: Any, window: Window, value: float):
    """(N, C, H, W) -> (N, C*kh*kw, oh*ow): one column per output pixel, its rows ordered
    (channel, kernel row, kernel column) like a flattened (O, C, kh, kw) weight."""
    xp = array_module(a)
    n, c, h, w = a.shape
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    oh, ow = window.out_size(h, w)
    if any(window.padding):
        pt, pb, pl, pr = window.padding
        a = constant_pad_array(a, ((0, 0), (0, 0), (pt, pb), (pl, pr)), value)
    s_n, s_c, s_h, s_w = a.strides
    # NOTE: kernel tap (ky, kx) of output pixel (oy, ox) reads padded row oy*sh + ky*dh and
    # column ox*sw + kx*dw, so the taps step by the dilation and the pixels by the stride.
    windows = xp.lib.stride_tricks.as_strided(
        a, (n, c, kh, kw, oh, ow), (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw))
    return xp.ascontiguousarray(windows).reshape(n, c * kh * kw, oh * ow)


def col2im_array(cols: Any, shape: tuple, window: Window):
    """The adjoint of `im2col_array`: add each column entry back onto the pixel it was read
    from, one strided-slice add per kernel tap, and drop the padding."""
    xp = array_module(cols)
    n, c, h, w = shape
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    pt, pb, pl, pr = window.padding
    oh, ow = window.out_size(h, w)
    out = xp.zeros((n, c, h + pt + pb, w + pl + pr), cols.dtype)
    taps = cols.reshape(n, c, kh, kw, oh, ow)
    for ky, kx in itertools.product(range(kh), range(kw)):
        y, x = ky * dh, kx * dw
        out[:, :, y:y + sh * (oh - 1) + 1:sh, x:x + sw * (ow - 1) + 1:sw] += taps[:, :, ky, kx]
    return out[:, :, pt:pt + h, pl:pl + w]


class Im2col(Op):
    """Unfold kernel windows into columns (torch.nn.functional.unfold's layout); `value` fills
    the padding (0 for convolution, -inf for max pooling)."""

    op_name = "im2col"

    @staticmethod
    def forward(ctx, x, window, value):
        ctx.in_shape, ctx.window = tuple(x.shape), window
        return im2col_array(x.array, window, value)

    @staticmethod
    def backward(ctx, g):
        return Col2im.apply(g, shape=ctx.in_shape, window=ctx.window)


class Col2im(Op):
    """Fold columns back into an image, summing overlaps (torch.nn.functional.fold)."""

    op_name = "col2im"

    @staticmethod
    def forward(ctx, cols, shape, window):
        ctx.window = window
        return col2im_array(cols.array, shape, window)

    @staticmethod
    def backward(ctx, g):
        return Im2col.apply(g, window=ctx.window, value=0.0)


# -- argument handling shared with pooling ----------------------------------------------------
def pair(op: str, name: str, value: Any, minimum: int | None = None) -> tuple:
    """An int or a pair of ints as a (height, width) pair, checked against `minimum`."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    items = tuple(int(v) for v in items)
    if minimum is not None and min(items) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise RuntimeError(f"{op}: {name} must be {what}, got {value!r}")
    return items


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


def conv_padding(padding: Any, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"conv2d: invalid padding string {padding!r}; use 'valid', "
                             "'same', an int or a pair of ints")
        if stride != (1, 1):
            raise RuntimeError(f"conv2d: padding='same' is not supported for strided "
                               f"convolutions (stride {stride})")
        # NOTE: a dilated kernel spans d*(k-1)+1 pixels, so 'same' pads d*(k-1) in all; when
        # that is odd the extra pixel goes after (bottom/right), as torch does.
        th, tw = (d * (k - 1) for k, d in zip(kernel, dilation))
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = pair("conv2d", "padding", padding)
    if min(ph, pw) < 0:
        raise RuntimeError(f"conv2d: negative padding is not supported, got {padding!r}")
    return (ph, ph, pw, pw)


def _check_conv(x: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> None:
    if not isinstance(weight, Tensor):
        raise TypeError(f"conv2d: weight must be a Tensor, got {type(weight).__name__}")
    wshape = tuple(weight.shape)
    if weight.ndim != 4:
        raise RuntimeError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, "
                           f"kW), got shape {wshape}")
    if x.dtype != weight.dtype:
        raise RuntimeError(f"conv2d: input dtype {x.dtype} does not match weight dtype "
                           f"{weight.dtype}")
    if x.dtype.kind != "f":
        raise RuntimeError(f"conv2d: expected a floating-point input, got {x.dtype}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise RuntimeError(f"conv2d: groups must be a positive int, got {groups!r}")
    if wshape[0] % groups:
        raise RuntimeError(f"conv2d: groups={groups} must divide the weight's {wshape[0]} "
                           f"output channels (weight shape {wshape})")
    channels = x.shape[1]
    if channels != wshape[1] * groups:
        expects = wshape[1] * groups
        grouped = f" ({groups} groups of {wshape[1]})" if groups > 1 else ""
        raise RuntimeError(f"conv2d: input has {channels} channels but weight expects "
                           f"{expects}{grouped} (weight shape {wshape})")
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"conv2d: bias must be a Tensor or None, got {type(bias).__name__}")
        if tuple(bias.shape) != (wshape[0],):
            raise RuntimeError(f"conv2d: bias must have shape ({wshape[0]},) for weight shape "
                               f"{wshape}, got {tuple(bias.shape)}")
        if bias.dtype != x.dtype:
            raise RuntimeError(f"conv2d: bias dtype {bias.dtype} does not match input dtype "
                               f"{x.dtype}")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of an (N, C, H, W) or (C, H, W) input with an
    (O, C/groups, kh, kw) weight (torch.nn.functional.conv2d)."""
    x, batched = to_batch("conv2d", input)
    _check_conv(x, weight, bias, groups)
    stride = pair("conv2d", "stride", stride, minimum=1)
    dilation = pair("conv2d", "dilation", dilation, minimum=1)
    kernel = tuple(weight.shape[2:])
    window = Window(kernel, stride, dilation, conv_padding(padding, kernel, stride, dilation))
    n, c, h, w = x.shape
    oh, ow = check_window("conv2d", window, x.shape)
    o = weight.shape[0]
    # NOTE: Im2col's rows run (channel, ky, kx) with channels grouped contiguously, so the
    # columns split into (groups, C/groups*kh*kw) rows and meet the weight's
    # (groups, O/groups, C/groups*kh*kw) in one matmul broadcast over the batch.
    cols = reshape(Im2col.apply(x, window=window, value=0.0), (n, groups, -1, oh * ow))
    out = reshape(matmul(reshape(weight, (groups, o // groups, -1)), cols), (n, o, oh, ow))
    if bias is not None:
        out = out + reshape(bias, (o, 1, 1))
    return from_batch(out, batched)
