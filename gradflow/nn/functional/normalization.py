"""Normalisations (torch.nn.functional): batch norm through its op family
(`gradflow.ops.batchnorm`, fused kernels on the GPU); layer, group, instance and local
response norms composed from gradflow's ops."""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import argcheck, dtypes
from ...amp.autocast_mode import autocast_policy
from ...autograd.grad_mode import no_grad
from ...creation import zeros
from ...ops import batchnorm
from ...ops.index import cat
from ...ops.shape import channel_view, reshape
from ...tensor import Tensor

__all__ = ["batch_norm", "layer_norm", "rms_norm", "group_norm", "instance_norm",
           "local_response_norm"]


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
                input.dtype in (dtypes.float16, dtypes.bfloat16) and t.dtype == np.float32):
            raise RuntimeError(f"batch_norm: {name} has dtype {t.dtype} but the input has "
                               f"{input.dtype} (parameters take the input's dtype, or float32 "
                               f"for a float16 or bfloat16 input)")
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


def _in_float32(input: Tensor, *params: Tensor | None) -> tuple | None:
    """float16/bfloat16 `input` and its parameters in float32, where torch's normalisations
    compute them (one rounding at the end, back to the input's dtype); None for other dtypes."""
    if input.dtype != dtypes.float16 and input.dtype != dtypes.bfloat16:
        return None
    return (input.float(),) + tuple(None if p is None else p.float() for p in params)


def _normalize_over(input: Tensor, axes: tuple, eps: float) -> Tensor:
    mean = input.mean(axes, keepdim=True)
    centred = input - mean
    var = (centred * centred).mean(axes, keepdim=True)
    return centred / (var + eps).sqrt()


@autocast_policy("layer_norm")
def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    shape = argcheck.sizes("layer_norm", "normalized_shape", normalized_shape)
    argcheck.real("layer_norm", "eps", eps, 0)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(f"layer_norm: input shape {tuple(input.shape)} does not end with "
                           f"normalized_shape {shape}")
    wide = _in_float32(input, weight, bias)
    if wide is not None:
        return layer_norm(wide[0], shape, wide[1], wide[2], eps).to(input.dtype)
    out = _normalize_over(input, tuple(range(input.ndim - len(shape), input.ndim)), eps)
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def rms_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the trailing `normalized_shape` dims, times weight
    (Zhang and Sennrich, 2019); eps None is the input dtype's machine epsilon, as in torch."""
    if not isinstance(input, Tensor):
        raise TypeError(f"rms_norm: input must be a Tensor, got {type(input).__name__}")
    shape = argcheck.sizes("rms_norm", "normalized_shape", normalized_shape)
    if not dtypes.is_floating(input.dtype):
        raise NotImplementedError(f"rms_norm: not implemented for {input.dtype} input (floating "
                                  f"point only, as in torch)")
    wide = _in_float32(input, weight)
    if wide is not None:  # NOTE: so eps=None is float32's epsilon here, as in torch
        return rms_norm(wide[0], shape, wide[1], eps).to(input.dtype)
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    argcheck.real("rms_norm", "eps", eps, 0)
    if tuple(input.shape[max(input.ndim - len(shape), 0):]) != shape or input.ndim < len(shape):
        raise RuntimeError(f"rms_norm: input shape {tuple(input.shape)} does not end with "
                           f"normalized_shape {shape}")
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(f"rms_norm: weight should have shape {shape} (normalized_shape), got "
                           f"{tuple(weight.shape)}")
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ((input * input).mean(axes, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


@autocast_policy("group_norm")
def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    argcheck.integer("group_norm", "num_groups", num_groups, minimum=1)
    argcheck.real("group_norm", "eps", eps, 0)
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"group_norm: num_groups {num_groups} must divide the {c} channels "
                           f"(input shape {tuple(input.shape)})")
    wide = _in_float32(input, weight, bias)
    if wide is not None:
        return group_norm(wide[0], num_groups, wide[1], wide[2], eps).to(input.dtype)
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
