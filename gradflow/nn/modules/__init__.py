"""The layer classes of gradflow.nn, one module per family; each module's `__all__` says what
it adds to gradflow.nn."""
from . import (
               activation,
               container,
               conv,
               distance,
               dropout,
               linear,
               loss,
               normalization,
               pooling,
               sampling,
)
from .activation import *  # noqa: F403
from .container import *  # noqa: F403
from .conv import *  # noqa: F403
from .distance import *  # noqa: F403
from .dropout import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
from .sampling import *  # noqa: F403

__all__ = [name for family in (activation, container, conv, distance, dropout, linear, loss,
                               normalization, pooling, sampling) for name in family.__all__]
