"""Adam and AdamW, with bias correction and optional AMSGrad (torch.optim.Adam, AdamW)."""
from __future__ import annotations

from typing import Any, Iterable

from .. import argcheck
from ..backend import array_module
from ..cuda import optim as fused
from ..tensor import Tensor
from .optimizer import Optimizer, decayed_grad, in_blocks


def adam_step(param: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, max_exp_avg_sq: Any | None,
              *, step: int, lr: float, beta1: float, beta2: float, eps: float,
              weight_decay: float, maximize: bool, decoupled_weight_decay: bool) -> None:
    """One Adam update of `param` and the moment arrays, in place, on NumPy or CuPy arrays.

    `step` counts this update (1 on the first). `max_exp_avg_sq` is given for AMSGrad.
    Decoupled weight decay (AdamW) shrinks the parameter instead of adding to the gradient.
    """
    xp = array_module(param)
    grad = decayed_grad(param, grad, weight_decay=weight_decay, maximize=maximize,
                        decoupled_lr=lr if decoupled_weight_decay else None)
    # NOTE: torch moves the first moment with lerp_, i.e. m += (1 - beta1) * (g - m).
    exp_avg += (1 - beta1) * (grad - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        exp_avg_sq = max_exp_avg_sq
    step_size = lr / (1 - beta1 ** step)
    denom = xp.sqrt(exp_avg_sq)
    denom /= (1 - beta2 ** step) ** 0.5
    denom += eps
    param -= step_size * (exp_avg / denom)


class Adam(Optimizer):
    """Adaptive moment estimation (torch.optim.Adam); `decoupled_weight_decay=True` is AdamW."""

    _nonnegative = ("lr", "eps", "weight_decay")

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        betas = group["betas"]
        self._require(len(betas) == 2, "betas", betas, "a pair (beta1, beta2)")
        for i, beta in enumerate(betas):
            argcheck.real(self._name, f"betas[{i}]", beta)
            self._require(0 <= beta < 1, f"betas[{i}]", beta, f"0 <= betas[{i}] < 1")

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": 0, "exp_avg": self._full_like(p), "exp_avg_sq": self._full_like(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = self._full_like(p)
        return state

    def _scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        (beta1, beta2), step = group["betas"], state["step"]
        return (group["lr"], beta1, beta2, group["eps"], group["weight_decay"],
                1 - beta1 ** step, (1 - beta2 ** step) ** 0.5)

    def _state_arrays(self, state: dict[str, Any],
                      group: dict[str, Any]) -> tuple[Any, Any, Any | None]:
        return (state["exp_avg"].array, state["exp_avg_sq"].array,
                state["max_exp_avg_sq"].array if group["amsgrad"] else None)

    def _fused_update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any],
                      hp: Any) -> None:
        fused.adam(p.array, grad, *self._state_arrays(state, group), hp,
                   maximize=group["maximize"],
                   decoupled_weight_decay=group["decoupled_weight_decay"])

    def _reference_update(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        in_blocks(adam_step, p.array, grad, *self._state_arrays(state, group), step=state["step"],
                  lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                  weight_decay=group["weight_decay"], maximize=group["maximize"],
                  decoupled_weight_decay=group["decoupled_weight_decay"])


class AdamW(Adam):
    """Adam with decoupled weight decay, default 1e-2 (torch.optim.AdamW)."""

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
