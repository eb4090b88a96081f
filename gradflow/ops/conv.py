"""1-D and 2-D convolutions and their transposes, lowered to im2col and a batched matmul (as
in Caffe and Chainer); the 3-D ones are in gradflow.ops.conv3d.

`im2col_array` copies every kernel window of the padded input into a column and
`col2im_array`, its adjoint, adds columns back into the image. Each is its family's one entry:
kernel arrays run the kernels of kernels/conv.cu, other arrays the NumPy/CuPy reference beside
it (`im2col_reference`, `col2im_reference`); the products go through `matmul_arrays`
(gradflow.ops.matmul), which picks cuBLAS or the array module; a depthwise convolution
(groups == in_channels) of kernel arrays skips the lowering for kernels/depthwise.cu's direct
kernels (`_depthwise`), whose twin is the grouped path here. Three ops close under
differentiation: `Conv2d`, its input gradient `Conv2dGradInput` (a transposed convolution)
and its weight gradient `Conv2dGradWeight`; each one's backward is made of the three, so every
derivative order works. Each runs over the batch in chunks whose columns fit in the workspace
limit (`set_conv_workspace_limit`), so the lowered buffer stays bounded. A transposed
convolution is `Conv2dGradInput` applied to its input, and a 1-D convolution or its transpose
runs the 2-D ops on a height-1 image, so all of them share the kernels and the CPU fast paths.
The pooling ops reuse the windows through `Im2col`; the window geometry both share lives in
gradflow.ops.window.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

from .. import dtypes
from ..amp.autocast_mode import autocast_policy
from ..argcheck import ntuple
from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..backend import array_module
from ..cuda import compiler, depthwise
from ..cuda import conv as kernels
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .matmul import matmul_arrays
from .pad import ConstantPad, constant_pad_array
from .shape import reshape, squeeze, unsqueeze
from .window import Window, batch_view, from_batch


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
    # NOTE: float16/bfloat16 overlaps add up in float32, rounded once, as torch's
    out = xp.zeros((n, c, h + pt + pb, w + pl + pr), dtypes.accumulation(cols.dtype))
    if batch_inner:
        taps = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 1, 2, 4, 5)
    else:
        taps = cols.reshape(n, c, kh, kw, oh, ow)
    for ky, kx in itertools.product(range(kh), range(kw)):
        y, x = ky * dh, kx * dw
        out[:, :, y:y + sh * (oh - 1) + 1:sh, x:x + sw * (ow - 1) + 1:sw] += taps[:, :, ky, kx]
    return out[:, :, pt:pt + h, pl:pl + w].astype(cols.dtype, copy=False)


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


def _depthwise(a, groups: int, channels: int) -> bool:
    """Whether kernels/depthwise.cu runs this convolution: a depthwise one (each group one
    input channel, groups > 1) on kernel arrays of a dtype the file instantiates. Its NumPy
    twin is the grouped path below."""
    return (groups > 1 and groups == channels and compiler.uses_kernels(a)
            and a.dtype in depthwise.DTYPES)


def conv2d_array(x, w, window: Window, groups: int, columns=None):
    """(N, C, H, W) x (O, C/g, kh, kw) -> (N, O, oh, ow): per chunk of the batch, one product
    (g, O/g, C/g*kh*kw) @ (g, C/g*kh*kw, m*oh*ow) of the weight with the columns. `columns`
    are the whole batch's, already lowered (see `lowered_once`)."""
    if _depthwise(x, groups, x.shape[1]):
        return depthwise.forward(x, w, window)
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
                                                     x.itemsize)) != 1:
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
    if _depthwise(gy, groups, shape[1]):
        return depthwise.grad_input(gy, w, shape, window)
    if groups == 1 and not compiler.uses_kernels(gy):
        return _grad_input_folded(gy, w, shape, window)
    xp = array_module(gy)
    n, o = shape[0], w.shape[0]
    weight_t = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)
    grads = gy.reshape(n, o, math.prod(gy.shape[2:]))  # no -1: n may be 0
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
    if _depthwise(x, groups, x.shape[1]):
        return depthwise.grad_weight(x, gy, wshape, window)
    xp = array_module(x)
    o = wshape[0]
    gw = xp.zeros((groups, o // groups, math.prod(wshape[1:])), x.dtype)
    grads = gy.reshape(x.shape[0], o, math.prod(gy.shape[2:]))  # no -1: n may be 0
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


# -- argument rules of the convolutions of every dimension (conv3d.py uses them too) --------
_KERNEL_AXES = {1: "kW", 2: "kH, kW", 3: "kD, kH, kW"}


def conv_geometry(owner: str, kernel: tuple, stride: Any, padding: Any, dilation: Any) -> tuple:
    """(stride, dilation, padding) of a convolution with this kernel: padding as one
    (before, after) pair per spatial dimension, from ints, 'valid' or 'same'."""
    n = len(kernel)
    stride = ntuple(owner, "stride", stride, n, minimum=1)
    dilation = ntuple(owner, "dilation", dilation, n, minimum=1)
    if isinstance(padding, str):
        if padding == "valid":
            return stride, dilation, ((0, 0),) * n
        if padding != "same":
            raise RuntimeError(f"{owner}: invalid padding string {padding!r}; use 'valid', "
                               f"'same', an int or {n} ints")
        if any(s != 1 for s in stride):
            raise RuntimeError(f"{owner}: padding='same' is not supported for strided "
                               f"convolutions (stride {stride})")
        # NOTE: a dilated kernel spans d*(k-1)+1 pixels, so 'same' pads d*(k-1) in all; when
        # that is odd the extra pixel goes after, as torch does.
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return stride, dilation, tuple((t // 2, t - t // 2) for t in totals)
    widths = ntuple(owner, "padding", padding, n)
    if min(widths) < 0:
        raise RuntimeError(f"{owner}: negative padding is not supported, got {padding!r}")
    return stride, dilation, tuple((p, p) for p in widths)


def conv_out_sizes(op: str, shape: tuple, kernel: tuple, stride: tuple, dilation: tuple,
                   pads: tuple) -> tuple:
    """The output's spatial sizes, checked to hold at least one window per dimension."""
    padded = [n + lo + hi for n, (lo, hi) in zip(shape[2:], pads)]
    out = tuple([(n - d * (k - 1) - 1) // s + 1
                 for n, k, s, d in zip(padded, kernel, stride, dilation)])
    if min(out) < 1:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise RuntimeError(f"{op}: kernel size {kernel} (dilated span {span}) is larger than "
                           f"the padded input {tuple(padded)} (input shape {tuple(shape)}); the "
                           f"output size would be {out}")
    return out


def transposed_geometry(op: str, x: Tensor, kernel: tuple, stride: Any, padding: Any,
                        output_padding: Any, dilation: Any) -> tuple:
    """(stride, dilation, padding pairs, output sizes) of a transposed convolution of the
    batched input x: each output size is (n-1)*stride - 2*padding + dilation*(k-1) + 1 +
    output_padding, and output_padding must stay below the stride or the dilation."""
    n = len(kernel)
    stride, dilation, pads = conv_geometry(op, kernel, stride, ntuple(op, "padding", padding, n),
                                           dilation)
    extra = ntuple(op, "output_padding", output_padding, n, minimum=0)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise RuntimeError(f"{op}: output padding must be smaller than either stride or "
                           f"dilation, got output_padding={extra} with stride={stride} and "
                           f"dilation={dilation}")
    sizes = tuple((i - 1) * s - lo - hi + d * (k - 1) + 1 + e for i, k, s, d, (lo, hi), e in
                  zip(x.shape[2:], kernel, stride, dilation, pads, extra))
    if min(sizes) < 1:
        raise RuntimeError(f"{op}: the output size {sizes} is too small (input shape "
                           f"{tuple(x.shape)}, kernel size {kernel}, padding {padding!r})")
    return stride, dilation, pads, sizes


def check_conv(op: str, x: Tensor, weight: Tensor, bias: Tensor | None, groups: int,
               transposed: bool = False) -> None:
    """A convolution's own checks: the weight, groups and bias against the batched input.
    The weight is (out, in/groups, *kernel), or (in, out/groups, *kernel) when `transposed`."""
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    wshape = tuple(weight.shape)
    if weight.ndim != x.ndim:
        layout = "in_channels, out_channels/groups" if transposed else \
            "out_channels, in_channels/groups"
        raise RuntimeError(f"{op}: weight must be {x.ndim}-D ({layout}, "
                           f"{_KERNEL_AXES[x.ndim - 2]}), got shape {wshape}")
    if x.dtype != weight.dtype:
        raise RuntimeError(f"{op}: input dtype {x.dtype} does not match weight dtype "
                           f"{weight.dtype}")
    if not dtypes.is_floating(x.dtype):
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise RuntimeError(f"{op}: groups must be a positive int, got {groups!r}")
    if wshape[0] % groups:
        side = "input" if transposed else "output"
        raise RuntimeError(f"{op}: groups={groups} must divide the weight's {wshape[0]} {side} "
                           f"channels (weight shape {wshape})")
    channels = x.shape[1]
    expects = wshape[0] if transposed else wshape[1] * groups
    if channels != expects:
        grouped = f" ({groups} groups of {wshape[1]})" if groups > 1 and not transposed else ""
        raise RuntimeError(f"{op}: input has {channels} channels but weight expects "
                           f"{expects}{grouped} (weight shape {wshape})")
    if bias is not None:
        out_channels = wshape[1] * groups if transposed else wshape[0]
        if not isinstance(bias, Tensor):
            raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
        if tuple(bias.shape) != (out_channels,):
            raise RuntimeError(f"{op}: bias must have shape ({out_channels},) for weight shape "
                               f"{wshape}, got {tuple(bias.shape)}")
        if bias.dtype != x.dtype:
            raise RuntimeError(f"{op}: bias dtype {bias.dtype} does not match input dtype "
                               f"{x.dtype}")


def add_bias(out: Tensor, bias: Tensor | None) -> Tensor:
    """out + bias over the channels of an (N, C, *spatial) output."""
    if bias is None:
        return out
    return out + reshape(bias, (bias.shape[0],) + (1,) * (out.ndim - 2))


def _window_2d(kernel: tuple, stride: tuple, dilation: tuple, pads: tuple) -> Window:
    """The 2-D Window of a 1-D or 2-D convolution: a 1-D one runs on a height-1 image."""
    if len(kernel) == 1:
        return Window((1,) + kernel, (1,) + stride, (1,) + dilation, (0, 0) + pads[0])
    return Window(kernel, stride, dilation, pads[0] + pads[1])


# -- the functional forms -----------------------------------------------------------------------
@autocast_policy("conv2d")
def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of an (N, C, H, W) or (C, H, W) input with an
    (O, C/groups, kh, kw) weight (torch.nn.functional.conv2d)."""
    x, batched = batch_view("conv2d", input, 2)
    check_conv("conv2d", x, weight, bias, groups)
    kernel = tuple(weight.shape[2:])
    stride, dilation, pads = conv_geometry("conv2d", kernel, stride, padding, dilation)
    conv_out_sizes("conv2d", x.shape, kernel, stride, dilation, pads)
    out = Conv2d.apply(x, weight, window=_window_2d(kernel, stride, dilation, pads),
                       groups=groups)
    return from_batch(add_bias(out, bias), batched)


@autocast_policy("conv1d")
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D cross-correlation of an (N, C, L) or (C, L) input with an (O, C/groups, k) weight
    (torch.nn.functional.conv1d): conv2d's ops on a height-1 image."""
    x, batched = batch_view("conv1d", input, 1)
    check_conv("conv1d", x, weight, bias, groups)
    kernel = tuple(weight.shape[2:])
    stride, dilation, pads = conv_geometry("conv1d", kernel, stride, padding, dilation)
    conv_out_sizes("conv1d", x.shape, kernel, stride, dilation, pads)
    out = Conv2d.apply(unsqueeze(x, 2), unsqueeze(weight, 2),
                       window=_window_2d(kernel, stride, dilation, pads), groups=groups)
    return from_batch(add_bias(squeeze(out, 2), bias), batched)


def _conv_transpose(op: str, input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
                    padding: Any, output_padding: Any, groups: int, dilation: Any,
                    spatial: int) -> Tensor:
    """conv_transpose1d/2d: conv2d's input gradient (`Conv2dGradInput`) applied to the input,
    whose backward is conv2d and its weight gradient."""
    x, batched = batch_view(op, input, spatial)
    check_conv(op, x, weight, bias, groups, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride, dilation, pads, sizes = transposed_geometry(op, x, kernel, stride, padding,
                                                        output_padding, dilation)
    window = _window_2d(kernel, stride, dilation, pads)
    if spatial == 1:
        x, weight, sizes = unsqueeze(x, 2), unsqueeze(weight, 2), (1,) + sizes
    # NOTE: with output_padding >= stride (allowed below the dilation) the output holds more
    # windows than the input has pixels: the input is zero-padded after, as torch's output
    # there gets no contribution.
    excess = [o - i for o, i in zip(window.out_size(*sizes), x.shape[2:])]
    if any(excess):
        x = ConstantPad.apply(x, widths=((0, 0), (0, 0), (0, excess[0]), (0, excess[1])),
                              value=0.0)
    shape = (x.shape[0], weight.shape[1] * groups) + sizes
    out = Conv2dGradInput.apply(x, weight, shape=shape, window=window, groups=groups)
    if spatial == 1:
        out = squeeze(out, 2)
    return from_batch(add_bias(out, bias), batched)


@autocast_policy("conv_transpose1d")
def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """1-D transposed convolution of an (N, C, L) or (C, L) input with a (C, O/groups, k)
    weight (torch.nn.functional.conv_transpose1d): conv1d's input gradient."""
    return _conv_transpose("conv_transpose1d", input, weight, bias, stride, padding,
                           output_padding, groups, dilation, 1)


@autocast_policy("conv_transpose2d")
def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """2-D transposed convolution of an (N, C, H, W) or (C, H, W) input with a
    (C, O/groups, kh, kw) weight (torch.nn.functional.conv_transpose2d): conv2d's input
    gradient."""
    return _conv_transpose("conv_transpose2d", input, weight, bias, stride, padding,
                           output_padding, groups, dilation, 2)
