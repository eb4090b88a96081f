"""Neural-network building blocks (torch.nn)."""
from .module import Module
from .parameter import Parameter
