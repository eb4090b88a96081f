"""Gradient clipping (torch.nn.utils.clip_grad_norm_, clip_grad_value_, get_total_norm,
clip_grads_with_norm_).

NOTE: clipped gradients replace `.grad` rather than being scaled in place, because autograd
may hand several leaves the same gradient array, or a read-only broadcast view of one.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ... import dtypes
from ...backend import array_module, move_array
from ...tensor import Tensor


def _with_grads(parameters: Tensor | Iterable[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """(parameter, its gradient) for the parameters that have one."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [(p, p.grad) for p in params if p.grad is not None]


def _vector_norm(x: Any, norm_type: float) -> Any:
    """The p-norm of all of x's entries as a 0-d array (torch.linalg.vector_norm)."""
    xp = array_module(x)
    a = xp.abs(x).ravel()
    if norm_type == math.inf:
        norm = a.max() if a.size else 0
    elif norm_type == -math.inf:
        norm = a.min()
    elif norm_type == 0:
        norm = (a != 0).sum()
    else:
        norm = (a ** norm_type).sum() ** (1.0 / norm_type)
    return xp.asarray(norm, dtype=a.dtype)


def get_total_norm(tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The norm of all of `tensors` seen as one vector, as a 0-d tensor on the first one's
    device (torch.nn.utils.get_total_norm); `foreach` is accepted and ignored.

    It stays on the device (no host synchronisation) unless `error_if_nonfinite` asks for
    the check."""
    ts = [tensors] if isinstance(tensors, Tensor) else [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not ts:
        return Tensor._wrap(np.zeros((), dtypes.get_default_dtype()))
    device = ts[0].device
    norms = [move_array(_vector_norm(t.array, norm_type), device) for t in ts]
    xp = array_module(norms[0])
    total = _vector_norm(xp.stack(norms), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is non-finite ({float(total)}), so it cannot be clipped; "
                           "pass error_if_nonfinite=False to scale by it anyway")
    return Tensor._wrap(total)


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                          total_norm: Tensor, foreach: bool | None = None) -> None:
    """Scale the gradients by min(1, max_norm / (total_norm + 1e-6)), given their total norm
    (torch.nn.utils.clip_grads_with_norm_)."""
    pairs = _with_grads(parameters)
    if not pairs:
        return
    total = total_norm.array
    xp = array_module(total)
    coef = xp.asarray(xp.minimum(max_norm / (total + 1e-6), 1.0))
    for p, grad in pairs:
        g = grad.array
        scale = move_array(coef, grad.device).astype(g.dtype)
        p.grad = Tensor._wrap(array_module(g).asarray(g * scale))


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the
    norm of all gradients seen as one vector; returns total_norm as a 0-d tensor.

    The scale stays on the device (no host synchronisation) unless `error_if_nonfinite`
    asks for the check.
    """
    pairs = _with_grads(parameters)
    total = get_total_norm([g for _, g in pairs], norm_type, error_if_nonfinite)
    clip_grads_with_norm_([p for p, _ in pairs], max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p, grad in _with_grads(parameters):
        g = grad.array
        xp = array_module(g)
        p.grad = Tensor._wrap(xp.asarray(xp.clip(g, -clip_value, clip_value)))
