"""Launchers for kernels/optim.cu: each optimizer's update as one kernel per parameter.

A kernel reads its hyperparameters from `hp`, the parameter's row of a device table that
`upload` refreshes before every step (stream-ordered, from pinned memory, so a step already
queued keeps its values and the host never waits); the optimizer classes in gradflow/optim
build the rows and call these when `fusable` holds: the parameter and its state on the GPU,
contiguous. Their NumPy twins (`sgd_step`, `adam_step`, ...) are the reference.
"""
from __future__ import annotations

import collections
from typing import Any

import numpy as np

from ..backend import array_module, cupy_module
from . import compiler


def fusable(param: Any, *state: Any) -> bool:
    """True when the fused kernel can update `param` and its state arrays in place."""
    return compiler.uses_kernels(param) and all(
        s is None or (s.flags.c_contiguous and s.dtype == param.dtype)
        for s in (param, *state))


_in_flight: dict = {}  # device id -> uploads still queued: (event, their pinned host block)


def upload(table: Any, rows: np.ndarray) -> None:
    """Write the host `rows` into the device `table` in order on the current stream.

    NOTE: the copy is made from pinned memory, so it is truly asynchronous: a copy from
    pageable memory makes the host wait for the stream. Each upload takes a fresh pinned
    block and keeps it until an event after its copy has passed, so no queued copy ever
    reads a block that a later upload is filling."""
    if array_module(table) is np:  # the kernel emulator runs on NumPy arrays
        table[...] = rows
        return
    cp = cupy_module()
    stream = cp.cuda.get_current_stream()
    pending = _in_flight.setdefault(table.device.id, collections.deque())
    while pending and pending[0][0].done:  # cudaEventQuery: asks, never waits
        pending.popleft()
    block = cp.cuda.alloc_pinned_memory(rows.nbytes)
    host = np.frombuffer(block, rows.dtype, rows.size).reshape(rows.shape)
    host[...] = rows
    table.set(host, stream=stream)
    event = cp.cuda.Event(disable_timing=True)
    event.record(stream)
    pending.append((event, block))


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
