"""3-D convolution and its transpose (torch.nn.functional.conv3d, conv_transpose3d), lowered
to vol2col (im2col over volumes) and one matrix product.

`vol2col_array` gathers every kernel window of the padded (N, C, D, H, W) input into a
column through a strided view (no CUDA kernel: the view and one copy serve NumPy and CuPy),
and `col2vol_array`, its adjoint, adds the columns back with one strided-slice add per kernel
tap. The two are a `LinearOp` pair, the product is gradflow's matmul (cuBLAS on the GPU,
through `matmul_arrays`), so the gradients of every order are made of the same three ops:
conv3d is matmul(weight, vol2col(x)) and conv_transpose3d is col2vol(matmul(weight^T, x)).
Unlike conv2d, the whole batch is lowered at once (no workspace chunking).
"""
from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

from ..amp.autocast_mode import autocast_policy
from ..backend import array_module
from ..tensor import Tensor
from .adjoint import LinearOp, adjoints
from .conv import (
    add_bias,
    check_conv,
    conv_geometry,
    conv_out_sizes,
    transposed_geometry,
)
from .matmul import matmul
from .pad import ConstantPad, constant_pad_array
from .shape import permute, reshape, transpose
from .window import batch_view, from_batch


class VolumeWindow(NamedTuple):
    """Where a 3-D convolution reads: (depth, height, width) triples, and the padding as one
    (before, after) pair per dimension."""

    kernel: tuple
    stride: tuple
    dilation: tuple
    padding: tuple

    def out_size(self, *sizes: int) -> tuple:
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d in zip(
            sizes, self.padding, self.kernel, self.stride, self.dilation))


def vol2col_array(a: Any, window: VolumeWindow):
    """(N, C, D, H, W) -> (C*kd*kh*kw, N*od*oh*ow): the whole batch's columns side by side,
    their rows ordered (channel, kernel taps) like a flattened (O, C, kd, kh, kw) weight."""
    xp = array_module(a)
    n, c = a.shape[:2]
    out = window.out_size(*a.shape[2:])
    if any(lo or hi for lo, hi in window.padding):
        a = constant_pad_array(a, ((0, 0), (0, 0)) + tuple(window.padding), 0.0)
    # NOTE: tap k of output voxel o reads padded position o*stride + k*dilation along each
    # axis, so the taps step by the dilation and the voxels by the stride.
    spatial = a.strides[2:]
    windows = xp.lib.stride_tricks.as_strided(
        a, (n, c) + tuple(window.kernel) + out,
        a.strides[:2] + tuple(s * d for s, d in zip(spatial, window.dilation))
        + tuple(s * st for s, st in zip(spatial, window.stride)))
    k = len(window.kernel)
    order = (1,) + tuple(range(2, 2 + k)) + (0,) + tuple(range(2 + k, 2 + 2 * k))
    return xp.ascontiguousarray(windows.transpose(order)).reshape(
        c * math.prod(window.kernel), n * math.prod(out))


def col2vol_array(cols: Any, shape: tuple, window: VolumeWindow):
    """The adjoint of `vol2col_array`: add each column entry back onto the voxel it was read
    from, and drop the padding."""
    xp = array_module(cols)
    n, c = shape[:2]
    out = window.out_size(*shape[2:])
    taps = cols.reshape((c,) + tuple(window.kernel) + (n,) + out)
    padded = xp.zeros((n, c) + tuple(m + lo + hi for m, (lo, hi) in zip(shape[2:],
                                                                        window.padding)),
                      cols.dtype)
    for tap in itertools.product(*(range(k) for k in window.kernel)):
        where = tuple(slice(t * d, t * d + s * (o - 1) + 1, s) for t, d, s, o in zip(
            tap, window.dilation, window.stride, out))
        padded[(slice(None), slice(None)) + where] += taps[(slice(None),) + tap].swapaxes(0, 1)
    return padded[(slice(None), slice(None)) + tuple(slice(lo, lo + m) for m, (lo, _) in zip(
        shape[2:], window.padding))]


class Vol2col(LinearOp):
    """Unfold the kernel windows of a volume into columns (3-D im2col)."""

    op_name, params = "vol2col", ("window",)
    compute = staticmethod(vol2col_array)


class Col2vol(LinearOp):
    """Fold columns back into a volume, summing overlaps (3-D col2im)."""

    op_name, params = "col2vol", ("shape", "window")
    compute = staticmethod(col2vol_array)


adjoints(Vol2col, Col2vol)


@autocast_policy("conv3d")
def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """3-D cross-correlation of an (N, C, D, H, W) or (C, D, H, W) input with an
    (O, C/groups, kd, kh, kw) weight (torch.nn.functional.conv3d)."""
    x, batched = batch_view("conv3d", input, 3)
    check_conv("conv3d", x, weight, bias, groups)
    kernel = tuple(weight.shape[2:])
    stride, dilation, pads = conv_geometry("conv3d", kernel, stride, padding, dilation)
    sizes = conv_out_sizes("conv3d", x.shape, kernel, stride, dilation, pads)
    n, o = x.shape[0], weight.shape[0]
    cols = Vol2col.apply(x, window=VolumeWindow(kernel, stride, dilation, pads))
    # (g, O/g, C/g*K) @ (g, C/g*K, N*P): one product per group, the batch in the columns
    prod = matmul(reshape(weight, (groups, o // groups, -1)),
                  reshape(cols, (groups, cols.shape[0] // groups, cols.shape[1])))
    out = permute(reshape(prod, (o, n, math.prod(sizes))), 1, 0, 2)
    return from_batch(add_bias(reshape(out, (n, o) + sizes), bias), batched)


@autocast_policy("conv_transpose3d")
def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """3-D transposed convolution of an (N, C, D, H, W) or (C, D, H, W) input with a
    (C, O/groups, kd, kh, kw) weight (torch.nn.functional.conv_transpose3d): conv3d's input
    gradient, col2vol of the weight's transpose times the input."""
    op = "conv_transpose3d"
    x, batched = batch_view(op, input, 3)
    check_conv(op, x, weight, bias, groups, transposed=True)
    kernel = tuple(weight.shape[2:])
    stride, dilation, pads, sizes = transposed_geometry(op, x, kernel, stride, padding,
                                                        output_padding, dilation)
    window = VolumeWindow(kernel, stride, dilation, pads)
    # NOTE: output_padding at or above the stride (allowed below the dilation) makes room for
    # more windows than the input has voxels; the input is zero-padded after to match.
    excess = [o - i for o, i in zip(window.out_size(*sizes), x.shape[2:])]
    if any(excess):
        x = ConstantPad.apply(x, widths=((0, 0), (0, 0)) + tuple((0, e) for e in excess),
                              value=0.0)
    n, c = x.shape[:2]
    out_channels = weight.shape[1] * groups
    # (g, O/g*K, C/g) @ (g, C/g, N*P): the columns col2vol folds into the output
    voxels = math.prod(x.shape[2:])  # sizes spelt out: an empty batch has no -1
    inputs = reshape(permute(reshape(x, (n, c, voxels)), 1, 0, 2),
                     (groups, c // groups, n * voxels))
    cols = matmul(transpose(reshape(weight, (groups, c // groups, -1)), 1, 2), inputs)
    out = Col2vol.apply(reshape(cols, (out_channels * math.prod(kernel), n * voxels)),
                        shape=(n, out_channels) + sizes, window=window)
    return from_batch(add_bias(out, bias), batched)
