"""Weight normalisation, the classic hook-based form (torch.nn.utils.weight_norm,
remove_weight_norm): w = g * v / ||v|| (Salimans and Kingma, 2016), recomputed from the
parameters `<name>_g` and `<name>_v` by a forward pre-hook before every call."""
from __future__ import annotations

from typing import Any

from ...autograd.grad_mode import no_grad
from ...ops.linalg import vector_norm
from ...tensor import Tensor
from ..module import Module
from ..parameter import Parameter


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:
    """The `pow`-norm of v over every dimension but `dim`, kept broadcastable to v
    (a 0-d norm of all of v when dim is -1, as torch's)."""
    if dim == -1:
        return vector_norm(v, pow)
    dims = tuple(d for d in range(v.ndim) if d != dim % v.ndim)
    return vector_norm(v, pow, dim=dims, keepdim=True)


class WeightNorm:
    """The forward pre-hook that recomputes `name` from `name_g` and `name_v`."""

    def __init__(self, name: str, dim: int | None) -> None:
        self.name = name
        self.dim: int = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / norm_except_dim(v, 2, self.dim))

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> "WeightNorm":
        for hook in _pre_hooks(module):
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"weight_norm: cannot register two weight_norm hooks on "
                                   f"the same parameter {name}")
        weight = module._parameters.get(name)
        if not isinstance(weight, Parameter):
            raise AttributeError(f"weight_norm: {module._get_name()} has no parameter {name!r}")
        fn = WeightNorm(name, dim)
        if fn.dim != -1 and not -weight.ndim <= fn.dim < weight.ndim:
            raise IndexError(f"weight_norm: dim {dim} is out of range for a {weight.ndim}-D "
                             f"weight")
        del module._parameters[name]
        with no_grad():
            module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2,
                                                                             fn.dim)))
            module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def _pre_hooks(module: Module) -> list:
    hooks = module._hooks
    return [] if hooks is None else list(hooks.forward_pre.values())


def _remove_pre_hook(module: Module, hook: Any) -> None:
    pre = module._hooks.forward_pre
    for key, h in list(pre.items()):
        if h is hook:
            del pre[key]


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrise `module.<name>` as g * v / ||v|| (norm over every dim but `dim`; over
    all of it with dim=None), with parameters `<name>_g` and `<name>_v`."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo weight_norm: `<name>` becomes a plain parameter again, holding its current value."""
    for hook in _pre_hooks(module):
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            _remove_pre_hook(module, hook)
            return module
    raise ValueError(f"remove_weight_norm: weight_norm of {name!r} not found in {module}")
