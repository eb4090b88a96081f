"""Functional forms of the layers and losses (torch.nn.functional), one module per family.

Everything here is composed from gradflow's differentiable ops, so gradients and second
derivatives come from those ops. These forms check arguments as torch does and never ask
which backend runs: the ops decide.
"""
from __future__ import annotations

from . import (
               activation,
               attention,
               conv,
               distance,
               layers,
               loss,
               normalization,
               pooling,
               sampling,
               sparse,
)
from .activation import *  # noqa: F403
from .attention import *  # noqa: F403
from .conv import *  # noqa: F403
from .distance import *  # noqa: F403
from .layers import *  # noqa: F403
from .loss import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
from .sampling import *  # noqa: F403
from .sparse import *  # noqa: F403

# NOTE: the sum spelled out, as type checkers read it
__all__: list[str] = []
__all__ += activation.__all__
__all__ += attention.__all__
__all__ += conv.__all__
__all__ += distance.__all__
__all__ += layers.__all__
__all__ += loss.__all__
__all__ += normalization.__all__
__all__ += pooling.__all__
__all__ += sampling.__all__
__all__ += sparse.__all__
