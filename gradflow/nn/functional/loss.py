"""Losses (torch.nn.functional): cross entropy and NLL over class indices through their op
family (`gradflow.ops.softmax_xent`, one fused kernel each way on the GPU); cross entropy
over class probabilities, the margin, ranking, embedding, likelihood and CTC losses composed
from gradflow's ops, so their gradients (and second derivatives) come from those ops."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ... import argcheck, creation, dtypes
from ...amp.autocast_mode import autocast_policy
from ...ops import softmax_xent
from ...ops.elementwise import exp, log, maximum, minimum, where, xlogy
from ...ops.index import cat, check_range, gather, stack
from ...ops.loss import MseLoss
from ...ops.reduce import logsumexp
from ...ops.softmax_xent import log_softmax
from ...tensor import Tensor
from .activation import logsigmoid
from .distance import pairwise_distance

__all__ = ["one_hot", "nll_loss", "cross_entropy", "mse_loss", "l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "huber_loss", "smooth_l1_loss",
           "soft_margin_loss", "multilabel_soft_margin_loss", "multilabel_margin_loss",
           "multi_margin_loss", "margin_ranking_loss", "hinge_embedding_loss",
           "cosine_embedding_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss",
           "poisson_nll_loss", "gaussian_nll_loss", "ctc_loss"]

REDUCTIONS = ("mean", "sum", "none")


# -- losses -------------------------------------------------------------------------------------
def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply a reduction already checked to be one of REDUCTIONS."""
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _tensors(op: str, **arguments: Any) -> None:
    """Refuse a list, a NumPy array or a number where a loss takes a tensor, naming the op and
    the argument (torch raises a TypeError too)."""
    for name, value in arguments.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}; wrap "
                            f"it with gradflow.tensor(...)")


def _reduction(op: str, size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's reduction: the legacy size_average/reduce flags, when given, decide it."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else "mean" if size_average else "sum"
    return argcheck.choice(op, "reduction", reduction, REDUCTIONS)


def _check_pointwise(op: str, input: Tensor, target: Tensor, reduction: str) -> None:
    """The checks of the element-wise losses: a known reduction and matching shapes."""
    _tensors(op, input=input, target=target)
    argcheck.choice(op, "reduction", reduction, REDUCTIONS)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target size {tuple(target.shape)} must be the same as input "
                         f"size {tuple(input.shape)}")


def _broadcast(op: str, *named: tuple) -> None:
    """Shapes that broadcast together, or a RuntimeError naming the op and the shapes."""
    try:
        np.broadcast_shapes(*(tuple(t.shape) for _, t in named))
    except ValueError:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in named)
        raise RuntimeError(f"{op}: the shapes do not broadcast together ({shapes})") from None


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices to int64 one-hot vectors along a new last dimension."""
    _tensors("one_hot", tensor=tensor)
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
    _tensors(op, input=input, target=target)
    if target.dtype.kind not in "iu":
        hint = (f"; for class probabilities, pass a floating target of the input's shape "
                f"{tuple(input.shape)}" if op == "cross_entropy" else "")
        raise TypeError(f"{op}: expected target of class indices with an integer dtype, got "
                        f"{target.dtype} of shape {tuple(target.shape)}{hint}")
    want = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim >= 2 else ()
    if tuple(target.shape) != want:
        raise ValueError(f"{op}: expected target shape {want} for input shape "
                         f"{tuple(input.shape)}, got {tuple(target.shape)}")


@autocast_policy("nll_loss")
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the target classes given log-probabilities."""
    argcheck.choice("nll_loss", "reduction", reduction, REDUCTIONS)
    argcheck.integer("nll_loss", "ignore_index", ignore_index)
    _check_targets("nll_loss", input, target)
    return softmax_xent.nll_loss(input, target, weight, ignore_index, reduction)


@autocast_policy("cross_entropy")
def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """log_softmax + nll_loss over class indices, with torch's label smoothing; the op family
    `gradflow.ops.softmax_xent` computes it, with one fused kernel each way on the GPU. A
    floating target of the input's shape holds class probabilities instead."""
    argcheck.real("cross_entropy", "label_smoothing", label_smoothing, 0, 1)
    argcheck.choice("cross_entropy", "reduction", reduction, REDUCTIONS)
    argcheck.integer("cross_entropy", "ignore_index", ignore_index)
    _tensors("cross_entropy", input=input, target=target)
    if dtypes.is_floating(target.dtype) and target.shape == input.shape:
        return _cross_entropy_probabilities(input, target, weight, ignore_index, reduction,
                                            label_smoothing)
    _check_targets("cross_entropy", input, target)
    return softmax_xent.cross_entropy(input, target, weight, ignore_index, reduction,
                                      label_smoothing)


def _cross_entropy_probabilities(input: Tensor, target: Tensor, weight: Tensor | None,
                                 ignore_index: int, reduction: str,
                                 label_smoothing: float) -> Tensor:
    """-sum_c w_c p_c log softmax(x)_c over class probabilities p (torch's formula: smoothing
    mixes p with the uniform distribution; 'mean' divides by the number of rows, whatever the
    weights)."""
    if ignore_index >= 0:
        raise RuntimeError(f"cross_entropy: ignore_index ({ignore_index}) is not supported for "
                           f"floating point target (class probabilities)")
    class_dim = 1 if input.ndim >= 2 else 0
    c = input.shape[class_dim]
    if weight is not None and tuple(weight.shape) != (c,):
        raise RuntimeError(f"cross_entropy: weight should have shape ({c},) for {c} classes, "
                           f"got {tuple(weight.shape)}")
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / c
    logp = log_softmax(input, class_dim)
    per_class = logp * target
    if weight is not None:
        per_class = per_class * weight.reshape((c,) + (1,) * (input.ndim - class_dim - 1))
    loss = -per_class.sum(class_dim)
    if reduction == "mean":
        return loss.sum() / (input.numel() // max(c, 1))
    return _reduce(loss, reduction)


@autocast_policy("mse_loss")
def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_pointwise("mse_loss", input, target, reduction)
    if input.dtype != target.dtype:
        input, target = (t.to(np.promote_types(input.dtype, target.dtype))
                         for t in (input, target))
    return MseLoss.apply(input, target, reduction=reduction)


@autocast_policy("l1_loss")
def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_pointwise("l1_loss", input, target, reduction)
    return _reduce((input - target).abs(), reduction)


@autocast_policy("binary_cross_entropy")
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


@autocast_policy("binary_cross_entropy_with_logits")
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


# -- divergence, regression and likelihood losses ------------------------------------------------
@autocast_policy("kl_div")
def kl_div(input: Tensor, target: Tensor, size_average: bool | None = None,
           reduce: bool | None = None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || input) pointwise, input being log-probabilities: target * (log target -
    input), 0 where target is 0 (or exp(t) * (t - input) with log_target); 'batchmean'
    divides the sum by the batch size, the true KL divergence per sample."""
    _tensors("kl_div", input=input, target=target)
    batchmean = reduction == "batchmean" and size_average is None and reduce is None
    reduction = "sum" if batchmean else _reduction("kl_div", size_average, reduce, reduction)
    _broadcast("kl_div", ("input", input), ("target", target))
    loss = exp(target) * (target - input) if log_target else xlogy(target, target) - \
        target * input
    out = _reduce(loss, reduction)
    return out / input.shape[0] if batchmean and input.ndim else out


def _weighted(op: str, loss: Tensor, weight: Tensor | None, input: Tensor) -> Tensor:
    if weight is None:
        return loss
    _tensors(op, weight=weight)
    if weight.shape != input.shape:
        raise ValueError(f"{op}: Weights and input must have the same size (weight "
                         f"{tuple(weight.shape)}, input {tuple(input.shape)})")
    return loss * weight


@autocast_policy("huber_loss")
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2), d = input - target."""
    _check_pointwise("huber_loss", input, target, reduction)
    if argcheck.real("huber_loss", "delta", delta) <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta (got "
                           f"{delta})")
    d = input - target
    ad = d.abs()
    loss = where(ad < delta, d * d * 0.5, (ad - delta * 0.5) * delta)
    return _reduce(_weighted("huber_loss", loss, weight, input), reduction)


@autocast_policy("smooth_l1_loss")
def smooth_l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
                   reduce: bool | None = None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (l1_loss at beta 0)."""
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    _check_pointwise("smooth_l1_loss", input, target, reduction)
    if argcheck.real("smooth_l1_loss", "beta", beta) < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta (got "
                           f"{beta})")
    d = input - target
    ad = d.abs()
    if beta == 0:
        return _reduce(ad, reduction)
    return _reduce(where(ad < beta, d * d * (0.5 / beta), ad - beta * 0.5), reduction)


@autocast_policy("poisson_nll_loss")
def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average: bool | None = None, eps: float = 1e-8,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """exp(x) - t x for log-rates x (log_input), else x - t log(x + eps); `full` adds
    Stirling's t log t - t + log(2 pi t) / 2 where t > 1."""
    _tensors("poisson_nll_loss", input=input, target=target)
    reduction = _reduction("poisson_nll_loss", size_average, reduce, reduction)
    _broadcast("poisson_nll_loss", ("input", input), ("target", target))
    loss = exp(input) - target * input if log_input else input - target * log(input + eps)
    if full:
        safe = where(target > 1, target, 1.0)
        stirling = safe * log(safe) - safe + log(safe * (2 * math.pi)) * 0.5
        loss = loss + where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """(log var + (input - target)^2 / var) / 2, var clamped below at eps (the clamp passes
    the gradient through, as torch's no-grad clamp does); `full` adds log(2 pi) / 2."""
    _tensors("gaussian_nll_loss", input=input, target=target)
    if isinstance(var, Tensor):
        v = var
    elif isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"gaussian_nll_loss: var has negative entry/entries (got {var})")
        v = creation.full(tuple(input.shape), float(var), dtype=input.dtype,
                          device=input.device)
    else:
        raise TypeError(f"gaussian_nll_loss: var must be a Tensor or a float, got "
                        f"{type(var).__name__}")
    if bool((v < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    if v.shape != input.shape:
        if tuple(input.shape[:-1]) == tuple(v.shape):
            v = v.unsqueeze(-1)
        elif not (input.ndim == v.ndim and sum(
                n for i, n in zip(input.shape, v.shape) if i != n) == 1):
            raise ValueError(f"gaussian_nll_loss: var is of incorrect size {tuple(v.shape)} "
                             f"for input of size {tuple(input.shape)}")
    argcheck.choice("gaussian_nll_loss", "reduction", reduction, REDUCTIONS)
    held = v.detach()
    var = v + (held.clamp(min=eps) - held)
    d = input - target
    loss = (log(var) + d * d / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# -- margin and ranking losses ------------------------------------------------------------------
@autocast_policy("soft_margin_loss")
def soft_margin_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)) for targets y of +-1, as -logsigmoid(y x): finite for any logit."""
    reduction = _reduction("soft_margin_loss", size_average, reduce, reduction)
    _check_pointwise("soft_margin_loss", input, target, reduction)
    return _reduce(-logsigmoid(input * target), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average: bool | None = None, reduce: bool | None = None,
                                reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on logits per class, averaged over the classes (the last dim)."""
    reduction = _reduction("multilabel_soft_margin_loss", size_average, reduce, reduction)
    _check_pointwise("multilabel_soft_margin_loss", input, target, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        _tensors("multilabel_soft_margin_loss", weight=weight)
        loss = loss * weight
    if input.ndim == 0:
        return _reduce(loss, reduction)
    return _reduce(loss.sum(-1) / input.shape[-1], reduction)


def _class_rows(op: str, input: Tensor, target: Tensor, target_shape: tuple | None) -> None:
    """The (C,) or (N, C) input of the multi-class margin losses, with its target's shape
    (None: one class index per row, as a 0-d or 1-D tensor)."""
    if input.ndim not in (1, 2) or (input.ndim == 2 and input.shape[1] == 0):
        raise RuntimeError(f"{op}: Expected non-empty vector or matrix with optional 0-dim "
                           f"batch size, but got: {tuple(input.shape)}")
    if target.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: expected target of class indices with an integer dtype, "
                           f"got {target.dtype}")
    rows = input.shape[0] if input.ndim == 2 else 1
    if (tuple(target.shape) != target_shape if target_shape is not None else
            target.ndim > 1 or target.numel() != rows):
        raise RuntimeError(f"{op}: inconsistent target size: {tuple(target.shape)} for input "
                           f"of size: {tuple(input.shape)}")


@autocast_policy("multi_margin_loss")
def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average: bool | None = None,
                      reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """sum over classes i != y of max(0, margin - x[y] + x[i])^p (times weight[y]) / C: the
    multi-class hinge loss (Weston and Watkins, 1999)."""
    op = "multi_margin_loss"
    _tensors(op, input=input, target=target)
    reduction = _reduction(op, size_average, reduce, reduction)
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"{op}: only p == 1 and p == 2 supported, got p={p!r}")
    argcheck.real(op, "margin", margin)
    _class_rows(op, input, target, None)
    c = input.shape[-1]
    rows = input.reshape(-1, c)
    labels = target.reshape(-1, 1)
    check_range(op, "target", labels.array, 0, c, f"{c} classes (input shape "
                f"{tuple(input.shape)})")
    picked = gather(rows, 1, labels)
    hinge = (rows - picked + margin).relu()
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        _tensors(op, weight=weight)
        if tuple(weight.shape) != (c,):
            raise RuntimeError(f"{op}: weight should have shape ({c},), got "
                               f"{tuple(weight.shape)}")
        hinge = hinge * weight[labels.reshape(-1)].reshape(-1, 1)
    others = labels != creation.arange(c, device=input.device)
    loss = (hinge * others).sum(1) / c
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


@autocast_policy("multilabel_margin_loss")
def multilabel_margin_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
                           reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """sum over target classes j and non-target classes i of max(0, 1 - (x[j] - x[i])) / C;
    each row of target lists its classes, ended by the first -1."""
    op = "multilabel_margin_loss"
    _tensors(op, input=input, target=target)
    reduction = _reduction(op, size_average, reduce, reduction)
    _class_rows(op, input, target, tuple(input.shape))
    c = input.shape[-1]
    rows, labels = input.reshape(-1, c), target.reshape(-1, c)
    listed = (labels == -1).to(dtypes.int64).cumsum(1) == 0
    safe = where(listed, labels, 0)
    check_range(op, "target", safe.array, 0, c, f"{c} classes (input shape "
                f"{tuple(input.shape)})")
    classes = creation.arange(c, device=input.device)
    is_target = ((safe.unsqueeze(2) == classes) & listed.unsqueeze(2)).any(1)  # (N, C)
    picked = gather(rows, 1, safe)  # (N, J): the score of each listed class
    hinge = (rows.unsqueeze(1) - picked.unsqueeze(2) + 1).relu()  # (N, J, C)
    counted = listed.unsqueeze(2) & ~is_target.unsqueeze(1)
    loss = (hinge * counted).sum((1, 2)) / c
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


def _same_ndim(op: str, **named: Tensor) -> None:
    _tensors(op, **named)
    if len({t.ndim for t in named.values()}) > 1:
        sizes = ", ".join(f"{name}: {tuple(t.shape)}" for name, t in named.items())
        raise RuntimeError(f"{op}: All input tensors should have same dimension but got sizes: "
                           f"{sizes}")


@autocast_policy("margin_ranking_loss")
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    """max(0, -y (x1 - x2) + margin): x1 should rank above x2 where y = 1, below where -1."""
    op = "margin_ranking_loss"
    _same_ndim(op, input1=input1, input2=input2, target=target)
    reduction = _reduction(op, size_average, reduce, reduction)
    argcheck.real(op, "margin", margin)
    _broadcast(op, ("input1", input1), ("input2", input2), ("target", target))
    return _reduce((-target * (input1 - input2) + margin).relu(), reduction)


@autocast_policy("hinge_embedding_loss")
def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1 (torch adds both for other y)."""
    op = "hinge_embedding_loss"
    _tensors(op, input=input, target=target)
    reduction = _reduction(op, size_average, reduce, reduction)
    argcheck.real(op, "margin", margin)
    _broadcast(op, ("input", input), ("target", target))
    loss = where(target != 1, (margin - input).relu(), 0.0) + where(target != -1, input, 0.0)
    return _reduce(loss, reduction)


@autocast_policy("cosine_embedding_loss")
def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average: bool | None = None, reduce: bool | None = None,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1."""
    op = "cosine_embedding_loss"
    _tensors(op, input1=input1, input2=input2, target=target)
    reduction = _reduction(op, size_average, reduce, reduction)
    argcheck.real(op, "margin", margin)
    if target.ndim not in (0, 1):
        raise RuntimeError(f"{op}: 0D or 1D target tensor expected, multi-target not "
                           f"supported (target shape {tuple(target.shape)})")
    want = target.ndim + 1
    if input1.ndim != want or input2.ndim != want:
        raise RuntimeError(f"{op}: {target.ndim}D target tensor expects {want}D input tensors, "
                           f"but found inputs with sizes {tuple(input1.shape)} and "
                           f"{tuple(input2.shape)}")
    d = target.ndim
    # NOTE: torch's formula, with its 1e-12 in each squared magnitude
    prod = (input1 * input2).sum(d)
    mag = ((input1 * input1).sum(d) + 1e-12) * ((input2 * input2).sum(d) + 1e-12)
    cos = prod / mag.sqrt()
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, (cos - margin).relu(), 0.0)
    return _reduce(loss, reduction)


def _triplet(op: str, dist_pos: Tensor, dist_neg: Tensor, dist_swap: Tensor | None,
             margin: float, reduction: str) -> Tensor:
    if dist_swap is not None:
        dist_neg = minimum(dist_neg, dist_swap)
    return _reduce((dist_pos - dist_neg + margin).relu(), reduction)


@autocast_policy("triplet_margin_loss")
def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin), d the p-norm pairwise distance; `swap` takes
    min(d(a, n), d(p, n)) as the negative's distance (Balntas et al., 2016)."""
    op = "triplet_margin_loss"
    _tensors(op, anchor=anchor, positive=positive, negative=negative)
    reduction = _reduction(op, size_average, reduce, reduction)
    argcheck.real(op, "margin", margin)
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"{op}: The anchor, positive, and negative tensors are expected to "
                           f"have the same number of dimensions, but got: anchor "
                           f"{anchor.ndim}D, positive {positive.ndim}D, and negative "
                           f"{negative.ndim}D inputs")
    swapped = pairwise_distance(positive, negative, p, eps) if swap else None
    return _triplet(op, pairwise_distance(anchor, positive, p, eps),
                    pairwise_distance(anchor, negative, p, eps), swapped, margin, reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function: Callable | None = None,
                                      margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """triplet_margin_loss with any distance (pairwise_distance by default)."""
    op = "triplet_margin_with_distance_loss"
    _tensors(op, anchor=anchor, positive=positive, negative=negative)
    argcheck.choice(op, "reduction", reduction, REDUCTIONS)
    if argcheck.real(op, "margin", margin) <= 0:
        raise ValueError(f"{op}: expected margin to be greater than 0, got {margin} instead")
    distance = pairwise_distance if distance_function is None else distance_function
    swapped = distance(positive, negative) if swap else None
    return _triplet(op, distance(anchor, positive), distance(anchor, negative), swapped, margin,
                    reduction)


# -- connectionist temporal classification -------------------------------------------------------
# NOTE: a finite stand-in for log(0): exp of it is exactly 0 in float32 and float64, and
# logsumexp over it has finite gradients (zero), where -inf would give 0 * inf = NaN.
_LOG_ZERO = -1e30


def _lengths(op: str, name: str, value: Any, n: int) -> list:
    """Sequence lengths given as a tensor, a list or a tuple of n ints, on the host."""
    values = value.tolist() if isinstance(value, Tensor) else value
    if isinstance(values, int):
        values = [values]
    if not isinstance(values, (list, tuple)) or len(values) != n or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise RuntimeError(f"{op}: {name} must be {n} integers (one per sequence), got "
                           f"{value!r}")
    return [int(v) for v in values]


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths: Any, target_lengths: Any,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist temporal classification (Graves et al., 2006): -log of the total
    probability of the alignments of each target with its input, by the alpha recursion in
    log space over the extended labels (blank, l1, blank, l2, ..., blank), vectorised over
    the batch and the label positions, looping over time only; the gradient comes from the
    ops (logsumexp). 'mean' divides each loss by its target length, then averages."""
    op = "ctc_loss"
    _tensors(op, log_probs=log_probs, targets=targets)
    argcheck.choice(op, "reduction", reduction, REDUCTIONS)
    if log_probs.ndim not in (2, 3):
        raise RuntimeError(f"{op}: log_probs must be (T, N, C) or (T, C), got shape "
                           f"{tuple(log_probs.shape)}")
    if not dtypes.is_floating(log_probs.dtype):
        raise RuntimeError(f"{op}: log_probs must be floating point, got {log_probs.dtype}")
    if targets.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: targets must hold integer class indices, got "
                           f"{targets.dtype}")
    batched = log_probs.ndim == 3
    lp = log_probs if batched else log_probs.unsqueeze(1)
    t_max, n, c = lp.shape
    argcheck.integer(op, "blank", blank)
    if not 0 <= blank < c:
        raise RuntimeError(f"{op}: blank must be in label range [0, {c}), got {blank}")
    in_lens = _lengths(op, "input_lengths", input_lengths, n)
    tgt_lens = _lengths(op, "target_lengths", target_lengths, n)
    for name, lens, most in (("input_lengths", in_lens, t_max), ("target_lengths", tgt_lens,
                                                                  None)):
        for v in lens:
            if v < 0 or (most is not None and v > most):
                raise RuntimeError(f"{op}: Expected {name} to have value at most {most} (and "
                                   f"at least 0), but got value {v}" if most is not None else
                                   f"{op}: {name} must be non-negative, got {v}")
    labels = _padded_targets(op, targets, tgt_lens, batched)
    s_max = labels.shape[1]
    check_range(op, "targets", labels.array, 0, c, f"{c} classes (log_probs shape "
                f"{tuple(log_probs.shape)})")
    device = log_probs.device
    # extended labels (N, 2S+1): blank at even positions, the target at odd ones
    width = 2 * s_max + 1
    ext = creation.full((n, width), blank, dtype=dtypes.int64, device=device)
    if s_max:
        ext[:, 1::2] = labels
    # a skip over a blank, from s-2 to s, is allowed onto a label that differs from s-2's
    skip = (ext != blank)
    if width > 2:
        skip[:, 2:] = skip[:, 2:] & (ext[:, 2:] != ext[:, :-2])
    skip[:, :2] = False
    lengths_in = creation.tensor(in_lens, device=device).unsqueeze(1)
    position = creation.arange(width, device=device)
    start = position < 2  # alpha_0 lives on the first blank and the first label
    alpha = where(start, gather(lp[0], 1, ext), _LOG_ZERO)
    alpha = where(lengths_in > 0, alpha, where(position == 0, 0.0, _LOG_ZERO))
    pad1 = creation.full((n, 1), _LOG_ZERO, dtype=lp.dtype, device=device)
    pad2 = creation.full((n, 2), _LOG_ZERO, dtype=lp.dtype, device=device)
    for t in range(1, t_max):
        stay = alpha
        step = _shifted(alpha, pad1, 1)
        jump = where(skip, _shifted(alpha, pad2, 2), _LOG_ZERO)
        merged = logsumexp(stack([stay, step, jump]), 0) + gather(lp[t], 1, ext)
        alpha = where(lengths_in > t, merged, alpha)
    ends = creation.tensor([2 * s for s in tgt_lens], device=device).unsqueeze(1)
    last = gather(alpha, 1, ends)
    before = where(ends > 0, gather(alpha, 1, (ends - 1).clamp(min=0)), _LOG_ZERO)
    log_likelihood = logsumexp(stack([last, before]), 0).reshape(n)
    impossible = log_likelihood < _LOG_ZERO / 2
    loss = where(impossible, 0.0 if zero_infinity else math.inf, -log_likelihood)
    if reduction == "mean":
        divisor = creation.tensor([max(s, 1) for s in tgt_lens], dtype=loss.dtype, device=device)
        return (loss / divisor).mean()
    if reduction == "sum":
        return loss.sum()
    return loss if batched else loss.reshape(())


def _shifted(alpha: Tensor, pad: Tensor, k: int) -> Tensor:
    """alpha moved k positions along the labels, log(0) filling the first k."""
    return cat([pad, alpha[:, :alpha.shape[1] - k]], 1) if alpha.shape[1] > k else \
        pad[:, :alpha.shape[1]]


def _padded_targets(op: str, targets: Tensor, lengths: Sequence[int], batched: bool) -> Tensor:
    """The targets as (N, S) rows: a padded (N, S) tensor as it is, a 1-D concatenation of
    the targets (or one unbatched target) split by their lengths."""
    n = len(lengths)
    longest = max(lengths, default=0)
    if batched and targets.ndim == 2:
        if targets.shape[0] != n or targets.shape[1] < longest:
            raise RuntimeError(f"{op}: padded targets of shape {tuple(targets.shape)} do not fit "
                               f"{n} sequences with target_lengths {list(lengths)}")
        return targets[:, :longest].to(dtypes.int64)
    if targets.ndim != 1:
        raise RuntimeError(f"{op}: targets must be (N, S) or a 1-D concatenation, got shape "
                           f"{tuple(targets.shape)}")
    if not batched:
        if targets.shape[0] < longest:
            raise RuntimeError(f"{op}: target of length {targets.shape[0]} is shorter than "
                               f"target_length {longest}")
        return targets[:longest].reshape(1, longest).to(dtypes.int64)
    if sum(lengths) != targets.shape[0]:
        raise RuntimeError(f"{op}: the concatenated targets hold {targets.shape[0]} labels but "
                           f"target_lengths sum to {sum(lengths)}")
    rows = creation.full((n, longest), 0, dtype=dtypes.int64, device=targets.device)
    offset = 0
    for i, s in enumerate(lengths):
        if s:
            rows[i, :s] = targets[offset:offset + s]
        offset += s
    return rows
