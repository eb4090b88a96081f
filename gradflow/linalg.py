"""gradflow.linalg: PyTorch's torch.linalg namespace; the bodies live in gradflow/ops/linalg.py
(and cross in gradflow/ops/products.py)."""
from __future__ import annotations

from .ops.linalg import (
    LinAlgError,
    cholesky,
    det,
    eigh,
    eigvalsh,
    inv,
    matrix_norm,
    matrix_power,
    norm,
    pinv,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
    vector_norm,
)
from .ops.products import linalg_cross as cross

__all__ = ["LinAlgError", "cholesky", "cross", "det", "eigh", "eigvalsh", "inv", "matrix_norm",
           "matrix_power", "norm", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
           "vector_norm"]
