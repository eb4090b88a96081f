"""Activations (torch.nn.functional): elementwise maps built from gradflow's ops, each with
torch's `inplace=` where it has one (an in-place op in the graph, autograd.inplace)."""
from __future__ import annotations

import math

from ... import argcheck
from ...autograd.inplace import maybe_inplace
from ...ops import elementwise
from ...ops.elementwise import erf, exp, minimum, sigmoid, tanh, where
from ...ops.reduce import amax
from ...ops.softmax_xent import log_softmax
from ...ops.util import normalize_dim
from ...tensor import Tensor

__all__ = ["relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "scaled_tanh", "softmax",
           "log_softmax"]


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return maybe_inplace("relu", elementwise.relu, input, inplace)


def _leaky_relu(input: Tensor, negative_slope: float) -> Tensor:
    return where(input > 0, input, input * negative_slope)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    argcheck.real("leaky_relu", "negative_slope", negative_slope)
    return maybe_inplace("leaky_relu", _leaky_relu, input, inplace, negative_slope)


def _elu(input: Tensor, alpha: float) -> Tensor:
    # NOTE: exp is taken of min(x, 0) so the unused branch cannot overflow.
    return where(input > 0, input, (exp(minimum(input, 0.0)) - 1) * alpha)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    argcheck.real("elu", "alpha", alpha)
    return maybe_inplace("elu", _elu, input, inplace, alpha)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x); approximate='tanh' uses the tanh formula, as in torch."""
    argcheck.choice("gelu", "approximate", approximate, ("none", "tanh"))
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (1 + tanh(inner))
    return input * 0.5 * (1 + erf(input * (1 / math.sqrt(2))))


def scaled_tanh(input: Tensor) -> Tensor:
    """LeNet-5's squashing function 1.7159 tanh(2x/3) (LeCun et al., 1998)."""
    return tanh(input * (2 / 3)) * 1.7159


def softmax(input: Tensor, dim: int) -> Tensor:
    dim = normalize_dim("softmax", dim, input.ndim)
    shifted = input - amax(input.detach(), dim, keepdim=True)
    e = exp(shifted)
    return e / e.sum(dim, keepdim=True)
