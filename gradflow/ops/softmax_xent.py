"""Cross-entropy over class indices: the fused op, its reference, and `cross_entropy`, which
picks between them (torch.nn.functional.cross_entropy checks the arguments and calls it).

On kernel arrays, `SoftmaxCrossEntropy` runs kernels/softmax_xent.cu, reading the logits once
forward and once backward. Everything else runs `cross_entropy_reference`: log_softmax,
nll_loss and label smoothing composed from differentiable ops. It is the CPU path, the
kernels' reference in the tests, and what the fused op differentiates for double backward.
`log_softmax` and `nll_loss` live here for it; gradflow.nn.functional exports them.
"""
from __future__ import annotations

from typing import Callable

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.reference import reference_backward
from ..creation import arange
from ..cuda import compiler
from ..cuda import softmax_xent as kernels
from ..tensor import Tensor
from .elementwise import where
from .index import GetItem, check_range
from .reduce import logsumexp
from .shape import reshape
from .util import normalize_dim


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


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """log of softmax, computed as x - logsumexp(x): stable for logits of any size
    (torch.nn.functional.log_softmax)."""
    dim = normalize_dim("log_softmax", dim, input.ndim)
    return input - logsumexp(input, dim, keepdim=True)


def _classes_last(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C); (N, C) and (C,) pass through as rows."""
    if input.ndim <= 2:
        return reshape(input, (-1, input.shape[-1]))
    perm = (0,) + tuple(range(2, input.ndim)) + (1,)
    return reshape(input.permute(*perm), (-1, input.shape[1]))


def _checked_targets(op: str, input: Tensor, target: Tensor,
                     ignore_index: int) -> tuple[Tensor, Tensor]:
    """The flat targets as (not ignored, class with ignored entries replaced by 0), after
    checking the classes lie in [0, C) (on the host, or deferred on the GPU: no sync), so the
    gathers below need no bounds check of their own."""
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    flat = reshape(target, (-1,))
    valid = flat != ignore_index
    safe = where(valid, flat, 0)
    check_range(op, "target", safe.array, 0, c, f"{c} classes (input shape {tuple(input.shape)})")
    return valid, safe


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
             reduction: str, op: str = "nll_loss") -> Tensor:
    """Negative log-likelihood of the target classes given log-probabilities (arguments
    already checked; the targets' range is checked here, on the data, in the name of `op`)."""
    logp = _classes_last(input)
    valid, safe = _checked_targets(op, input, target, ignore_index)
    rows = arange(logp.shape[0], device=logp.device)
    picked = GetItem.apply(logp, items=(rows.array, safe.array))
    w = valid.to(logp.dtype) if weight is None else \
        where(valid, GetItem.apply(weight, items=(safe.array,)), 0.0)
    losses = -picked * w
    if reduction == "mean":
        return losses.sum() / w.sum()
    if reduction == "sum":
        return losses.sum()
    return reshape(losses, tuple(target.shape))


def cross_entropy_reference(input: Tensor, target: Tensor, weight: Tensor | None,
                            ignore_index: int, reduction: str,
                            label_smoothing: float) -> Tensor:
    """cross_entropy composed from differentiable ops (arguments already checked)."""
    class_dim = 1 if input.ndim >= 2 else 0
    logp = log_softmax(input, class_dim)
    nll = nll_loss(logp, target, weight, ignore_index, reduction, op="cross_entropy")
    if label_smoothing == 0.0:
        return nll
    rows = _classes_last(logp)
    c = rows.shape[1]
    per_class = rows if weight is None else rows * weight
    smooth = -per_class.sum(1)
    flat = reshape(target, (-1,))
    valid = flat != ignore_index
    smooth = where(valid, smooth, 0.0)
    if reduction == "mean":
        if weight is None:
            smooth = smooth.sum() / valid.sum()
        else:
            smooth = smooth.sum() / where(valid, weight[where(valid, flat, 0)], 0.0).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        smooth = reshape(smooth, tuple(target.shape))
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / c)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                  reduction: str, label_smoothing: float) -> Tensor:
    """Cross-entropy over class indices (arguments already checked): the fused op on
    non-empty kernel arrays whose class weights need no gradient, `cross_entropy_reference`
    otherwise."""
    fused = compiler.uses_kernels(input.array) and input.numel() > 0 and (
        weight is None or not weight.requires_grad)
    if not fused:
        return cross_entropy_reference(input, target, weight, ignore_index, reduction,
                                       label_smoothing)
    # NOTE: the kernel itself only poisons the loss of an out-of-range class; this check
    # names it, at the next host read (deferred on the GPU, so no sync).
    _checked_targets("cross_entropy", input, target, ignore_index)
    loss = SoftmaxCrossEntropy.apply(
        _classes_last(input), reshape(target, (-1,)), weight, ignore_index=ignore_index,
        smoothing=label_smoothing, reduction=reduction,
        reference=lambda x, t, w: cross_entropy_reference(x, t, w, ignore_index, reduction,
                                                           label_smoothing))
    return reshape(loss, tuple(target.shape)) if reduction == "none" else loss
