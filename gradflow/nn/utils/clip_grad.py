"""Gradient clipping (torch.nn.utils.clip_grad_norm_, clip_grad_value_).

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


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the
    norm of all gradients seen as one vector; returns total_norm as a 0-d tensor.

    The scale stays on the device (no host synchronisation) unless `error_if_nonfinite`
    asks for the check.
    """
    pairs = _with_grads(parameters)
    norm_type = float(norm_type)
    if not pairs:
        return Tensor._wrap(np.zeros((), dtypes.get_default_dtype()))
    device = pairs[0][1].device
    norms = [move_array(_vector_norm(grad.array, norm_type), device) for _, grad in pairs]
    xp = array_module(norms[0])
    total = _vector_norm(xp.stack(norms), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is non-finite ({float(total)}), so it cannot be clipped; "
                           "pass error_if_nonfinite=False to scale by it anyway")
    coef = xp.asarray(xp.minimum(max_norm / (total + 1e-6), 1.0))
    for p, grad in pairs:
        g = grad.array
        scale = move_array(coef, grad.device).astype(g.dtype)
        p.grad = Tensor._wrap(array_module(g).asarray(g * scale))
    return Tensor._wrap(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p, grad in _with_grads(parameters):
        g = grad.array
        xp = array_module(g)
        p.grad = Tensor._wrap(xp.asarray(xp.clip(g, -clip_value, clip_value)))
