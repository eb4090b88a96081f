"""Matrix product with NumPy's matmul semantics: 1-D, 2-D, batched and broadcast batches,
and the dense layer's product x W^T.

`matmul_arrays` is the family's one entry on arrays, used by these ops and by convolution's
lowered products: kernel arrays of one dtype go to cuBLAS (gradflow.cuda.blas, which also runs
inside a captured CUDA graph), every other array to its array module's matmul.
"""
from __future__ import annotations

from typing import Any

from .. import dtypes
from ..amp.autocast_mode import autocast_policy
from ..autograd.function import Op
from ..backend import array_module
from ..cuda import blas, compiler
from ..tensor import Tensor
from .shape import reshape, sum_to, transpose, unsqueeze


def matmul_arrays(a: Any, b: Any) -> Any:
    """a @ b for NumPy or CuPy arrays (NumPy's matmul rules, 1-D operands included): cuBLAS
    for kernel arrays (CuPy float32/float64) of one dtype, `xp.matmul` otherwise."""
    if compiler.uses_kernels(a) and a.dtype == b.dtype:
        return blas.matmul(a, b)
    # NOTE: float16/bfloat16 accumulate in float32 and round once, as torch's CPU matmul
    # (NumPy's bfloat16 matmul returns float32; CuPy's batched matmul has no bfloat16 path)
    if a.dtype == b.dtype and (a.dtype == dtypes.bfloat16 or a.dtype == dtypes.float16):
        wide = dtypes.float32
        return array_module(a).matmul(a.astype(wide), b.astype(wide)).astype(a.dtype)
    return array_module(a).matmul(a, b)


def _check(a: Tensor, b: Tensor) -> None:
    for name, v in (("first", a), ("second", b)):
        if not isinstance(v, Tensor):
            raise TypeError(f"matmul: the {name} argument must be a Tensor, got "
                            f"{type(v).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need to be at least 1D, but they are "
                           f"{a.ndim}D and {b.ndim}D")
    if a.dtype != b.dtype:
        raise RuntimeError(f"matmul: expected both operands to have the same dtype, but got "
                           f"{a.dtype} and {b.dtype}")
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise RuntimeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                           f"multiplied ({k_a} columns in the first vs {k_b} rows in the second)")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    for x, y in zip(reversed(batch_a), reversed(batch_b)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"matmul: batch dimensions of {tuple(a.shape)} and "
                               f"{tuple(b.shape)} cannot be broadcast together")


class Matmul(Op):
    op_name = "matmul"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return matmul_arrays(a.array, b.array)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a
        # NOTE: treat 1-D operands as a row (a) or a column (b), as matmul does.
        a2 = unsqueeze(a, 0) if a.ndim == 1 else a
        b2 = unsqueeze(b, -1) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = unsqueeze(g2, -2)
        if b.ndim == 1:
            g2 = unsqueeze(g2, -1)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = reshape(sum_to(matmul(g2, transpose(b2, -1, -2)), a2.shape), a.shape)
        if ctx.needs_input_grad[1]:
            gb = reshape(sum_to(matmul(transpose(a2, -1, -2), g2), b2.shape), b.shape)
        return ga, gb


class LinearProduct(Op):
    """x W^T + b for x of shape (..., in), W of shape (out, in) and an optional b of shape
    (out,), one node as torch's addmm, with a backward that makes the weight gradient g^T x in
    W's own layout. (As matmul(x, W.t()) the weight gradient came out as a transposed view, and
    every optimizer pass over a big layer then ran strided.)"""

    op_name = "linear"

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        out = matmul_arrays(x.array, w.array.T)
        if b is not None:
            out += b.array  # NOTE: the product is a fresh array, so the bias goes in place
        return out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gx = matmul(g, w) if needs[0] else None
        gw = gb = None
        if needs[1] or (len(needs) > 2 and needs[2]):
            rows = reshape(g, (-1, w.shape[0]))
            if needs[1]:
                gw = matmul(transpose(rows, 0, 1), reshape(x, (-1, w.shape[1])))
            if len(needs) > 2 and needs[2]:
                gb = rows.sum(0)
        return (gx, gw) if len(needs) == 2 else (gx, gw, gb)


@autocast_policy("matmul")
def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product of two tensors (torch.matmul)."""
    _check(a, b)
    return Matmul.apply(a, b)
