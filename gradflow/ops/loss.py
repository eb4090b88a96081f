"""Losses that run as one op: the mean squared error (one node, `MseLossBackward0` as in
PyTorch, and one pass over the data each way instead of three ops)."""
from __future__ import annotations

from ..autograd.function import Op


class MseLoss(Op):
    """sum or mean of (input - target)^2, or the squares themselves (reduction 'none')."""

    op_name = "mse_loss"

    @staticmethod
    def forward(ctx, input, target, reduction):
        ctx.save_for_backward(input, target)
        ctx.reduction = reduction
        d = input.array - target.array
        sq = d * d
        if reduction == "none":
            return sq
        return sq.mean() if reduction == "mean" else sq.sum()

    @staticmethod
    def backward(ctx, g):
        input, target = ctx.saved_tensors
        d = input - target
        scale = 2.0 / max(d.numel(), 1) if ctx.reduction == "mean" else 2.0
        grad = d * (g * scale)
        needs = ctx.needs_input_grad
        return (grad if needs[0] else None), (-grad if needs[1] else None)
