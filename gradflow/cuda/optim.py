"""Launchers for kernels/optim.cu: each optimizer's update as one kernel per parameter.

A kernel reads its hyperparameters from `hp`, the parameter's row of a device table that
gradflow/cuda/step_tables.py rewrites before every step, in stream order (so a step captured
in a CUDA graph replays with the current values); the optimizer base in gradflow/optim calls
its class's fused update, and so these, when `fusable` holds: the parameter and its state on
the GPU, contiguous, of one dtype. Their NumPy twins (`sgd_step`, `adam_step`, ...) are the
reference.

float16 and bfloat16 parameters: the state stays in the parameter's dtype and each update is
computed in float32 and rounded once per stored value, as torch's fused optimizers treat
them (no float32 master copy). Mixed precision itself needs none: autocast keeps the
parameters float32 and casts them per op, as PyTorch's AMP does, so the optimizer steps
float32 parameters with float32 gradients; 16-bit parameters arise only from a model cast
whole (`model.bfloat16()`), whose small updates can then round away, as in torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import array_module
from . import compiler


def fusable(param: Any, *state: Any) -> bool:
    """True when the fused kernel can update `param` and its state arrays in place."""
    return compiler.uses_kernels(param) and all(
        s is None or (s.flags.c_contiguous and s.dtype == param.dtype)
        for s in (param, *state))


def _run(name: str, param: Any, grad: Any, state: tuple, hp: Any, flags: tuple) -> None:
    grad = array_module(param).ascontiguousarray(grad, dtype=param.dtype)
    arrays = tuple(param if s is None else s for s in state)  # unused slots get a dummy
    compiler.launch_loop("optim", name, param.dtype, param.size,
                         (param, grad, *arrays, np.int64(param.size), hp,
                          *(np.int32(f) for f in flags)))


def sgd(param: Any, grad: Any, momentum_buffer: Any | None, hp: Any, *, nesterov: bool,
        maximize: bool, first_step: bool) -> None:
    """hp: lr, momentum, dampening, weight_decay. On the first step the kernel fills the
    momentum buffer from the gradient (torch's first step), without reading it."""
    _run("sgd_update", param, grad, (momentum_buffer,), hp, (nesterov, maximize, first_step))


def adam(param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, max_exp_avg_sq: Any | None,
         hp: Any, *, maximize: bool, decoupled_weight_decay: bool) -> None:
    """hp: lr, beta1, beta2, eps, weight_decay, 1 - beta1**step, sqrt(1 - beta2**step)."""
    _run("adam_update", param, grad, (exp_avg, exp_avg_sq, max_exp_avg_sq), hp,
         (max_exp_avg_sq is not None, maximize, decoupled_weight_decay))


def rmsprop(param: Any, grad: Any, square_avg: Any, grad_avg: Any | None,
            momentum_buffer: Any | None, hp: Any, *, maximize: bool) -> None:
    """hp: lr, alpha, eps, weight_decay, momentum (0 when there is no buffer)."""
    _run("rmsprop_update", param, grad, (square_avg, grad_avg, momentum_buffer), hp,
         (grad_avg is not None, maximize))


def adagrad(param: Any, grad: Any, state_sum: Any, hp: Any, *, maximize: bool) -> None:
    """hp: lr / (1 + (step - 1) * lr_decay), weight_decay, eps."""
    _run("adagrad_update", param, grad, (state_sum,), hp, (maximize,))
