"""Adagrad: per-coordinate steps scaled by the accumulated squared gradients
(torch.optim.Adagrad)."""
from __future__ import annotations

from typing import Any, Iterable

from ..backend import array_module
from ..cuda import optim as fused
from ..tensor import Tensor
from .optimizer import Optimizer, decayed_grad, in_blocks


def adagrad_step(param: Any, grad: Any, state_sum: Any, *, step: int, lr: float,
                 lr_decay: float, weight_decay: float, eps: float, maximize: bool) -> None:
    """One Adagrad update of `param` and `state_sum`, in place, on NumPy or CuPy arrays.

    `step` counts this update (1 on the first); the learning rate decays as
    lr / (1 + (step - 1) * lr_decay).
    """
    xp = array_module(param)
    grad = decayed_grad(param, grad, weight_decay=weight_decay, maximize=maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += grad * grad
    std = xp.sqrt(state_sum)
    std += eps
    param -= clr * (grad / std)


class Adagrad(Optimizer):
    """Adaptive subgradient method (torch.optim.Adagrad).

    As in torch, the accumulators exist from construction (so `state_dict` lists them at once);
    unlike torch, a group's own `initial_accumulator_value` is honoured, not only the default.
    """

    _nonnegative = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].update(self._init_state(p, group))

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "sum": self._full_like(p, group["initial_accumulator_value"])}

    def _scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        return clr, group["weight_decay"], group["eps"]

    def _state_arrays(self, state: dict[str, Any], group: dict[str, Any]) -> tuple[Any]:
        return (state["sum"].array,)

    def _fused_update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any],
                      hp: Any) -> None:
        fused.adagrad(p.array, grad, *self._state_arrays(state, group), hp,
                      maximize=group["maximize"])

    def _reference_update(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        in_blocks(adagrad_step, p.array, grad, *self._state_arrays(state, group),
                  step=state["step"], lr=group["lr"], lr_decay=group["lr_decay"],
                  weight_decay=group["weight_decay"], eps=group["eps"],
                  maximize=group["maximize"])
