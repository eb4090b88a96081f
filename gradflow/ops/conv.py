"""2-D convolution lowered to im2col and a batched matmul (as in Caffe and Chainer).

`im2col_array` copies every kernel window of the padded input into a column and
`col2im_array`, its adjoint, adds columns back into the image. Each is its family's one entry:
kernel arrays run the kernels of kernels/conv.cu, other arrays the NumPy/CuPy reference beside
it (`im2col_reference`, `col2im_reference`); the products go through `matmul_arrays`
(gradflow.ops.matmul), which picks cuBLAS or the array module. Three ops close under
differentiation: `Conv2d`, its input gradient `Conv2dGradInput` (a transposed convolution)
and its weight gradient `Conv2dGradWeight`; each one's backward is made of the three, so every
derivative order works. Each runs over the batch in chunks whose columns fit in the workspace
limit (`set_conv_workspace_limit`), so the lowered buffer stays bounded.
The pooling ops reuse the windows through `Im2col`; the window geometry both share lives in
gradflow.ops.window.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

from ..argcheck import pair
from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..backend import array_module
from ..cuda import compiler
from ..cuda import conv as kernels
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .matmul import matmul_arrays
from .pad import constant_pad_array
from .shape import reshape
from .window import Window, check_window, conv_padding, from_batch, to_batch


def im2col_array(a: Any, window: Window, value: float = 0.0, batch_inner: bool = False):
    """(N, C, H, W) -> (N, C*kh*kw, oh*ow): one column per output pixel, its rows ordered
    (channel, kernel row, kernel column) like a flattened (O, C, kh, kw) weight. With
    `batch_inner`, (C*kh*kw, N*oh*ow): the whole batch's columns side by side, so that one
    matrix product convolves the batch (many small products run far slower). Kernel arrays
    run kernels/conv.cu's im2col, others `im2col_reference`."""
    if compiler.uses_kernels(a):
        return kernels.im2col(a, window, value, batch_inner)
    return im2col_reference(a, window, value, batch_inner)


def im2col_reference(a: Any, window: Window, value: float = 0.0, batch_inner: bool = False):
    """`im2col_array` by strided views of the padded input, for NumPy or CuPy arrays."""
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
    if batch_inner:
        return xp.ascontiguousarray(windows.transpose(1, 2, 3, 0, 4, 5)).reshape(
            c * kh * kw, n * oh * ow)
    return xp.ascontiguousarray(windows).reshape(n, c * kh * kw, oh * ow)


def col2im_array(cols: Any, shape: tuple, window: Window, batch_inner: bool = False):
    """The adjoint of `im2col_array` (of the same layout): add each column entry back onto
    the pixel it was read from, and drop the padding. Kernel arrays run kernels/conv.cu's
    col2im (a gather), others `col2im_reference`."""
    if compiler.uses_kernels(cols):
        return kernels.col2im(cols, shape, window, batch_inner)
    return col2im_reference(cols, shape, window, batch_inner)


def col2im_reference(cols: Any, shape: tuple, window: Window, batch_inner: bool = False):
    """`col2im_array` by one strided-slice add per kernel tap, for NumPy or CuPy arrays."""
    xp = array_module(cols)
    n, c, h, w = shape
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    pt, pb, pl, pr = window.padding
    oh, ow = window.out_size(h, w)
    out = xp.zeros((n, c, h + pt + pb, w + pl + pr), cols.dtype)
    if batch_inner:
        taps = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 1, 2, 4, 5)
    else:
        taps = cols.reshape(n, c, kh, kw, oh, ow)
    for ky, kx in itertools.product(range(kh), range(kw)):
        y, x = ky * dh, kx * dw
        out[:, :, y:y + sh * (oh - 1) + 1:sh, x:x + sw * (ow - 1) + 1:sw] += taps[:, :, ky, kx]
    return out[:, :, pt:pt + h, pl:pl + w]


class Im2col(LinearOp):
    """Unfold kernel windows into columns (torch.nn.functional.unfold's layout); `value` fills
    the padding (0 for convolution, -inf for max pooling)."""

    op_name, params = "im2col", ("window",)
    compute = staticmethod(im2col_array)


class Col2im(LinearOp):
    """Fold columns back into an image, summing overlaps (torch.nn.functional.fold)."""

    op_name, params = "col2im", ("shape", "window")
    compute = staticmethod(col2im_array)


adjoints(Im2col, Col2im)


# -- convolution ------------------------------------------------------------------------------
_workspace = {"bytes": 256 * 2**20}  # the most memory one chunk's im2col columns may take


def set_conv_workspace_limit(nbytes: int) -> None:
    """Bound the memory a convolution's lowered (im2col) buffer may take, in bytes (default
    256 MiB). Convolutions run over the batch in chunks that fit; a smaller limit saves
    memory at the cost of more, smaller matrix products. One sample's columns always fit."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"set_conv_workspace_limit: nbytes must be a positive int, got "
                         f"{nbytes!r}")
    _workspace["bytes"] = nbytes


def get_conv_workspace_limit() -> int:
    """The convolution workspace limit in bytes (see `set_conv_workspace_limit`)."""
    return _workspace["bytes"]


def _batch_chunks(n: int, shape: tuple, window: Window, itemsize: int) -> list:
    """Slices of the batch whose im2col columns fit in the workspace (at least one sample)."""
    oh, ow = window.out_size(*shape[2:])
    per_sample = shape[1] * math.prod(window.kernel) * oh * ow * itemsize
    step = max(1, _workspace["bytes"] // max(per_sample, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _channels_outer(a, groups: int):
    """(m, O, P) per-sample maps -> (g, O/g, m*P), the layout of batch-inner columns."""
    m, o, pixels = a.shape
    return a.transpose(1, 0, 2).reshape(groups, o // groups, m * pixels)


def conv2d_array(x, w, window: Window, groups: int, columns=None):
    """(N, C, H, W) x (O, C/g, kh, kw) -> (N, O, oh, ow): per chunk of the batch, one product
    (g, O/g, C/g*kh*kw) @ (g, C/g*kh*kw, m*oh*ow) of the weight with the columns. `columns`
    are the whole batch's, already lowered (see `lowered_once`)."""
    xp = array_module(x)
    n, o = x.shape[0], w.shape[0]
    oh, ow = window.out_size(*x.shape[2:])
    weight = w.reshape(groups, o // groups, -1)
    out = xp.empty((n, o, oh * ow), x.dtype)
    for part, cols in _columns(x, window, columns):
        prod = matmul_arrays(weight, cols.reshape(groups, -1, cols.shape[-1]))
        out[part] = prod.reshape(o, -1, oh * ow).transpose(1, 0, 2)
    return out.reshape(n, o, oh, ow)


def lowered_once(x, window: Window):
    """x's batch-inner columns when the CPU path can keep them for the weight gradient, else
    None. On the CPU im2col is a large share of a step and the columns of one chunk are
    bounded by the workspace limit; a GPU lowers them again, faster than it could spare the
    memory."""
    if compiler.uses_kernels(x) or len(_batch_chunks(x.shape[0], x.shape, window,
                                                     x.itemsize)) > 1:
        return None
    return im2col_array(x, window, 0.0, batch_inner=True)


def _columns(x, window: Window, columns=None):
    """Yield (batch slice, its batch-inner columns) per chunk, lowering one chunk at a time;
    a single pair when `columns` is given."""
    if columns is not None:
        yield slice(None), columns
        return
    for part in _batch_chunks(x.shape[0], x.shape, window, x.itemsize):
        yield part, im2col_array(x[part], window, 0.0, batch_inner=True)


def conv2d_grad_input_array(gy, w, shape: tuple, window: Window, groups: int):
    """The input gradient of conv2d (a transposed convolution): W^T gy, folded by col2im
    (on the CPU without groups, folded in a layout with longer runs: `_grad_input_folded`)."""
    if groups == 1 and not compiler.uses_kernels(gy):
        return _grad_input_folded(gy, w, shape, window)
    xp = array_module(gy)
    n, o = shape[0], w.shape[0]
    weight_t = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)
    grads = gy.reshape(n, o, -1)
    gx = xp.empty(shape, gy.dtype)
    for part in _batch_chunks(n, shape, window, gy.itemsize):
        chunk = grads[part]
        cols = matmul_arrays(weight_t, _channels_outer(chunk, groups))
        gx[part] = col2im_array(cols.reshape(-1, cols.shape[-1]),
                                (chunk.shape[0],) + tuple(shape[1:]), window, batch_inner=True)
    return gx


def _grad_input_folded(gy, w, shape: tuple, window: Window):
    """conv2d's input gradient on the CPU, per chunk of m samples: one product lays every
    tap's block out with the channels innermost, (oh, ow, m, C), or the batch innermost,
    (C, oh, ow, m), whichever contiguous run is longer (C against ow*m), and the fold adds
    each block into a padded image of that layout. col2im's (m, C, oh, ow) blocks have runs
    of ow pixels, 2 to 10 in LeNet-5 and a 32x32 VGG's later layers, where NumPy's per-row
    cost dominates: LeNet-5's C3 input gradient took 0.39 against 0.93 ms, VGG-11's last
    layers 5.2 against 8.3 ms (same process)."""
    xp = array_module(gy)
    n, c, h, wd = shape
    o, oh, ow = gy.shape[1:]
    (kh, kw), (sh, sw), (dh, dw) = window.kernel, window.stride, window.dilation
    pt, pb, pl, pr = window.padding
    padded = (h + pt + pb, wd + pl + pr)
    gx = xp.empty(shape, gy.dtype)
    weights: dict = {}  # each layout's re-laid weight (a copy), made once, not per chunk
    for part in _batch_chunks(n, shape, window, gy.itemsize):
        chunk = gy[part]
        m = chunk.shape[0]
        channels_last = c >= ow * m
        if channels_last not in weights:
            weights[channels_last] = (w.transpose(0, 2, 3, 1).reshape(o, -1) if channels_last
                                      else w.transpose(2, 3, 1, 0).reshape(-1, o))
        weight = weights[channels_last]
        if channels_last:  # channels innermost: image (H, W, m, C)
            rows = xp.ascontiguousarray(chunk.transpose(2, 3, 0, 1)).reshape(-1, o)
            taps = matmul_arrays(rows, weight).reshape(oh, ow, m, kh, kw, c).transpose(
                3, 4, 0, 1, 2, 5)
            image = xp.zeros(padded + (m, c), gy.dtype)
            spatial, to_batch_first = image, (2, 3, 0, 1)
        else:  # batch innermost: image (C, H, W, m)
            cols = xp.ascontiguousarray(chunk.transpose(1, 2, 3, 0)).reshape(o, -1)
            taps = matmul_arrays(weight, cols).reshape(kh, kw, c, oh, ow, m).transpose(
                0, 1, 3, 4, 2, 5)
            image = xp.zeros((c,) + padded + (m,), gy.dtype)
            spatial, to_batch_first = image.transpose(1, 2, 0, 3), (3, 2, 0, 1)
        # NOTE: `spatial` views the image with the pixel axes first, as `taps[ky, kx]` has them
        for ky, kx in itertools.product(range(kh), range(kw)):
            y, x = ky * dh, kx * dw
            spatial[y:y + sh * (oh - 1) + 1:sh, x:x + sw * (ow - 1) + 1:sw] += taps[ky, kx]
        gx[part] = spatial[pt:pt + h, pl:pl + wd].transpose(to_batch_first)
    return gx


def conv2d_grad_weight_array(x, gy, wshape: tuple, window: Window, groups: int,
                             columns=None):
    """The weight gradient of conv2d: gy times the columns' transpose; batch and pixels
    together form the contraction, one product per chunk. `columns` are x's, if the forward
    kept them."""
    xp = array_module(x)
    o = wshape[0]
    gw = xp.zeros((groups, o // groups, math.prod(wshape[1:])), x.dtype)
    grads = gy.reshape(x.shape[0], o, -1)
    for part, cols in _columns(x, window, columns):
        rhs = cols.reshape(groups, -1, cols.shape[-1]).transpose(0, 2, 1)
        gw += matmul_arrays(_channels_outer(grads[part], groups), rhs)
    return gw.reshape(wshape)


class _ConvOp(Op):
    """One of conv2d's three ops, each linear in both tensor inputs: forward saves the two and
    runs `compute` on their arrays; every backward is made of the three ops again."""

    @classmethod
    def forward(cls, ctx, a, b, window, groups, **shape):
        ctx.save_for_backward(a, b)
        ctx.args = dict(window=window, groups=groups)
        return cls.compute(a.array, b.array, **shape, **ctx.args)


class Conv2d(_ConvOp):
    """2-D cross-correlation (torch.nn.functional.conv2d without the bias). When the weight
    needs a gradient, the forward's columns may be kept for it (`lowered_once`); the first
    backward uses and drops them."""

    op_name = "conv2d"

    @classmethod
    def forward(cls, ctx, a, b, window, groups):
        ctx.save_for_backward(a, b)
        ctx.args = dict(window=window, groups=groups)
        ctx.columns = None
        if ctx.needs_input_grad[1] and is_grad_enabled():
            ctx.columns = lowered_once(a.array, window)
        return conv2d_array(a.array, b.array, window, groups, ctx.columns)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        columns, ctx.columns = ctx.columns, None  # a retained graph's next backward relowers
        gx = Conv2dGradInput.apply(gy, w, shape=tuple(x.shape), **ctx.args) if need_x else None
        gw = Conv2dGradWeight.apply(x, gy, wshape=tuple(w.shape), columns=columns,
                                    **ctx.args) if need_w else None
        return gx, gw


class Conv2dGradInput(_ConvOp):
    """conv2d's input gradient from the output gradient and the weight; linear in each."""

    op_name = "conv2d_grad_input"
    compute = staticmethod(conv2d_grad_input_array)

    @staticmethod
    def backward(ctx, g):
        gy, w = ctx.saved_tensors
        need_gy, need_w = ctx.needs_input_grad
        d_gy = Conv2d.apply(g, w, **ctx.args) if need_gy else None
        d_w = Conv2dGradWeight.apply(g, gy, wshape=tuple(w.shape), **ctx.args) if need_w else None
        return d_gy, d_w


class Conv2dGradWeight(_ConvOp):
    """conv2d's weight gradient from the input and the output gradient; linear in each."""

    op_name = "conv2d_grad_weight"
    compute = staticmethod(conv2d_grad_weight_array)

    @staticmethod
    def backward(ctx, g):
        x, gy = ctx.saved_tensors
        need_x, need_gy = ctx.needs_input_grad
        d_x = Conv2dGradInput.apply(gy, g, shape=tuple(x.shape), **ctx.args) if need_x else None
        d_gy = Conv2d.apply(x, g, **ctx.args) if need_gy else None
        return d_x, d_gy


def _check_conv(x: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> None:
    """conv2d's own checks, those pooling has no part in: the weight, groups and bias against
    the (batched) input."""
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
    check_window("conv2d", window, x.shape)
    out = Conv2d.apply(x, weight, window=window, groups=groups)
    if bias is not None:
        out = out + reshape(bias, (weight.shape[0], 1, 1))
    return from_batch(out, batched)
