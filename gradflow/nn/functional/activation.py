"""Activations (torch.nn.functional): elementwise maps built from gradflow's ops, each with
torch's `inplace=` where it has one (an in-place op in the graph, autograd.inplace), and the
softmax family along a dim."""
from __future__ import annotations

import math
import warnings
from typing import Any

from ... import argcheck
from ...amp.autocast_mode import autocast_policy
from ...autograd.inplace import maybe_inplace
from ...creation import rand
from ...ops import elementwise
from ...ops.elementwise import erf, exp, log1p, minimum, sigmoid, tanh, where
from ...ops.reduce import with_dtype
from ...ops.softmax import softmax as softmax_op
from ...ops.softmax_xent import log_softmax as _log_softmax
from ...ops.util import normalize_dim
from ...tensor import Tensor

__all__ = ["relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "scaled_tanh", "softmax",
           "log_softmax", "softmin", "softplus", "softsign", "celu", "selu", "silu", "mish",
           "hardtanh", "relu6", "hardsigmoid", "hardswish", "hardshrink", "softshrink",
           "tanhshrink", "logsigmoid", "glu", "prelu", "rrelu", "threshold", "relu_", "elu_",
           "leaky_relu_", "celu_", "selu_", "hardtanh_", "rrelu_", "threshold_"]

# SELU's constants (Klambauer et al., 2017), to torch's digits
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return maybe_inplace("relu", elementwise.relu, input, inplace)


def _leaky_relu(input: Tensor, negative_slope: float) -> Tensor:
    return where(input > 0, input, input * negative_slope)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    argcheck.real("leaky_relu", "negative_slope", negative_slope)
    return maybe_inplace("leaky_relu", _leaky_relu, input, inplace, negative_slope)


def _elu(input: Tensor, alpha: float, scale: float = 1.0, input_scale: float = 1.0) -> Tensor:
    """scale * (x if x > 0 else alpha * (exp(x * input_scale) - 1)): ELU, CELU and SELU."""
    # NOTE: exp is taken of min(x, 0) so the unused branch cannot overflow.
    negative = (exp(minimum(input, 0.0) * input_scale) - 1) * alpha
    out = where(input > 0, input, negative)
    return out if scale == 1.0 else out * scale


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    argcheck.real("elu", "alpha", alpha)
    return maybe_inplace("elu", _elu, input, inplace, alpha)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) (Barron, 2017)."""
    argcheck.real("celu", "alpha", alpha)
    if alpha == 0:
        raise RuntimeError("celu: ZeroDivisionError: alpha cannot be 0 for CELU")
    return maybe_inplace("celu", _elu, input, inplace, alpha, 1.0, 1.0 / alpha)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with SELU's self-normalising constants."""
    return maybe_inplace("selu", _elu, input, inplace, SELU_ALPHA, SELU_SCALE)


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


def _silu(input: Tensor) -> Tensor:
    return input * sigmoid(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (the swish of Ramachandran et al., 2017)."""
    return maybe_inplace("silu", _silu, input, inplace)


def _softplus(input: Tensor, beta: float, threshold: float) -> Tensor:
    scaled = input * beta if beta != 1 else input
    linear = scaled > threshold
    # NOTE: exp of 0 where the linear branch is taken, so the unused branch cannot overflow
    soft = log1p(exp(where(linear, 0.0, scaled)))
    return where(linear, input, soft if beta == 1 else soft / beta)


@autocast_policy("softplus")
def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as torch)."""
    argcheck.real("softplus", "beta", beta)
    argcheck.real("softplus", "threshold", threshold)
    return _softplus(input, beta, threshold)


def _mish(input: Tensor) -> Tensor:
    return input * tanh(_softplus(input, 1.0, 20.0))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)) (Misra, 2019)."""
    return maybe_inplace("mish", _mish, input, inplace)


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1)


def _hardtanh(input: Tensor, min_val: float, max_val: float) -> Tensor:
    # NOTE: two wheres, not clamp: torch's gradient is zero at the bounds themselves
    return where(input <= min_val, min_val, where(input >= max_val, max_val, input))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    argcheck.real("hardtanh", "min_val", min_val)
    argcheck.real("hardtanh", "max_val", max_val)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val (got min_val="
                         f"{min_val}, max_val={max_val})")
    return maybe_inplace("hardtanh", _hardtanh, input, inplace, min_val, max_val)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(0, x), 6)."""
    return maybe_inplace("relu6", _hardtanh, input, inplace, 0.0, 6.0)


def _hardsigmoid(input: Tensor) -> Tensor:
    return _hardtanh(input + 3, 0.0, 6.0) / 6


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    return maybe_inplace("hardsigmoid", _hardsigmoid, input, inplace)


def _hardswish(input: Tensor) -> Tensor:
    return input * _hardsigmoid(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6 (Howard et al., 2019)."""
    return maybe_inplace("hardswish", _hardswish, input, inplace)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    argcheck.real("hardshrink", "lambd", lambd)
    return where((input > lambd) | (input < -lambd), input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, else 0."""
    argcheck.real("softshrink", "lambd", lambd)
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambda must be greater or equal to 0, but found "
                           f"{lambd}")
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, 0.0))


def tanhshrink(input: Tensor) -> Tensor:
    return input - tanh(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|)): finite for logits of any size."""
    return minimum(input, 0.0) - log1p(exp(-input.abs()))


def _threshold(input: Tensor, threshold: float, value: float) -> Tensor:
    return where(input > threshold, input, value)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    argcheck.real("threshold", "threshold", threshold)
    argcheck.real("threshold", "value", value)
    return maybe_inplace("threshold", _threshold, input, inplace, threshold, value)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), a and b the halves of `input` along `dim` (Dauphin et al., 2017)."""
    if input.ndim == 0:
        raise RuntimeError("glu: glu does not support scalars because halving size must be "
                           "even")
    d = normalize_dim("glu", dim, input.ndim)
    size = input.shape[d]
    if size % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {d} is size "
                           f"{size}")
    a, b = input.narrow(d, 0, size // 2), input.narrow(d, size // 2, size // 2)
    return a * sigmoid(b)


@autocast_policy("prelu")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x, with one weight or one per channel (dim 1)."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"prelu: {name} must be a Tensor, got {type(t).__name__}")
    if weight.dtype != input.dtype:
        raise RuntimeError(f"prelu: Type promoting not supported. Got {input.dtype} and "
                           f"{weight.dtype} (input and weight)")
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.ndim}")
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() not in (1, channels):
        raise RuntimeError(f"prelu: Mismatch of parameter numbers and input channel size. "
                           f"Found parameter numbers = {weight.numel()} and channel size = "
                           f"{channels} (input shape {tuple(input.shape)})")
    if weight.numel() > 1:
        weight = weight.reshape((channels,) + (1,) * (input.ndim - 2))
    elif input.ndim == 0:
        weight = weight.reshape(())
    return where(input > 0, input, input * weight)


def _rrelu(input: Tensor, lower: float, upper: float, training: bool) -> Tensor:
    if not training:
        return _leaky_relu(input, (lower + upper) / 2)
    slopes = rand(*input.shape, dtype=input.dtype, device=input.device) * (upper - lower) + lower
    return where(input > 0, input, input * slopes)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Randomised leaky ReLU (Xu et al., 2015): in training each negative element gets a
    slope drawn uniformly from [lower, upper]; in evaluation the mean slope (lower+upper)/2."""
    argcheck.real("rrelu", "lower", lower)
    argcheck.real("rrelu", "upper", upper)
    if lower > upper:
        raise RuntimeError(f"rrelu: Lower bound should be less than or equal to the upper bound "
                           f"(got lower={lower}, upper={upper})")
    return maybe_inplace("rrelu", _rrelu, input, inplace, lower, upper, training)


# the in-place functional forms (torch.nn.functional.relu_ and kin)
def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    argcheck.real("threshold_", "threshold", threshold)
    argcheck.real("threshold_", "value", value)
    return maybe_inplace("threshold", _threshold, input, True, threshold, value)


def softmax_dim(op: str, dim: int | None, ndim: int) -> int:
    """torch's legacy choice when dim is None (with its warning): 0 for 0-, 1- and 3-D
    inputs, else 1."""
    if dim is not None:
        return dim
    warnings.warn(f"{op}: implicit dimension choice for {op} has been deprecated; change the "
                  f"call to include dim=X as an argument", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax(input: Tensor, dim: int) -> Tensor:
    return softmax_op(input, dim)


@autocast_policy("softmax")
def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim, after the max is taken out; with `dtype`, the input is
    cast to it first (torch's dtype=)."""
    dim = normalize_dim("softmax", softmax_dim("softmax", dim, input.ndim), input.ndim)
    return _softmax(with_dtype(input, dtype), dim)


@autocast_policy("log_softmax")
def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along dim; with `dtype`, the input is cast to it first."""
    dim = softmax_dim("log_softmax", dim, input.ndim)
    return _log_softmax(with_dtype(input, dtype), dim)


@autocast_policy("softmin")
def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    """softmax(-x) along dim."""
    dim = normalize_dim("softmin", softmax_dim("softmin", dim, input.ndim), input.ndim)
    return _softmax(-with_dtype(input, dtype), dim)
