"""Pooling (torch.nn.functional.max_pool2d, avg_pool2d, ...): the op family in
`gradflow.ops.pool` (fused kernels on the GPU)."""
from __future__ import annotations

from ...ops.pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]
