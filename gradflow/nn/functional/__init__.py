"""Functional forms of the layers and losses (torch.nn.functional), one module per family.

Everything here is composed from gradflow's differentiable ops, so gradients and second
derivatives come from those ops. These forms check arguments as torch does and never ask
which backend runs: the ops decide.
"""
from __future__ import annotations

from . import activation, attention, conv, distance, layers, loss, normalization, pooling, sampling
from .activation import *  # noqa: F403
from .attention import *  # noqa: F403
from .conv import *  # noqa: F403
from .distance import *  # noqa: F403
from .layers import *  # noqa: F403
from .loss import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
from .sampling import *  # noqa: F403

__all__ = [name for family in (activation, attention, conv, distance, layers, loss, normalization,
                               pooling, sampling) for name in family.__all__]
