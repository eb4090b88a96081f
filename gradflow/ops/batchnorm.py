"""Batch normalization: the fused op, its pieces, its reference, and `batch_norm`, which picks
between them (torch.nn.functional.batch_norm checks the arguments and calls it).

Normalising by the batch's statistics runs `BatchNormTrain` on every backend. Its three pieces
each have one entry that picks the backend, as conv's im2col does: `batch_stats_array` (the
per-channel mean and inverse deviation, and the running-average update), `affine_array`
(y = x * scale[c] + shift[c]) and `backward_arrays` (the closed-form gradients). Kernel arrays
run kernels/batchnorm.cu through gradflow.cuda.batchnorm; other arrays run the NumPy/CuPy twin
beside each entry (`*_reference`). `batch_norm_reference`, the same math composed from
differentiable ops, is what the fused op differentiates for double backward and what the
tests hold the fused op to. Normalising by running statistics (eval) is the same affine map,
composed from differentiable ops.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.reference import reference_backward
from ..backend import array_module
from ..cuda import batchnorm as kernels
from ..cuda import compiler
from ..tensor import Tensor
from .shape import channel_view


def _by_channel(a: Any, dtype: Any = None) -> Any:
    """(N, C, ...) `a` as (N, C, S), S the size one sample's channel spans: a view where the
    layout allows. With `dtype`, cast to it (half precision sums in float32)."""
    n, c = a.shape[:2]
    a = a.reshape(n, c, math.prod(a.shape[2:]))
    return a if dtype is None else a.astype(dtype, copy=False)


def _channel_sums(a: Any) -> Any:
    """The per-channel sums of (N, C, S) `a`, in one pass: NumPy's einsum runs this about
    three times faster than a.sum((0, 2)) for large S, and no slower for S = 1."""
    return array_module(a).einsum("ncs->c", a)


def _channel_dots(a: Any, b: Any) -> Any:
    """The per-channel sums of a * b over (N, C, S) arrays, without the product as a
    temporary."""
    return array_module(a).einsum("ncs,ncs->c", a, b)


def _count(a: Any) -> int:
    """The values one channel holds across the batch (at least 1, so means stay finite)."""
    return max(a.size // max(a.shape[1], 1), 1)


# -- the three pieces: one entry each, then its NumPy/CuPy twin ------------------------------
def batch_stats_array(x: Any, running_mean: Any | None, running_var: Any | None,
                      momentum: float, eps: float) -> tuple:
    """The per-channel mean and 1/sqrt(biased variance + eps) of (N, C, ...) x; updates the
    running averages in place when they are given (torch's rule: the unbiased variance goes
    into `running_var`). Kernel arrays run bn_stats, others `batch_stats_reference`."""
    if compiler.uses_kernels(x):
        return kernels.batch_stats(x, running_mean, running_var, momentum, eps)
    return batch_stats_reference(x, running_mean, running_var, momentum, eps)


def batch_stats_reference(x: Any, running_mean: Any | None, running_var: Any | None,
                          momentum: float, eps: float) -> tuple:
    """`batch_stats_array` for NumPy or CuPy arrays; the statistics are float32 at least."""
    xp = array_module(x)
    x3 = _by_channel(x, np.promote_types(x.dtype, np.float32))
    count = _count(x3)
    mean = _channel_sums(x3) / count
    # NOTE: the variance is the mean square about the mean; E[x^2] - mean^2 would cancel
    # float32's digits away wherever |mean| is large against the deviation.
    centred = xp.subtract(x3, mean[:, None])
    var = _channel_dots(centred, centred) / count
    if running_mean is not None and running_var is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * count / max(count - 1, 1)) * var
    return mean, 1 / xp.sqrt(var + eps)


def affine_array(x: Any, scale: Any, shift: Any) -> Any:
    """y = x * scale[c] + shift[c] over (N, C, ...) x, in x's dtype. Kernel arrays run
    bn_apply, others `affine_reference`."""
    if compiler.uses_kernels(x):
        return kernels.affine(x, scale, shift)
    return affine_reference(x, scale, shift)


def affine_reference(x: Any, scale: Any, shift: Any) -> Any:
    """`affine_array` for NumPy or CuPy arrays: one product into the output, one add in place."""
    xp = array_module(x)
    x3 = _by_channel(x)
    y = xp.multiply(x3, scale[:, None], out=xp.empty(x3.shape, x.dtype))
    y += shift[:, None]
    return y.reshape(x.shape)


def backward_arrays(gy: Any, x: Any, mean: Any, invstd: Any, weight: Any | None) -> tuple:
    """Gradients of training-mode batch norm, (input, weight, bias), from the statistics
    `batch_stats_array` gave; the weight gradient is sum(gy * xhat) and the bias gradient
    sum(gy), per channel. Kernel arrays run bn_grad_sums and bn_grad_input, others
    `backward_reference`."""
    if compiler.uses_kernels(x):
        return kernels.backward(gy, x, mean, invstd, weight)
    return backward_reference(gy, x, mean, invstd, weight)


def backward_reference(gy: Any, x: Any, mean: Any, invstd: Any, weight: Any | None) -> tuple:
    """`backward_arrays` for NumPy or CuPy arrays, in x's dtype: the centred input is its one
    full-size buffer, and becomes the input gradient in place."""
    xp = array_module(x)
    gy3, x3 = _by_channel(gy, mean.dtype), _by_channel(x, mean.dtype)
    count = _count(x3)
    gx = xp.subtract(x3, mean[:, None])
    sum_gy = _channel_sums(gy3)
    sum_gy_xhat = _channel_dots(gy3, gx) * invstd
    # NOTE: gx = k (gy - sum_gy / M - xhat sum_gy_xhat / M) with xhat = centred * invstd,
    # k = invstd * weight and M values per channel.
    gx *= (invstd * sum_gy_xhat / count)[:, None]
    gx += (sum_gy / count)[:, None]
    xp.subtract(gy3, gx, out=gx)
    gx *= (invstd if weight is None else invstd * weight)[:, None]
    return tuple(g.astype(x.dtype, copy=False) for g in (gx.reshape(x.shape), sum_gy_xhat,
                                                          sum_gy))


# -- the ops --------------------------------------------------------------------------------
class BatchNormTrain(Op):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with the batch's per-channel
    statistics; updates the running averages in place when they are given."""

    op_name = "batch_norm"

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, *,
                running_mean: Tensor | None, running_var: Tensor | None, momentum: float,
                eps: float):
        mean, invstd = batch_stats_array(
            x.array, None if running_mean is None else running_mean.array,
            None if running_var is None else running_var.array, momentum, eps)
        for t in (running_mean, running_var):
            if t is not None:
                t._version_box[0] += 1
        scale = invstd if weight is None else invstd * weight.array
        shift = -mean * scale if bias is None else bias.array - mean * scale
        ctx.save_for_backward(x, weight, bias)
        ctx.mean, ctx.invstd, ctx.eps = mean, invstd, eps
        return affine_array(x.array, scale, shift)

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, weight, bias = ctx.saved_tensors
        if is_grad_enabled():
            return reference_backward(functools.partial(batch_norm_reference, eps=ctx.eps),
                                      (x, weight, bias), (gy,))
        gx, gw, gb = backward_arrays(gy.array, x.array, ctx.mean, ctx.invstd,
                                     None if weight is None else weight.array)
        return (Tensor._wrap(gx), None if weight is None else Tensor._wrap(gw),
                None if bias is None else Tensor._wrap(gb))


def batch_norm_reference(input: Tensor, weight: Tensor | None, bias: Tensor | None,
                         eps: float) -> Tensor:
    """Batch norm by the batch's statistics, composed from differentiable ops: the definition
    `BatchNormTrain` computes in closed form (no running averages)."""
    axes = (0,) + tuple(range(2, input.ndim))
    mean = input.mean(axes, keepdim=True)
    centred = input - mean
    var = (centred * centred).mean(axes, keepdim=True)
    out = centred / (var + eps).sqrt()
    if weight is not None:
        out = out * channel_view(weight, input.ndim)
    if bias is not None:
        out = out + channel_view(bias, input.ndim)
    return out


def _running_affine(input: Tensor, running_mean: Tensor, running_var: Tensor,
                    weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """Batch norm by the running statistics: y = x * scale[c] + shift[c] with the per-channel
    scale and shift composed first (as torch's CPU inference does), two passes over x."""
    scale = 1 / (running_var + eps).sqrt()
    if weight is not None:
        scale = scale * weight
    shift = -(running_mean * scale) if bias is None else bias - running_mean * scale
    out = input * channel_view(scale, input.ndim) + channel_view(shift, input.ndim)
    # NOTE: a float16/bfloat16 input beside float32 statistics is computed in float32 and
    # rounded once to its own dtype, as torch's
    return out if out.dtype == input.dtype else out.to(input.dtype)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float,
               eps: float) -> Tensor:
    """Batch normalization (arguments already checked; `momentum` a number): the fused op when
    the batch's statistics are used (training, or no running statistics), the running
    statistics' affine map otherwise."""
    if training or running_mean is None or running_var is None:  # both or neither (checked)
        return BatchNormTrain.apply(input, weight, bias, running_mean=running_mean,
                                    running_var=running_var, momentum=momentum, eps=eps)
    return _running_affine(input, running_mean, running_var, weight, bias, eps)
