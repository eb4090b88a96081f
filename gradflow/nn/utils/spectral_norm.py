"""Spectral normalisation, the classic hook-based form (torch.nn.utils.spectral_norm,
remove_spectral_norm): w = w_orig / sigma, sigma the largest singular value of w_orig seen as
a matrix, estimated by power iteration on the buffers `<name>_u`, `<name>_v` (Miyato et al.,
2018). In training each forward runs `n_power_iterations` steps and updates u and v."""
from __future__ import annotations

from typing import Any

from ...autograd.grad_mode import no_grad
from ...creation import normal
from ...ops.linalg import vector_norm
from ...ops.products import dot, mv
from ...tensor import Tensor
from ..module import Module
from ..parameter import Parameter
from .weight_norm import _pre_hooks, _remove_pre_hook


def _normalize(x: Tensor, eps: float) -> Tensor:
    """x / max(||x||, eps) (torch.nn.functional.normalize of a vector)."""
    return x / vector_norm(x).clamp(min=eps)


class SpectralNorm:
    """The forward pre-hook that sets `name` to `name_orig` / sigma."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.eps = name, dim, eps
        self.n_power_iterations = n_power_iterations

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            perm = [self.dim] + [d for d in range(weight.ndim) if d != self.dim]
            weight = weight.permute(*perm)
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        matrix = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v.copy_(_normalize(mv(matrix.t(), u), self.eps))
                    u.copy_(_normalize(mv(matrix, v), self.eps))
            u, v = u.clone(), v.clone()
        sigma = dot(u, mv(matrix, v))
        return weight / sigma

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int,
              eps: float) -> "SpectralNorm":
        for hook in _pre_hooks(module):
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"spectral_norm: cannot register two spectral_norm hooks "
                                   f"on the same parameter {name}")
        weight = module._parameters.get(name)
        if not isinstance(weight, Parameter):
            raise AttributeError(f"spectral_norm: {module._get_name()} has no parameter "
                                 f"{name!r}")
        fn = SpectralNorm(name, n_power_iterations, dim % weight.ndim, eps)
        with no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            u = _normalize(normal(0.0, 1.0, (h,), dtype=weight.dtype, device=weight.device), eps)
            v = _normalize(normal(0.0, 1.0, (w,), dtype=weight.dtype, device=weight.device), eps)
        del module._parameters[name]
        module.register_parameter(name + "_orig", weight)
        setattr(module, name, weight.detach())
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Divide `module.<name>` by its spectral norm before every forward. `dim` is the output
    dimension (1 for ConvTranspose layers, 0 otherwise, when None)."""
    if dim is None:
        dim = 1 if "ConvTranspose" in type(module).__name__ else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo spectral_norm: `<name>` becomes a plain parameter holding w_orig / sigma."""
    for hook in _pre_hooks(module):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            _remove_pre_hook(module, hook)
            return module
    raise ValueError(f"remove_spectral_norm: spectral_norm of {name!r} not found in {module}")
