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
               rnn,
               sampling,
               sparse,
               sync_batchnorm,
               transformer,
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
from .rnn import *  # noqa: F403
from .sampling import *  # noqa: F403
from .sparse import *  # noqa: F403
from .sync_batchnorm import *  # noqa: F403
from .transformer import *  # noqa: F403

# NOTE: the sum spelled out, as type checkers read it
__all__ = activation.__all__.copy()
__all__ += container.__all__
__all__ += conv.__all__
__all__ += distance.__all__
__all__ += dropout.__all__
__all__ += linear.__all__
__all__ += loss.__all__
__all__ += normalization.__all__
__all__ += pooling.__all__
__all__ += rnn.__all__
__all__ += sampling.__all__
__all__ += sparse.__all__
__all__ += sync_batchnorm.__all__
__all__ += transformer.__all__
