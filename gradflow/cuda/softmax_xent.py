"""Launchers for kernels/softmax_xent.cu: cross-entropy of (R, C) logit rows against class
indices, forward (per-row losses) and backward (the logits' gradient) in one pass each.

float16 and bfloat16 logits are read once and computed on in float32 (`compiler.acc_dtype`):
the per-row losses and weights and the gradient come back in the logits' dtype, the
log-sum-exp the backward pass reads stays float32."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import array_module
from . import compiler

ROWS_PER_BLOCK = 8  # one warp per row


def _options(logits: Any, weight: Any | None, ignore_index: int, smoothing: float) -> tuple:
    rows, classes = logits.shape
    return (np.int64(rows), np.int64(classes), np.int64(ignore_index),
            np.int32(weight is not None), np.float64(smoothing))


def forward(logits: Any, target: Any, weight: Any | None, ignore_index: int,
            smoothing: float) -> tuple:
    """Per-row losses, the per-row weights the mean divides by (0 for ignored rows), and each
    row's log-sum-exp for the backward pass (in the kernel's float dtype)."""
    xp = array_module(logits)
    logits = xp.ascontiguousarray(logits)
    rows = logits.shape[0]
    loss, row_weight = (xp.empty(rows, logits.dtype) for _ in range(2))
    lse = xp.empty(rows, compiler.acc_dtype(logits.dtype))
    if rows:
        grid = compiler.blocks_for(rows, ROWS_PER_BLOCK)
        compiler.launch("softmax_xent", "softmax_xent_fwd", logits.dtype, grid,
                        ROWS_PER_BLOCK * 32,
                        (logits, xp.ascontiguousarray(target, dtype=np.int64),
                         logits if weight is None else xp.ascontiguousarray(
                             weight, dtype=logits.dtype), loss,
                         row_weight, lse, *_options(logits, weight, ignore_index, smoothing)))
    return loss, row_weight, lse


def backward(logits: Any, target: Any, weight: Any | None, lse: Any, scale: Any,
             ignore_index: int, smoothing: float) -> Any:
    """The gradient of sum_r scale_r * loss_r with respect to the logits; `scale` holds one
    value per row, or a single value shared by all rows."""
    xp = array_module(logits)
    logits = xp.ascontiguousarray(logits)
    classes, acc = logits.shape[1], compiler.acc_dtype(logits.dtype)
    if weight is not None:
        weight = xp.ascontiguousarray(weight, dtype=logits.dtype)
    total = xp.full(1, classes, acc) if weight is None else \
        weight.astype(acc).sum(keepdims=True).reshape(1)
    scale = xp.ascontiguousarray(scale, dtype=acc).reshape(-1)
    grad = xp.empty_like(logits)
    compiler.launch_loop("softmax_xent", "softmax_xent_bwd", logits.dtype, grad.size,
                         (logits, xp.ascontiguousarray(target, dtype=np.int64),
                          logits if weight is None else weight,
                          xp.ascontiguousarray(lse, dtype=acc),
                          total, scale, np.int64(scale.size > 1), grad,
                          *_options(logits, weight, ignore_index, smoothing)))
    return grad
