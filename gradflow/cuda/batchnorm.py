"""Launchers for kernels/batchnorm.cu on CuPy arrays shaped (N, C, ...): batch statistics
with the running-average update, the per-channel affine map, and the backward pass.

float16 and bfloat16 activations keep their dtype in and out, while every per-channel vector
the kernels read or write (statistics, running averages, scale and shift, weight, gradient
sums) is float32 (`compiler.acc_dtype`), as cuDNN's batch norm keeps them under AMP: a
running average of another dtype is updated through a float32 copy, and the weight and bias
gradients come back in the weight's dtype."""
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
    c, acc = x.shape[1], compiler.acc_dtype(x.dtype)
    mean, invstd = xp.empty(c, acc), xp.empty(c, acc)
    update = running_mean is not None and running_var is not None
    if (running_mean is not None and running_var is not None
            and not (running_mean.flags.c_contiguous and running_var.flags.c_contiguous)):
        raise RuntimeError("batch_norm: running_mean and running_var must be contiguous")
    # NOTE: running averages of another dtype than the kernel's (16-bit ones) are updated in
    # a float32 copy, written back in place afterwards (an elementwise copy: capture-safe)
    rm: Any = running_mean if update else mean  # unused slots get a dummy
    rv: Any = running_var if update else invstd
    staged = rm.dtype != acc or rv.dtype != acc
    if staged:
        rm, rv = rm.astype(acc), rv.astype(acc)
    compiler.launch("batchnorm", "bn_stats", x.dtype, c, REDUCE_THREADS,
                    (x, mean, invstd, rm, rv, *_dims(x.shape), np.float64(momentum),
                     np.float64(eps), np.int32(update)))
    if staged and running_mean is not None and running_var is not None:
        running_mean[...] = rm
        running_var[...] = rv
    return mean, invstd


def affine(x: Any, scale: Any, shift: Any) -> Any:
    """y = x * scale[c] + shift[c] over (N, C, ...) x, in x's dtype (scale and shift are
    taken in the kernel's float dtype)."""
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    acc = compiler.acc_dtype(x.dtype)
    y = xp.empty_like(x)
    compiler.launch_loop("batchnorm", "bn_apply", x.dtype, x.size,
                         (x, xp.ascontiguousarray(scale, dtype=acc),
                          xp.ascontiguousarray(shift, dtype=acc), y, *_dims(x.shape)))
    return y


def backward(gy: Any, x: Any, mean: Any, invstd: Any, weight: Any | None) -> tuple:
    """Gradients of training-mode batch norm: (input, weight, bias); the weight gradient is
    sum(gy * xhat) and the bias gradient sum(gy), per channel, in the weight's dtype (x's
    without a weight)."""
    xp = array_module(x)
    gy, x = xp.ascontiguousarray(gy, dtype=x.dtype), xp.ascontiguousarray(x)
    c, acc = x.shape[1], compiler.acc_dtype(x.dtype)
    mean, invstd = (xp.ascontiguousarray(v, dtype=acc) for v in (mean, invstd))
    sum_gy, sum_gy_xhat = xp.empty(c, acc), xp.empty(c, acc)
    compiler.launch("batchnorm", "bn_grad_sums", x.dtype, c, REDUCE_THREADS,
                    (gy, x, mean, invstd, sum_gy, sum_gy_xhat, *_dims(x.shape)))
    gx = xp.empty_like(x)
    has_weight = weight is not None
    compiler.launch_loop("batchnorm", "bn_grad_input", x.dtype, x.size,
                         (gy, x, mean, invstd, xp.ascontiguousarray(weight, dtype=acc)
                          if has_weight else invstd, sum_gy, sum_gy_xhat, gx, *_dims(x.shape),
                          np.int32(has_weight)))
    out = x.dtype if weight is None else weight.dtype
    return gx, sum_gy_xhat.astype(out, copy=False), sum_gy.astype(out, copy=False)
