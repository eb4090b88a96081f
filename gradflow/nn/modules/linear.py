"""Linear, Identity, Flatten and Maxout layers."""
from __future__ import annotations

from ... import argcheck, creation
from ...ops.reduce import amax
from ...ops.shape import flatten, reshape
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .conv import Conv2d
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d

__all__ = ["Identity", "Flatten", "Linear", "Maxout"]


class Identity(Module):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = argcheck.integer("Flatten", "start_dim", start_dim)
        self.end_dim = argcheck.integer("Flatten", "end_dim", end_dim)

    def forward(self, input: Tensor) -> Tensor:
        return flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Linear(Module):
    """y = x W^T + b (torch.nn.Linear).

    When a model's first Linear fails on the width of a flattened feature map, the error adds
    the likely cause, an input image of another size (see `_failure_hint`).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.in_features = argcheck.integer("Linear", "in_features", in_features, minimum=0)
        self.out_features = argcheck.integer("Linear", "out_features", out_features, minimum=0)
        self.weight = Parameter(creation.empty(out_features, in_features, device=device,
                                               dtype=dtype))
        if bias:
            self.bias = Parameter(creation.empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        init.reset_linear_(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def _failure_hint(self, args: tuple, model: Module) -> str:
        """The rule: a 2-D input of the wrong width, into the first Linear of `model`, which
        comes after a Flatten or a convolution or pooling layer (in registration order), the
        last of which is not an adaptive pooling. Its input is then the flattened feature map,
        whose width follows the image size, unless an adaptive pooling fixed the map's size."""
        x = args[0] if args else None
        if not (isinstance(x, Tensor) and x.ndim == 2 and x.shape[1] != self.in_features
                and _first_dense_after_feature_maps(self, model)):
            return ""
        return (f"this is the model's first Linear after its feature maps, so the input image "
                f"size likely differs from what the model was built for; the flattened "
                f"features have {x.shape[1]} values per sample, which would need "
                f"in_features={x.shape[1]} (the layer has in_features={self.in_features})")

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Maxout(Module):
    """max over `pool_size` linear pieces per output unit (Goodfellow et al., 2013)."""

    def __init__(self, in_features: int, out_features: int, pool_size: int) -> None:
        super().__init__()
        argcheck.integer("Maxout", "in_features", in_features, minimum=0)
        self.out_features = argcheck.integer("Maxout", "out_features", out_features, minimum=0)
        self.pool_size = argcheck.integer("Maxout", "pool_size", pool_size, minimum=1)
        self.linear = Linear(in_features, out_features * pool_size)

    def forward(self, input: Tensor) -> Tensor:
        pieces = reshape(self.linear(input), tuple(input.shape[:-1])
                         + (self.out_features, self.pool_size))
        return amax(pieces, -1)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, pool_size={self.pool_size}"


def _first_dense_after_feature_maps(linear: Linear, model: Module) -> bool:
    """Whether `linear` is the first Linear of `model` and follows a Flatten or a spatial
    layer, the last of which is not an adaptive pooling (see Linear._failure_hint)."""
    spatial = (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d)
    last_spatial, flattened = None, False
    for m in model.modules():
        if m is linear:
            break
        if isinstance(m, Linear):
            return False
        if isinstance(m, spatial):
            last_spatial = m
        flattened = flattened or isinstance(m, Flatten)
    adaptive = isinstance(last_spatial, (AdaptiveAvgPool2d, AdaptiveMaxPool2d))
    return (flattened or last_spatial is not None) and not adaptive
