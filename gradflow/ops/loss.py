"""Cross-entropy over class indices as one fused op on the GPU (kernels/softmax_xent.cu).

The composite `cross_entropy` in `gradflow.nn.functional` (log_softmax, nll_loss and label
smoothing from differentiable ops) is the reference: it runs on the CPU, and double backward
on the GPU differentiates it. This op reads the logits once forward and once backward.
"""
from __future__ import annotations

from typing import Callable

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.reference import reference_backward
from ..cuda import softmax_xent as kernels
from ..tensor import Tensor


class SoftmaxCrossEntropy(Op):
    """Cross-entropy of (R, C) logit rows against (R,) class indices, reduced by `reduction`
    ('mean' divides by the summed weights of the rows not ignored, as torch does)."""

    op_name = "cross_entropy"

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, weight: Tensor | None, *,
                ignore_index: int, smoothing: float, reduction: str, reference: Callable):
        w = None if weight is None else weight.array
        loss, row_weight, lse = kernels.forward(logits.array, target.array, w, ignore_index,
                                                smoothing)
        ctx.save_for_backward(logits, target, weight)
        ctx.lse, ctx.reduction, ctx.reference = lse, reduction, reference
        ctx.options = dict(ignore_index=ignore_index, smoothing=smoothing)
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        ctx.total_weight = row_weight.sum()
        return loss.sum() / ctx.total_weight

    @staticmethod
    def backward(ctx, g: Tensor):
        logits, target, weight = ctx.saved_tensors
        if is_grad_enabled():
            return reference_backward(ctx.reference, (logits, target, weight), (g,))
        scale = g.array / ctx.total_weight if ctx.reduction == "mean" else g.array
        grad = kernels.backward(logits.array, target.array,
                                None if weight is None else weight.array, ctx.lse, scale,
                                **ctx.options)
        return Tensor._wrap(grad), None, None
