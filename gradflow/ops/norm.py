"""Training-mode batch normalization as one fused op on the GPU (kernels/batchnorm.cu).

The composite definition in `gradflow.nn.functional` (mean, variance, normalise, affine, with
differentiable ops) is the reference: it runs on the CPU, and double backward on the GPU
differentiates it. This op is the fast path: two kernels forward, two backward.
"""
from __future__ import annotations

from typing import Callable

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.reference import reference_backward
from ..cuda import batchnorm as kernels
from ..tensor import Tensor


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
                t._vbox[0] += 1
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
