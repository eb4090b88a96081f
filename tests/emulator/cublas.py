"""cuBLAS's strided-batched GEMM on the CPU: reads and writes memory exactly as cuBLAS would
(column-major, leading dimensions, transpose flags, batch strides), so the plans of
gradflow.cuda.blas are checked against NumPy without a GPU."""
from __future__ import annotations

import numpy as np

from gradflow.cuda import blas


def _root(x: np.ndarray) -> np.ndarray:
    while isinstance(x.base, np.ndarray):
        x = x.base
    return x


def read(operand: blas.Operand, rows: int, cols: int, batch: int) -> np.ndarray:
    """op(X) as cuBLAS reads it, (batch, rows, cols); fails on a read outside X's buffer or
    a leading dimension cuBLAS would reject."""
    x = operand.array
    stored = (rows, cols) if operand.op == blas.OP_N else (cols, rows)
    assert operand.ld >= max(1, stored[0]), "cuBLAS rejects a leading dimension below the rows"
    last = (batch - 1) * operand.batch_stride + (stored[0] - 1) + (stored[1] - 1) * operand.ld
    root = _root(x)
    start, lo = x.__array_interface__["data"][0], root.__array_interface__["data"][0]
    assert lo <= start and start + (last + 1) * x.itemsize <= lo + root.nbytes, \
        "cuBLAS would read outside the operand's buffer"
    view = np.lib.stride_tricks.as_strided(
        x, shape=(batch,) + stored,
        strides=(operand.batch_stride * x.itemsize, x.itemsize, operand.ld * x.itemsize))
    return view if operand.op == blas.OP_N else view.transpose(0, 2, 1)


def gemm_strided_batched(gemm: blas.Gemm, out: np.ndarray) -> None:
    """Column-major C = op(A) op(B) with ldc = m and batch stride m * n (blas._run's call).
    float16 and bfloat16 operands multiply in float32 and the result is rounded once, as
    cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F does (up to summation order)."""
    a, b = read(gemm.a, gemm.m, gemm.k, gemm.batch), read(gemm.b, gemm.k, gemm.n, gemm.batch)
    if out.dtype in blas.LOW_PRECISION:
        c = (a.astype(np.float32) @ b.astype(np.float32)).astype(out.dtype)
    else:
        c = a @ b
    assert out.flags.c_contiguous and out.size == gemm.batch * gemm.m * gemm.n
    flat = out.reshape(-1)
    for i in range(gemm.batch):
        flat[i * gemm.m * gemm.n:(i + 1) * gemm.m * gemm.n] = c[i].reshape(-1, order="F")
