"""RMSprop, optionally centered and with momentum (torch.optim.RMSprop)."""
from __future__ import annotations

from typing import Any, Iterable

from ..backend import array_module
from ..cuda import optim as fused
from ..tensor import Tensor
from .optimizer import Optimizer, decayed_grad, in_blocks


def rmsprop_step(param: Any, grad: Any, square_avg: Any, grad_avg: Any | None,
                 momentum_buffer: Any | None, *, lr: float, alpha: float, eps: float,
                 weight_decay: float, momentum: float, maximize: bool) -> None:
    """One RMSprop update of `param` and its running averages, in place, on NumPy or CuPy.

    `grad_avg` is given when centered (the variance estimate then subtracts the squared mean);
    `momentum_buffer` when momentum > 0.
    """
    xp = array_module(param)
    grad = decayed_grad(param, grad, weight_decay=weight_decay, maximize=maximize)
    square_avg *= alpha
    square_avg += (1 - alpha) * grad * grad
    if grad_avg is not None:
        grad_avg += (1 - alpha) * (grad - grad_avg)
        avg = xp.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = xp.sqrt(square_avg)
    avg += eps
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        momentum_buffer += grad / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * (grad / avg)


class RMSprop(Optimizer):
    """Divides the gradient by a running root-mean-square of recent gradients
    (torch.optim.RMSprop)."""

    _nonnegative = ("lr", "eps", "momentum", "weight_decay", "alpha")

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        self._require(group["alpha"] <= 1, "alpha", group["alpha"], "alpha <= 1")

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = {"step": 0, "square_avg": self._full_like(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = self._full_like(p)
        if group["centered"]:
            state["grad_avg"] = self._full_like(p)
        return state

    def _scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        momentum = group["momentum"] if "momentum_buffer" in state else 0.0
        return group["lr"], group["alpha"], group["eps"], group["weight_decay"], momentum

    def _state_arrays(self, state: dict[str, Any],
                      group: dict[str, Any]) -> tuple[Any, Any | None, Any | None]:
        return (state["square_avg"].array,
                state["grad_avg"].array if group["centered"] else None,
                state["momentum_buffer"].array if group["momentum"] > 0 else None)

    def _fused_update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any],
                      hp: Any) -> None:
        fused.rmsprop(p.array, grad, *self._state_arrays(state, group), hp,
                      maximize=group["maximize"])

    def _reference_update(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        in_blocks(rmsprop_step, p.array, grad, *self._state_arrays(state, group), lr=group["lr"],
                  alpha=group["alpha"], eps=group["eps"],
                  weight_decay=group["weight_decay"], momentum=group["momentum"],
                  maximize=group["maximize"])
