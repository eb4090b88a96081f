"""Weight initialisation (torch.nn.init): the Xavier/Glorot (Glorot and Bengio, 2010) and
He/Kaiming (He et al., 2015) schemes, plus constant, normal, truncated normal, uniform,
orthogonal, identity, Dirac and sparse fills, and the default init of Linear and Conv2d layers
(`reset_linear_`). All fill in place, without recording the graph, and draw from gradflow's
seeded generators."""
from __future__ import annotations

import math

import numpy as np

from ..autograd.grad_mode import no_grad
from ..creation import normal as _normal
from ..creation import rand as _rand
from ..tensor import Tensor

_GAINS = {"linear": 1.0, "identity": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
          "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activation variance steady through `nonlinearity`."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if not isinstance(slope, (int, float)) or isinstance(slope, bool):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use one "
                         f"of {sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple:
    if tensor.ndim < 2:
        raise ValueError(f"init: fan in and fan out can not be computed for a tensor with "
                         f"fewer than 2 dimensions (shape {tuple(tensor.shape)})")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor: Tensor, values: Tensor) -> Tensor:
    with no_grad():
        tensor.copy_(values)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    if a > b:
        raise ValueError(f"uniform_: lower bound a={a} exceeds upper bound b={b}")
    u = _rand(*tensor.shape, generator=generator, dtype=tensor.dtype, device=tensor.device)
    return _fill(tensor, u * (b - a) + a)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    return _fill(tensor, _normal(mean, std, tuple(tensor.shape), generator=generator,
                                 dtype=tensor.dtype, device=tensor.device))


def constant_(tensor: Tensor, val: float) -> Tensor:
    with no_grad():
        return tensor.fill_(val)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al., 2015)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def reset_linear_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default init of Linear and Conv2d: kaiming_uniform_(a=sqrt(5)) weights and a
    U(+-1/sqrt(fan_in)) bias."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al.)."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported "
                         f"(shape {tuple(tensor.shape)})")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _normal(0.0, 1.0, (rows, cols), generator=generator, dtype="float64").numpy()
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    values = Tensor._wrap(np.ascontiguousarray(q.reshape(tuple(tensor.shape))) * gain)
    return _fill(tensor, values)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """N(mean, std) truncated to [a, b], drawn by inverting the normal CDF on the uniform
    values between the bounds' CDFs (torch's method)."""
    if std < 0:
        raise ValueError(f"trunc_normal_: std must be non-negative, got {std}")
    if a > b:
        raise ValueError(f"trunc_normal_: lower bound a={a} exceeds upper bound b={b}")

    def cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
    u = _rand(*tensor.shape, generator=generator, dtype=tensor.dtype, device=tensor.device)
    values = (u * (2 * hi - 2 * lo) + (2 * lo - 1)).erfinv() * (std * math.sqrt(2.0)) + mean
    return _fill(tensor, values.clamp(a, b))


def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix (ones on the diagonal of a 2-D tensor, zeros elsewhere)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported (shape "
                         f"{tuple(tensor.shape)})")
    from ..creation import eye
    rows, cols = tensor.shape
    return _fill(tensor, eye(rows, cols, dtype=tensor.dtype, device=tensor.device))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """The Dirac delta of a 3-, 4- or 5-D convolution weight: each of the first
    min(out/groups, in) output channels of a group passes its input channel through."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported (shape "
                         f"{tuple(tensor.shape)})")
    if tensor.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups "
                         f"({groups})")
    out_per_group = tensor.shape[0] // groups
    values = np.zeros(tuple(tensor.shape), tensor.dtype)
    centre = tuple(n // 2 for n in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, Tensor._wrap(values).to(tensor.device))


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    """A 2-D N(0, std) matrix with ceil(sparsity * rows) zeros in each column, at rows drawn
    at random (Martens, 2010)."""
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: only tensors with 2 dimensions are supported (shape "
                         f"{tuple(tensor.shape)})")
    rows, cols = tensor.shape
    zeros = int(math.ceil(sparsity * rows))
    values = _normal(0.0, std, (rows, cols), generator=generator, dtype=tensor.dtype).numpy()
    order = np.argsort(_rand(rows, cols, generator=generator, dtype="float64").numpy(), axis=0)
    np.put_along_axis(values, order[:zeros], 0.0, axis=0)
    return _fill(tensor, Tensor._wrap(values).to(tensor.device))
