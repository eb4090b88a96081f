"""Weight and spectral normalisation as parametrizations
(torch.nn.utils.parametrizations.weight_norm, spectral_norm): the newer forms, where the
originals live under `module.parametrizations.weight` and the normalised weight is computed
on each access."""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...creation import normal
from ...ops.products import dot, mv
from ...tensor import Tensor
from ..module import Module
from .parametrize import register_parametrization
from .spectral_norm import _normalize
from .weight_norm import norm_except_dim

__all__ = ["weight_norm", "spectral_norm"]


class _WeightNorm(Module):
    """weight = g * v / ||v||, from (g, v) = (original0, original1)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / norm_except_dim(weight_v, 2, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple:
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Parametrize `module.<name>` as g * v / ||v|| (torch's parametrizations.weight_norm)."""
    register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    """weight / sigma, sigma estimated by power iteration on the buffers `_u` and `_v`
    (15 steps at creation, `n_power_iterations` per forward in training)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.dim = dim % weight.ndim if weight.ndim else 0
        self.eps, self.n_power_iterations = eps, n_power_iterations
        if weight.ndim > 1:
            matrix = self._reshape(weight)
            h, w = matrix.shape
            with no_grad():
                u = normal(0.0, 1.0, (h,), dtype=weight.dtype, device=weight.device)
                v = normal(0.0, 1.0, (w,), dtype=weight.dtype, device=weight.device)
                self.register_buffer("_u", _normalize(u, eps))
                self.register_buffer("_v", _normalize(v, eps))
            self._power_method(matrix, 15)

    def _reshape(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, matrix: Tensor, iterations: int) -> None:
        with no_grad():
            for _ in range(iterations):
                self._u.copy_(_normalize(mv(matrix, self._v), self.eps))
                self._v.copy_(_normalize(mv(matrix.t(), self._u), self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return _normalize(weight, self.eps)
        matrix = self._reshape(weight)
        if self.training:
            self._power_method(matrix, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        return weight / dot(u, mv(matrix, v))

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Parametrize `module.<name>` as weight / sigma (torch's parametrizations.spectral_norm);
    `dim` defaults to 1 for ConvTranspose layers, 0 otherwise."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"spectral_norm: module '{module._get_name()}' has no parameter or "
                         f"buffer with name '{name}'")
    if dim is None:
        dim = 1 if "ConvTranspose" in type(module).__name__ else 0
    register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
