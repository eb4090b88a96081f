"""Neural-network building blocks (torch.nn)."""
from . import functional, init, parallel, utils
from .module import Module
from .modules.activation import *  # noqa: F403
from .modules.container import *  # noqa: F403
from .modules.conv import *  # noqa: F403
from .modules.distance import *  # noqa: F403
from .modules.dropout import *  # noqa: F403
from .modules.linear import *  # noqa: F403
from .modules.loss import *  # noqa: F403
from .modules.normalization import *  # noqa: F403
from .modules.pooling import *  # noqa: F403
from .modules.rnn import *  # noqa: F403
from .modules.sampling import *  # noqa: F403
from .modules.sparse import *  # noqa: F403
from .modules.sync_batchnorm import *  # noqa: F403
from .modules.transformer import *  # noqa: F403
from .parameter import Parameter
