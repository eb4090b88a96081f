"""Pooling (torch.nn.functional.max_pool1d/2d/3d, avg_pool1d/2d/3d, their adaptive forms,
lp_pool1d/2d/3d, max_unpool1d/2d/3d): the op families in `gradflow.ops.pool` (fused kernels on
the GPU) and `gradflow.ops.pool3d`."""
from __future__ import annotations

from ...ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    lp_pool1d,
    lp_pool2d,
    max_pool1d,
    max_pool2d,
    max_unpool1d,
    max_unpool2d,
)
from ...ops.pool3d import (
    adaptive_avg_pool3d,
    adaptive_max_pool3d,
    avg_pool3d,
    lp_pool3d,
    max_pool3d,
    max_unpool3d,
)

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool1d",
           "lp_pool2d", "lp_pool3d", "max_unpool1d", "max_unpool2d", "max_unpool3d"]
