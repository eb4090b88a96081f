"""Activation layers (torch.nn names), including LeNet-5's scaled tanh."""
from __future__ import annotations

from ... import argcheck
from ...tensor import Tensor
from .. import functional as F
from ..module import Module

__all__ = ["ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "ScaledTanh", "Softmax",
           "LogSoftmax"]


class ReLU(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        argcheck.real("LeakyReLU", "negative_slope", negative_slope)
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        argcheck.real("ELU", "alpha", alpha)
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = argcheck.choice("GELU", "approximate", approximate, ("none", "tanh"))

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class ScaledTanh(Module):
    """1.7159 tanh(2x/3), the squashing function of LeNet-5."""

    def forward(self, input: Tensor) -> Tensor:
        return F.scaled_tanh(input)


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim if dim is None else argcheck.integer("Softmax", "dim", dim)

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, _dim(self.dim, input))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim if dim is None else argcheck.integer("LogSoftmax", "dim", dim)

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, _dim(self.dim, input))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _dim(dim: int | None, input: Tensor) -> int:
    """torch's legacy choice when dim is None: 0 for 0-, 1- and 3-D inputs, else 1."""
    if dim is not None:
        return dim
    return 0 if input.ndim in (0, 1, 3) else 1
