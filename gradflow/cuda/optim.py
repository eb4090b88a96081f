"""Launchers for kernels/optim.cu: each optimizer's update as one kernel per parameter.

Each takes the arguments of its NumPy twin in gradflow/optim (`sgd_step`, `adam_step`, ...),
which calls it when `fusable` holds: the parameter and its state on the GPU, contiguous.
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


def _run(name: str, param: Any, grad: Any, state: tuple, scalars: tuple) -> None:
    grad = array_module(param).ascontiguousarray(grad, dtype=param.dtype)
    arrays = tuple(param if s is None else s for s in state)  # unused slots get a dummy
    compiler.launch_loop("optim", name, param.dtype, param.size,
                         (param, grad, *arrays, np.int64(param.size), *scalars))


def _f64(*values: float) -> tuple:
    return tuple(np.float64(v) for v in values)


def _i32(*values: bool) -> tuple:
    return tuple(np.int32(v) for v in values)


def sgd(param: Any, grad: Any, momentum_buffer: Any | None, *, lr: float, momentum: float,
        dampening: float, weight_decay: float, nesterov: bool, maximize: bool) -> Any:
    first = momentum != 0 and momentum_buffer is None
    if first:
        momentum_buffer = array_module(param).empty_like(param)
    _run("sgd_update", param, grad, (momentum_buffer,),
         _f64(lr, momentum, dampening, weight_decay) + _i32(nesterov, maximize, first))
    return momentum_buffer


def adam(param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, max_exp_avg_sq: Any | None, *,
         step: int, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
         maximize: bool, decoupled_weight_decay: bool) -> None:
    bias1, bias2_sqrt = 1 - beta1 ** step, (1 - beta2 ** step) ** 0.5
    _run("adam_update", param, grad, (exp_avg, exp_avg_sq, max_exp_avg_sq),
         _f64(lr, beta1, beta2, eps, weight_decay, bias1, bias2_sqrt)
         + _i32(max_exp_avg_sq is not None, maximize, decoupled_weight_decay))


def rmsprop(param: Any, grad: Any, square_avg: Any, grad_avg: Any | None,
            momentum_buffer: Any | None, *, lr: float, alpha: float, eps: float,
            weight_decay: float, momentum: float, maximize: bool) -> None:
    _run("rmsprop_update", param, grad, (square_avg, grad_avg, momentum_buffer),
         _f64(lr, alpha, eps, weight_decay, momentum if momentum_buffer is not None else 0.0)
         + _i32(grad_avg is not None, maximize))


def adagrad(param: Any, grad: Any, state_sum: Any, *, step: int, lr: float, lr_decay: float,
            weight_decay: float, eps: float, maximize: bool) -> None:
    clr = lr / (1 + (step - 1) * lr_decay)
    _run("adagrad_update", param, grad, (state_sum,),
         _f64(clr, weight_decay, eps) + _i32(maximize))
