"""3-D pooling over (N, C, D, H, W) volumes (torch.nn.functional.max_pool3d, avg_pool3d,
adaptive_avg_pool3d, adaptive_max_pool3d, lp_pool3d, max_unpool3d).

The ops run the NumPy/CuPy bodies of gradflow.ops.pool_arrays, which take any number of
spatial axes, on both backends (gradflow's kernels are 2-D): `MaxPool3d` (maxima and their
flat positions in each volume; its backward routes each gradient to its maximum, and that
op's backward gathers there) and `LinearPool3d` (average pooling and its adjoint). Adaptive
windows that do not tile the volume are gathered, as gradflow.ops.pool gathers 2-D ones.
"""
from __future__ import annotations

import functools
from typing import Any

from ..argcheck import ntuple
from ..autograd.function import Op
from ..tensor import Tensor
from . import pool_arrays
from .adjoint import adjoints
from .pool import (
    AdaptiveLinearPool,
    AdaptiveLinearPoolAdjoint,
    LinearPool,
    LinearPoolAdjoint,
    MaxPool2dBackward,
    PoolKernels,
    adaptive_avg_reference,
    adaptive_max_gathered,
    adaptive_sizes,
    check_divisor,
    check_float,
    divides,
    lp_pool,
    max_unpool,
    pooled_sizes,
)
from .window import batch_view, from_batch


class MaxPool3d(Op):
    """Max pooling of volumes: the window maxima and their flat positions in each volume."""

    op_name = "max_pool3d"

    @staticmethod
    def forward(ctx, x, out_size, geometry):
        ctx.geometry = geometry
        values, ctx.argmax = pool_arrays.maxpool(x.array, out_size, *geometry)
        ctx.in_shape = tuple(x.shape)
        return values, ctx.argmax

    @staticmethod
    def backward(ctx, g, _):
        return MaxPool3dBackward.apply(g, argmax=ctx.argmax, in_shape=ctx.in_shape,
                                       geometry=ctx.geometry)


class MaxPool3dBackward(MaxPool2dBackward):
    """Route each window's gradient to its maximum; its own backward gathers at the maxima."""

    op_name = "max_pool3d_backward"

    @staticmethod
    def forward(ctx, g, argmax, in_shape, geometry):
        ctx.argmax = argmax
        return pool_arrays.maxpool_backward(g.array, argmax, in_shape, *geometry)


class LinearPool3d(LinearPool):
    """Average pooling of volumes, under its own name in errors."""

    op_name = "avg_pool3d"


class LinearPool3dAdjoint(LinearPoolAdjoint):
    op_name = "avg_pool3d_backward"


class AdaptiveLinearPool3d(AdaptiveLinearPool):
    op_name = "adaptive_avg_pool3d"


class AdaptiveLinearPool3dAdjoint(AdaptiveLinearPoolAdjoint):
    op_name = "adaptive_avg_pool3d_backward"


adjoints(LinearPool3d, LinearPool3dAdjoint)
adjoints(AdaptiveLinearPool3d, AdaptiveLinearPool3dAdjoint)


def _geometry(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool) -> tuple:
    """(kernel, stride, padding, dilation) triples of a 3-D window and its output size,
    checked to be at least one window per axis."""
    kernel = ntuple(op, "kernel_size", kernel_size, 3, minimum=1)
    stride = kernel if stride is None else ntuple(op, "stride", stride, 3, minimum=1)
    padding = ntuple(op, "padding", padding, 3, minimum=0)
    dilation = ntuple(op, "dilation", dilation, 3, minimum=1)
    out_size = pooled_sizes(op, x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    if min(out_size) < 1:
        padded = tuple(n + 2 * p for n, p in zip(x.shape[2:], padding))
        raise RuntimeError(f"{op}: kernel size {kernel} (dilation {dilation}) is larger than "
                           f"the padded input {padded} (input shape {tuple(x.shape)}); the "
                           f"output size would be {out_size}")
    return (kernel, stride, padding, dilation), out_size


def max_pool3d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False):
    """Largest value in each window of an (N, C, D, H, W) or (C, D, H, W) input; with
    `return_indices`, also its flat position in the volume (torch.nn.functional.max_pool3d)."""
    x, batched = batch_view("max_pool3d", input, 3)
    geometry, out_size = _geometry("max_pool3d", x, kernel_size, stride, padding, dilation,
                                   ceil_mode)
    values, indices = MaxPool3d.apply(x, out_size=out_size, geometry=geometry)
    out = from_batch(values, batched)
    return (out, from_batch(indices, batched)) if return_indices else out


def _avg_pool(out_size: tuple, kernel: tuple, stride: tuple, padding: tuple,
              count_include_pad: bool, divisor: int | None) -> PoolKernels:
    """The map and adjoint of average pooling over one 3-D geometry."""
    geometry: dict[str, Any] = dict(kernel=kernel, stride=stride, padding=padding,
                    count_include_pad=count_include_pad, divisor=divisor)
    return PoolKernels(functools.partial(pool_arrays.avgpool, out_size=out_size, **geometry),
                       functools.partial(pool_arrays.avgpool_backward, **geometry))


def avg_pool3d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean of each window of an (N, C, D, H, W) or (C, D, H, W) input
    (torch.nn.functional.avg_pool3d)."""
    x, batched = batch_view("avg_pool3d", input, 3)
    check_float("avg_pool3d", x)
    (kernel, stride, padding, _), out_size = _geometry("avg_pool3d", x, kernel_size, stride,
                                                       padding, 1, ceil_mode)
    check_divisor("avg_pool3d", divisor_override)
    pool = _avg_pool(out_size, kernel, stride, padding, count_include_pad, divisor_override)
    return from_batch(LinearPool3d.apply(x, pool=pool), batched)


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """Average over the windows that split each volume into `output_size` cells
    (torch.nn.functional.adaptive_avg_pool3d)."""
    x, batched = batch_view("adaptive_avg_pool3d", input, 3)
    check_float("adaptive_avg_pool3d", x)
    out_size = adaptive_sizes("adaptive_avg_pool3d", x, output_size, 3)
    if not divides(x, out_size):
        return from_batch(adaptive_avg_reference(x, out_size), batched)
    # NOTE: cells that tile the input are avg_pool3d's windows, with stride = kernel.
    kernel = tuple(n // o for n, o in zip(x.shape[2:], out_size))
    pool = _avg_pool(out_size, kernel, kernel, (0, 0, 0), True, None)
    return from_batch(AdaptiveLinearPool3d.apply(x, pool=pool), batched)


def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False):
    """Largest value in each of the windows that split each volume into `output_size` cells
    (torch.nn.functional.adaptive_max_pool3d)."""
    x, batched = batch_view("adaptive_max_pool3d", input, 3)
    out_size = adaptive_sizes("adaptive_max_pool3d", x, output_size, 3)
    if divides(x, out_size):
        kernel = tuple(n // o for n, o in zip(x.shape[2:], out_size))
        values, indices = MaxPool3d.apply(x, out_size=out_size,
                                          geometry=(kernel, kernel, (0, 0, 0), (1, 1, 1)))
    else:
        values, indices = adaptive_max_gathered(x, out_size)
    out = from_batch(values, batched)
    return (out, from_batch(indices, batched)) if return_indices else out


def lp_pool3d(input: Tensor, norm_type: float, kernel_size: Any, stride: Any = None,
              ceil_mode: bool = False) -> Tensor:
    """Power-average pooling of volumes: (sum over each window of x**p)**(1/p)
    (torch.nn.functional.lp_pool3d)."""
    return lp_pool("lp_pool3d", 3, avg_pool3d, max_pool3d, input, norm_type, kernel_size,
                   stride, ceil_mode)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Any = None) -> Tensor:
    """The partial inverse of max_pool3d: each value back at its index, zeros elsewhere
    (torch.nn.functional.max_unpool3d)."""
    return max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding,
                      output_size)
