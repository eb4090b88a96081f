"""Losses (torch.nn.functional): cross entropy and NLL through their op family
(`gradflow.ops.softmax_xent`, one fused kernel each way on the GPU); the elementwise losses
composed from gradflow's ops."""
from __future__ import annotations

from ... import argcheck, dtypes
from ...ops import softmax_xent
from ...ops.elementwise import exp, log, maximum, minimum
from ...tensor import Tensor

__all__ = ["one_hot", "nll_loss", "cross_entropy", "mse_loss", "l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]

REDUCTIONS = ("mean", "sum", "none")


# -- losses -------------------------------------------------------------------------------------
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply a reduction already checked to be one of REDUCTIONS."""
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _check_pointwise(op: str, input: Tensor, target: Tensor, reduction: str) -> None:
    """The checks of the element-wise losses: a known reduction and matching shapes."""
    argcheck.choice(op, "reduction", reduction, REDUCTIONS)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as input "
                         f"size {tuple(input.shape)}")


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices to int64 one-hot vectors along a new last dimension."""
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got "
                        f"{tensor.dtype}")
    argcheck.integer("one_hot", "num_classes", num_classes, minimum=-1)
    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1 if tensor.numel() else 0
    if tensor.numel() and (int(tensor.min().item()) < 0
                           or int(tensor.max().item()) >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got range "
                           f"[{int(tensor.min().item())}, {int(tensor.max().item())}]")
    xp = tensor._xp
    eye = xp.arange(num_classes)
    return Tensor._wrap((tensor.array[..., None] == eye).astype(dtypes.int64))


def _check_targets(op: str, input: Tensor, target: Tensor) -> None:
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected target of class indices with an integer dtype, got "
                        f"{target.dtype} (for probabilities, use soft targets explicitly)")
    want = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim >= 2 else ()
    if tuple(target.shape) != want:
        raise ValueError(f"{op}: expected target shape {want} for input shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the target classes given log-probabilities."""
    argcheck.choice("nll_loss", "reduction", reduction, REDUCTIONS)
    argcheck.integer("nll_loss", "ignore_index", ignore_index)
    _check_targets("nll_loss", input, target)
    return softmax_xent.nll_loss(input, target, weight, ignore_index, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax + nll_loss over class indices, with torch's label smoothing; the op family
    `gradflow.ops.softmax_xent` computes it, with one fused kernel each way on the GPU."""
    argcheck.real("cross_entropy", "label_smoothing", label_smoothing, 0, 1)
    argcheck.choice("cross_entropy", "reduction", reduction, REDUCTIONS)
    argcheck.integer("cross_entropy", "ignore_index", ignore_index)
    _check_targets("cross_entropy", input, target)
    return softmax_xent.cross_entropy(input, target, weight, ignore_index, reduction,
                                      label_smoothing)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_pointwise("mse_loss", input, target, reduction)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_pointwise("l1_loss", input, target, reduction)
    return _reduce((input - target).abs(), reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """BCE on probabilities; logs are clamped at -100 as torch does, so 0 and 1 stay finite."""
    _check_pointwise("binary_cross_entropy", input, target, reduction)
    log_p = log(input).clamp(min=-100.0)
    log_q = log(1 - input).clamp(min=-100.0)
    loss = -(target * log_p + (1 - target) * log_q)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE on logits via log-sigmoid = -softplus(-x): stable for logits of any size."""
    _check_pointwise("binary_cross_entropy_with_logits", input, target, reduction)
    # NOTE: softplus(z) = max(z, 0) + log(1 + exp(-|z|)) never overflows.
    neg_abs = -input.abs()
    log1p_term = log(1 + exp(neg_abs))
    log_sig = minimum(input, 0.0) - log1p_term        # log(sigmoid(x))
    log_one_minus = -maximum(input, 0.0) - log1p_term  # log(1 - sigmoid(x))
    pos = target * log_sig if pos_weight is None else target * log_sig * pos_weight
    loss = -(pos + (1 - target) * log_one_minus)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
