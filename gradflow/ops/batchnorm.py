"""Batch normalization: the fused op, its reference, and `batch_norm`, which picks between them
(torch.nn.functional.batch_norm checks the arguments and calls it).

On kernel arrays, normalising by the batch's statistics runs `BatchNormTrain`, the fused op of
kernels/batchnorm.cu (two kernels forward, two backward). Everything else runs
`batch_norm_reference`, the same math composed from differentiable ops: it is the CPU path,
the kernels' reference in the tests, and what the fused op differentiates for double backward.
"""
from __future__ import annotations

from typing import Callable

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..autograd.reference import reference_backward
from ..cuda import batchnorm as kernels
from ..cuda import compiler
from ..tensor import Tensor
from .shape import channel_view, reshape


class BatchNormTrain(Op):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with the batch's per-channel
    statistics; updates the running averages in place when they are given."""

    op_name = "batch_norm"

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, bias: Tensor | None, *,
                running_mean: Tensor | None, running_var: Tensor | None, momentum: float,
                eps: float, reference: Callable):
        mean, invstd = kernels.batch_stats(
            x.array, None if running_mean is None else running_mean.array,
            None if running_var is None else running_var.array, momentum, eps)
        for t in (running_mean, running_var):
            if t is not None:
                t._version_box[0] += 1
        scale = invstd if weight is None else invstd * weight.array
        shift = -mean * scale if bias is None else bias.array - mean * scale
        ctx.save_for_backward(x, weight, bias)
        ctx.mean, ctx.invstd, ctx.reference = mean, invstd, reference
        return kernels.affine(x.array, scale, shift)

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, weight, bias = ctx.saved_tensors
        if is_grad_enabled():
            return reference_backward(ctx.reference, (x, weight, bias), (gy,))
        gx, gw, gb = kernels.backward(gy.array, x.array, ctx.mean, ctx.invstd,
                                      None if weight is None else weight.array)
        return (Tensor._wrap(gx), None if weight is None else Tensor._wrap(gw),
                None if bias is None else Tensor._wrap(gb))


def batch_norm_reference(input: Tensor, running_mean: Tensor | None,
                         running_var: Tensor | None, weight: Tensor | None,
                         bias: Tensor | None, training: bool, momentum: float,
                         eps: float) -> Tensor:
    """batch_norm composed from differentiable ops (arguments already checked)."""
    c = input.shape[1]
    axes = (0,) + tuple(range(2, input.ndim))
    if training or running_mean is None or running_var is None:  # both or neither (checked)
        count = input.numel() // max(c, 1)
        mean = input.mean(axes, keepdim=True)
        centred = input - mean
        var = (centred * centred).mean(axes, keepdim=True)
        if training and running_mean is not None and running_var is not None:
            with no_grad():
                running_mean.mul_(1 - momentum).add_(reshape(mean.detach(), (c,)) * momentum)
                unbiased = reshape(var.detach(), (c,)) * (count / max(count - 1, 1))
                running_var.mul_(1 - momentum).add_(unbiased * momentum)
    else:
        mean = channel_view(running_mean, input.ndim)
        centred = input - mean
        var = channel_view(running_var, input.ndim)
    out = centred / (var + eps).sqrt()
    if weight is not None:
        out = out * channel_view(weight, input.ndim)
    if bias is not None:
        out = out + channel_view(bias, input.ndim)
    return out


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None, bias: Tensor | None, training: bool, momentum: float,
               eps: float) -> Tensor:
    """Batch normalization (arguments already checked; `momentum` a number): the fused op on
    kernel arrays when the batch's statistics are used, `batch_norm_reference` otherwise."""
    if compiler.uses_kernels(input.array) and (training or running_mean is None):
        update = training and running_mean is not None
        return BatchNormTrain.apply(
            input, weight, bias, running_mean=running_mean if update else None,
            running_var=running_var if update else None, momentum=momentum, eps=eps,
            reference=lambda x, w, b: batch_norm_reference(x, None, None, w, b, True, momentum,
                                                           eps))
    return batch_norm_reference(input, running_mean, running_var, weight, bias, training,
                                momentum, eps)
