"""Activation layers (torch.nn names), including LeNet-5's scaled tanh."""
from __future__ import annotations

from ... import argcheck, creation
from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from ..parameter import Parameter

__all__ = ["ReLU", "LeakyReLU", "ELU", "GELU", "Sigmoid", "Tanh", "ScaledTanh", "Softmax",
           "LogSoftmax", "Softmin", "Softmax2d", "Softplus", "Softsign", "CELU", "SELU", "SiLU",
           "Mish", "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish", "Hardshrink", "Softshrink",
           "Tanhshrink", "LogSigmoid", "GLU", "PReLU", "RReLU", "Threshold"]


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


class _DimSoftmax(Module):
    """Softmax, LogSoftmax and Softmin: the functional form along `dim` (None: torch's legacy
    choice, with its warning)."""

    function = staticmethod(F.softmax)

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim if dim is None else argcheck.integer(type(self).__name__, "dim", dim)

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_DimSoftmax):
    function = staticmethod(F.softmax)


class LogSoftmax(_DimSoftmax):
    function = staticmethod(F.log_softmax)


class Softmin(_DimSoftmax):
    function = staticmethod(F.softmin)


class Softmax2d(Module):
    """Softmax over the channels at each location of a (N, C, H, W) or (C, H, W) input."""

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.ndim}D "
                             f"instead (shape {tuple(input.shape)})")
        return F.softmax(input, -3)


class _Inplace(Module):
    """An elementwise activation with torch's `inplace=` and no other option."""

    function = staticmethod(F.relu)

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class SELU(_Inplace):
    function = staticmethod(F.selu)


class SiLU(_Inplace):
    function = staticmethod(F.silu)


class Mish(_Inplace):
    function = staticmethod(F.mish)


class ReLU6(_Inplace):
    function = staticmethod(F.relu6)


class Hardsigmoid(_Inplace):
    function = staticmethod(F.hardsigmoid)


class Hardswish(_Inplace):
    function = staticmethod(F.hardswish)


class Softsign(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.softsign(input)


class Tanhshrink(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanhshrink(input)


class LogSigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        argcheck.real("Softplus", "beta", beta)
        argcheck.real("Softplus", "threshold", threshold)
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class CELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        argcheck.real("CELU", "alpha", alpha)
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Hardtanh(Module):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0,
                 inplace: bool = False) -> None:
        super().__init__()
        argcheck.real("Hardtanh", "min_val", min_val)
        argcheck.real("Hardtanh", "max_val", max_val)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val cannot be greater than max_val (got min_val="
                             f"{min_val}, max_val={max_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (
            ", inplace=True" if self.inplace else "")


class _Shrink(Module):
    function = staticmethod(F.hardshrink)

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = argcheck.real(type(self).__name__, "lambd", lambd)

    def forward(self, input: Tensor) -> Tensor:
        return self.function(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Hardshrink(_Shrink):
    function = staticmethod(F.hardshrink)


class Softshrink(_Shrink):
    function = staticmethod(F.softshrink)


class Threshold(Module):
    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        argcheck.real("Threshold", "threshold", threshold)
        argcheck.real("Threshold", "value", value)
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}" + (
            ", inplace=True" if self.inplace else "")


class GLU(Module):
    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = argcheck.integer("GLU", "dim", dim)

    def forward(self, input: Tensor) -> Tensor:
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class PReLU(Module):
    """Leaky ReLU with a learned slope, one shared or one per channel (He et al., 2015)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.num_parameters = argcheck.integer("PReLU", "num_parameters", num_parameters,
                                               minimum=1)
        self.init = argcheck.real("PReLU", "init", init)
        self.weight = Parameter(creation.full((num_parameters,), init, device=device,
                                              dtype=dtype))

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomised leaky ReLU: random slopes in training, their mean in evaluation."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
                 inplace: bool = False) -> None:
        super().__init__()
        argcheck.real("RReLU", "lower", lower)
        argcheck.real("RReLU", "upper", upper)
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}" + (
            ", inplace=True" if self.inplace else "")
