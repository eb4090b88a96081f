"""The layer classes of gradflow.nn."""
from .activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, ScaledTanh, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout, Dropout2d
from .linear import Flatten, Identity, Linear, Maxout
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .normalization import (
                         BatchNorm1d,
                         BatchNorm2d,
                         GroupNorm,
                         InstanceNorm2d,
                         LayerNorm,
                         LocalResponseNorm,
)
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
