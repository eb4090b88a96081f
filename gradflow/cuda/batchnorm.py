"""Launchers for kernels/batchnorm.cu on CuPy arrays shaped (N, C, ...): batch statistics
with the running-average update, the per-channel affine map, and the backward pass."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import array_module
from . import compiler

REDUCE_THREADS = 512  # threads per channel in the reduction kernels


def _dims(shape: tuple) -> tuple:
    """(N, C, S) as int64: batch, channels and the spatial size each channel spans."""
    return tuple(np.int64(v) for v in (shape[0], shape[1], math.prod(shape[2:])))


def batch_stats(x: Any, running_mean: Any | None, running_var: Any | None, momentum: float,
                eps: float) -> tuple:
    """Per-channel mean and 1/sqrt(var + eps) of x; updates the running averages in place
    when they are given (torch's rule: the unbiased variance goes into `running_var`)."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    c = x.shape[1]
    mean, invstd = xp.empty(c, x.dtype), xp.empty(c, x.dtype)
    update = running_mean is not None and running_var is not None
    if (running_mean is not None and running_var is not None
            and not (running_mean.flags.c_contiguous and running_var.flags.c_contiguous)):
        raise RuntimeError("batch_norm: running_mean and running_var must be contiguous")
    compiler.launch("batchnorm", "bn_stats", x.dtype, c, REDUCE_THREADS,
                    (x, mean, invstd, running_mean if update else mean,
                     running_var if update else invstd, *_dims(x.shape), np.float64(momentum),
                     np.float64(eps), np.int32(update)))
    return mean, invstd


def affine(x: Any, scale: Any, shift: Any) -> Any:
    """y = x * scale[c] + shift[c] over (N, C, ...) x."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty_like(x)
    compiler.launch_loop("batchnorm", "bn_apply", x.dtype, x.size,
                         (x, xp.ascontiguousarray(scale), xp.ascontiguousarray(shift), y,
                          *_dims(x.shape)))
    return y


def backward(gy: Any, x: Any, mean: Any, invstd: Any, weight: Any | None) -> tuple:
    """Gradients of training-mode batch norm: (input, weight, bias); the weight gradient is
    sum(gy * xhat) and the bias gradient sum(gy), per channel."""
    xp = array_module(x)
    gy, x = xp.ascontiguousarray(gy), xp.ascontiguousarray(x)
    c = x.shape[1]
    sum_gy, sum_gy_xhat = xp.empty(c, x.dtype), xp.empty(c, x.dtype)
    compiler.launch("batchnorm", "bn_grad_sums", x.dtype, c, REDUCE_THREADS,
                    (gy, x, mean, invstd, sum_gy, sum_gy_xhat, *_dims(x.shape)))
    gx = xp.empty_like(x)
    has_weight = weight is not None
    compiler.launch_loop("batchnorm", "bn_grad_input", x.dtype, x.size,
                         (gy, x, mean, invstd, xp.ascontiguousarray(weight) if has_weight
                          else invstd, sum_gy, sum_gy_xhat, gx, *_dims(x.shape),
                          np.int32(has_weight)))
    return gx, sum_gy_xhat, sum_gy
