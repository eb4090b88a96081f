"""Functional forms of the layers and losses (torch.nn.functional).

Everything here is composed from gradflow's differentiable ops, so gradients and second
derivatives come from those ops. These forms check arguments as torch does and never ask
which backend runs: the ops decide. batch_norm and cross_entropy call their families in
`gradflow.ops.batchnorm` and `gradflow.ops.softmax_xent`, which pick a fused kernel or its
composite reference; log_softmax and nll_loss, which that reference uses, live there too.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import argcheck, dtypes
from ..autograd.grad_mode import no_grad
from ..autograd.inplace import apply_inplace
from ..creation import rand, zeros
from ..ops import batchnorm, elementwise, softmax_xent
from ..ops.conv import conv2d
from ..ops.elementwise import erf, exp, log, maximum, minimum, sigmoid, tanh, where
from ..ops.index import cat
from ..ops.matmul import LinearProduct
from ..ops.pad import pad
from ..ops.pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from ..ops.reduce import amax
from ..ops.shape import channel_view, reshape
from ..ops.softmax_xent import log_softmax
from ..ops.util import normalize_dim
from ..tensor import Tensor

__all__ = [
    "linear", "conv2d", "pad", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "scaled_tanh",
    "softmax", "log_softmax", "dropout", "dropout2d", "batch_norm", "layer_norm", "group_norm",
    "instance_norm", "local_response_norm", "one_hot", "nll_loss", "cross_entropy",
    "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
]

REDUCTIONS = ("mean", "sum", "none")


# -- layers and activations --------------------------------------------------------------------
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b (torch.nn.functional.linear)."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"linear: {name} must be a Tensor, got {type(t).__name__}")
    if weight.ndim != 2:
        raise RuntimeError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                           f"{tuple(weight.shape)}")
    if input.shape[-1:] != weight.shape[1:]:
        raise RuntimeError(f"linear: input has {input.shape[-1] if input.ndim else 0} features "
                           f"but weight expects {weight.shape[1]} (input shape "
                           f"{tuple(input.shape)}, weight shape {tuple(weight.shape)})")
    if input.dtype != weight.dtype:
        raise RuntimeError(f"linear: input dtype {input.dtype} does not match weight dtype "
                           f"{weight.dtype}; convert one, e.g. input.to({weight.dtype})")
    out = LinearProduct.apply(input, weight)
    return out if bias is None else out + bias


def _maybe_inplace(name: str, values, input: Tensor, inplace: bool, *args: Any) -> Tensor:
    """`values(input, *args)`, written into input when `inplace` (the activations' and
    dropout's inplace=True, an in-place op in the graph as in PyTorch)."""
    if inplace:
        return apply_inplace(input, name + "_", values, args)
    return values(input, *args)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace("relu", elementwise.relu, input, inplace)


def _leaky_relu(input: Tensor, negative_slope: float) -> Tensor:
    return where(input > 0, input, input * negative_slope)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    argcheck.real("leaky_relu", "negative_slope", negative_slope)
    return _maybe_inplace("leaky_relu", _leaky_relu, input, inplace, negative_slope)


def _elu(input: Tensor, alpha: float) -> Tensor:
    # NOTE: exp is taken of min(x, 0) so the unused branch cannot overflow.
    return where(input > 0, input, (exp(minimum(input, 0.0)) - 1) * alpha)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    argcheck.real("elu", "alpha", alpha)
    return _maybe_inplace("elu", _elu, input, inplace, alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); approximate='tanh' uses the tanh formula, as in torch."""
    argcheck.choice("gelu", "approximate", approximate, ("none", "tanh"))
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (1 + tanh(inner))
    return input * 0.5 * (1 + erf(input * (1 / math.sqrt(2))))


def scaled_tanh(input: Tensor) -> Tensor:
    """LeNet-5's squashing function 1.7159 tanh(2x/3) (LeCun et al., 1998)."""
    return tanh(input * (2 / 3)) * 1.7159


def softmax(input: Tensor, dim: int) -> Tensor:
    dim = normalize_dim("softmax", dim, input.ndim)
    shifted = input - amax(input.detach(), dim, keepdim=True)
    e = exp(shifted)
    return e / e.sum(dim, keepdim=True)


def _dropped(input: Tensor, p: float, mask_shape: tuple) -> Tensor:
    """input with elements (or whole channels, by `mask_shape`) zeroed with probability p and
    the rest scaled by 1/(1-p): inverted dropout."""
    if p == 1.0:
        return input * 0.0
    keep = rand(*mask_shape, dtype=input.dtype, device=input.device) >= p
    return input * keep * (1.0 / (1.0 - p))


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    argcheck.probability("dropout", p)
    if not training or p == 0.0:
        return input
    return _maybe_inplace("dropout", _dropped, input, inplace, p, tuple(input.shape))


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Drop whole channels of an (N, C, H, W) or (C, H, W) input (torch's dropout2d)."""
    argcheck.probability("dropout2d", p)
    if input.ndim not in (3, 4):
        raise RuntimeError(f"dropout2d: expected a 3-D or 4-D input, got shape "
                           f"{tuple(input.shape)}")
    if not training or p == 0.0:
        return input
    mask_shape = tuple(input.shape[:-2]) + (1, 1)
    return _maybe_inplace("dropout2d", _dropped, input, inplace, p, mask_shape)


# -- normalisation ------------------------------------------------------------------------------
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float | None = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalise each channel by batch statistics (training) or running ones (eval).

    In training the running averages are updated in place with the unbiased variance, as in
    torch; `momentum=None` is handled by the module (cumulative average). The op family
    `gradflow.ops.batchnorm` computes it, with fused kernels on the GPU.
    """
    if input.ndim < 2:
        raise RuntimeError(f"batch_norm: expected an input with at least 2 dims (N, C, ...), "
                           f"got shape {tuple(input.shape)}")
    _check_norm_options("batch_norm", momentum, eps)
    if (running_mean is None) != (running_var is None):
        given = "running_mean" if running_var is None else "running_var"
        raise ValueError(f"batch_norm: running_mean and running_var must either both be None or "
                         f"neither be None (only {given} was given)")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"batch_norm: {name} should have shape ({c},) for an input with "
                               f"{c} channels, got {tuple(t.shape)}")
        # NOTE: torch's rule: the input's own dtype, or float32 beside a half-precision input
        if t is not None and t.dtype != input.dtype and not (
                input.dtype == np.float16 and t.dtype == np.float32):
            raise RuntimeError(f"batch_norm: {name} has dtype {t.dtype} but the input has "
                               f"{input.dtype} (parameters take the input's dtype, or float32 "
                               f"for a float16 input)")
    if training and input.numel() // max(c, 1) <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input size {tuple(input.shape)}; for inference on one sample, "
                         f"call model.eval() first")
    m = 0.1 if momentum is None else momentum
    return batchnorm.batch_norm(input, running_mean, running_var, weight, bias, training, m,
                                eps)


def _check_norm_options(op: str, momentum: float | None, eps: float) -> None:
    argcheck.momentum(op, momentum)
    argcheck.real(op, "eps", eps, 0)


def _normalize_over(input: Tensor, axes: tuple, eps: float) -> Tensor:
    mean = input.mean(axes, keepdim=True)
    centred = input - mean
    var = (centred * centred).mean(axes, keepdim=True)
    return centred / (var + eps).sqrt()


def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    shape = argcheck.sizes("layer_norm", "normalized_shape", normalized_shape)
    argcheck.real("layer_norm", "eps", eps, 0)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(f"layer_norm: input shape {tuple(input.shape)} does not end with "
                           f"normalized_shape {shape}")
    out = _normalize_over(input, tuple(range(input.ndim - len(shape), input.ndim)), eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    argcheck.integer("group_norm", "num_groups", num_groups, minimum=1)
    argcheck.real("group_norm", "eps", eps, 0)
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"group_norm: num_groups {num_groups} must divide the {c} channels "
                           f"(input shape {tuple(input.shape)})")
    grouped = reshape(input, (n, num_groups, -1))
    out = reshape(_normalize_over(grouped, (2,), eps), tuple(input.shape))
    if weight is not None:
        out = out * channel_view(weight, input.ndim)
    return out if bias is None else out + channel_view(bias, input.ndim)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each (sample, channel) plane on its own (Ulyanov et al., 2016)."""
    _check_norm_options("instance_norm", momentum, eps)
    n, c = input.shape[0], input.shape[1]
    if use_input_stats:
        folded = reshape(input, (1, n * c) + tuple(input.shape[2:]))
        running = (running_mean, running_var)
        # each sample's copy of the running statistics, for the folded (1, N*C, ...) batch
        rep_mean, rep_var = (None if t is None else cat([t.detach()] * n) for t in running)
        out = reshape(batch_norm(folded, rep_mean, rep_var, None, None, True, momentum, eps),
                      tuple(input.shape))
        with no_grad():
            for t, rep in zip(running, (rep_mean, rep_var)):
                if t is not None and rep is not None:
                    t.copy_(reshape(rep, (n, c)).mean(0))
    else:
        out = batch_norm(input, running_mean, running_var, None, None, False, momentum, eps)
    if weight is not None:
        out = out * channel_view(weight, input.ndim)
    return out if bias is None else out + channel_view(bias, input.ndim)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """Divide by (k + alpha * mean of squares over `size` neighbouring channels) ** beta,
    as in AlexNet (Krizhevsky et al., 2012) and torch's formula."""
    argcheck.integer("local_response_norm", "size", size, minimum=1)
    if input.ndim < 3:
        raise RuntimeError(f"local_response_norm: expected 3-D or more input, got shape "
                           f"{tuple(input.shape)}")
    sq = input * input
    before, after = size // 2, (size - 1) // 2
    pad_shape = lambda n: (input.shape[0], n) + tuple(input.shape[2:])  # noqa: E731
    parts = ([zeros(*pad_shape(before), dtype=input.dtype, device=input.device)] if before
             else []) + [sq] + ([zeros(*pad_shape(after), dtype=input.dtype,
                                       device=input.device)] if after else [])
    padded = cat(parts, 1) if len(parts) > 1 else sq
    c = input.shape[1]
    window = padded[:, 0:c]
    for i in range(1, size):
        window = window + padded[:, i:i + c]
    div = (window * (alpha / size) + k) ** beta
    return input / div


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

