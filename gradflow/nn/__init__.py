"""Neural-network building blocks (torch.nn)."""
from . import functional, init, utils
from .module import Module
from .modules import *  # noqa: F403
from .parameter import Parameter
