"""Softmax along one dim as one op (torch.nn.functional.softmax, and the softmax of
attention): on kernel arrays kernels/softmax.cu reads each row twice and writes it once,
forward and backward, where the composed form (max, subtract, exp, sum, divide) ran five
kernels and kept four temporaries per pass; elsewhere the same math on the array module.
Backward is written with gradflow ops on the saved output, so it differentiates again."""
from __future__ import annotations

from typing import Any

from .. import dtypes
from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..backend import array_module
from ..cuda import compiler
from ..cuda import softmax as kernels
from ..tensor import Tensor


def softmax_array(a: Any, axis: int, safe: bool) -> Any:
    """softmax of an array along `axis`, after its maximum is taken out; with `safe`, a slice
    whose entries are all -inf gives zeros (attention's masked rows), else NaN (torch's).
    Also the NumPy twin of kernels/softmax.cu."""
    xp = array_module(a)
    axes = axis if a.ndim else None
    acc = dtypes.accumulation(a.dtype)
    if acc != a.dtype:  # float16/bfloat16 in float32, rounded once (as torch's CPU softmax)
        return softmax_array(a.astype(acc), axis, safe).astype(a.dtype)
    top = a.max(axis=axes, keepdims=True)
    if safe:
        top = xp.where(xp.isfinite(top), top, 0)
    e = xp.exp(a - top)
    total = e.sum(axis=axes, keepdims=True)
    if safe:
        total = xp.where(total == 0, 1, total)
    e /= total
    return e


def _on_kernels(a: Any, axis: int, fn: Any, *arrays: Any) -> Any:
    """fn on the arrays with `axis` moved last (the kernels' rows), moved back after."""
    xp = array_module(a)
    last = a.ndim - 1
    if axis == last or a.ndim == 0:
        return fn(*arrays)
    moved = [xp.moveaxis(x, axis, -1) for x in arrays]
    return xp.moveaxis(fn(*moved), -1, axis)


class Softmax(Op):
    """softmax(x) along `dim`; `safe` as in softmax_array."""

    op_name, saves_outputs = "softmax", True

    @staticmethod
    def forward(ctx, x: Tensor, *, dim: int, safe: bool):
        if not dtypes.is_floating(x.dtype):
            raise TypeError(f"softmax: expected a floating point input, got {x.dtype}")
        ctx.dim = dim
        a = x.array
        if a.size == 0:
            return a.copy()
        if compiler.uses_kernels(a):
            return _on_kernels(a, dim, lambda v: kernels.forward(v, safe), a)
        return softmax_array(a, dim, safe)

    @staticmethod
    def backward(ctx, g: Tensor):
        y = ctx.outputs[0]
        if not is_grad_enabled() and y.numel() and compiler.uses_kernels(y.array):
            return Tensor._wrap(_on_kernels(y.array, ctx.dim, kernels.backward, y.array,
                                            g.array))
        return y * (g - (g * y).sum(ctx.dim, keepdim=True))


def softmax(x: Tensor, dim: int, safe: bool = False) -> Tensor:
    """The softmax op on x along a normalised (non-negative) dim."""
    return Softmax.apply(x, dim=dim, safe=safe)
