"""Functional forms of the layers and losses (torch.nn.functional), one module per family.

Everything here is composed from gradflow's differentiable ops, so gradients and second
derivatives come from those ops. These forms check arguments as torch does and never ask
which backend runs: the ops decide.
"""
from __future__ import annotations

from ...ops.conv import conv2d
from ...ops.pad import pad
from ...ops.pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from . import activation, layers, loss, normalization
from .activation import *  # noqa: F403
from .layers import *  # noqa: F403
from .loss import *  # noqa: F403
from .normalization import *  # noqa: F403

__all__ = (["conv2d", "pad", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
            "adaptive_max_pool2d"]
           + activation.__all__ + layers.__all__ + loss.__all__ + normalization.__all__)
