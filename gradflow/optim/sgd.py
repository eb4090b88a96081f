"""SGD with momentum, dampening, Nesterov momentum and weight decay (torch.optim.SGD)."""
from __future__ import annotations

from typing import Any, Iterable

from ..backend import array_module
from ..cuda import optim as fused
from ..tensor import Tensor
from .optimizer import Optimizer, decayed_grad, in_blocks


def sgd_step(param: Any, grad: Any, momentum_buffer: Any | None, *, lr: float, momentum: float,
             dampening: float, weight_decay: float, nesterov: bool, maximize: bool) -> Any:
    """One SGD update of `param` (and `momentum_buffer`) in place, on NumPy or CuPy arrays.

    Returns the momentum buffer, which the first step creates as a copy of the gradient (no
    dampening on that step), as torch does; None without momentum.
    """
    grad = decayed_grad(param, grad, weight_decay=weight_decay, maximize=maximize)
    if momentum != 0:
        if momentum_buffer is None:
            # NOTE: xp.array, not grad.copy(): NumPy turns -grad of a 0-d array into a scalar
            momentum_buffer = array_module(param).array(grad, copy=True)
        else:
            momentum_buffer *= momentum
            # NOTE: (1 - 0) * grad would copy the whole gradient for nothing
            momentum_buffer += grad if dampening == 0 else (1 - dampening) * grad
        grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * grad
    return momentum_buffer


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum (torch.optim.SGD)."""

    _nonnegative = ("lr", "momentum", "weight_decay")

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov momentum requires momentum > 0 and dampening = 0 "
                             f"(got momentum={group['momentum']!r}, "
                             f"dampening={group['dampening']!r})")

    def _scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        return group["lr"], group["momentum"], group["dampening"], group["weight_decay"]

    def _flags(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        return group["nesterov"], group["maximize"], "momentum_buffer" in state

    def _state_arrays(self, state: dict[str, Any], group: dict[str, Any]) -> tuple[Any | None]:
        buf = state.get("momentum_buffer")
        return (None if buf is None else buf.array,)

    def _fused_update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any],
                      hp: Any) -> None:
        first = group["momentum"] != 0 and state.get("momentum_buffer") is None
        if first:  # the kernel fills the buffer from the gradient without reading it
            state["momentum_buffer"] = Tensor._wrap(p._xp.empty_like(p.array))
        fused.sgd(p.array, grad, *self._state_arrays(state, group), hp,
                  nesterov=group["nesterov"], maximize=group["maximize"], first_step=first)

    def _reference_update(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        hyper = dict(lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                     weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                     maximize=group["maximize"])
        buf, = self._state_arrays(state, group)
        if buf is None and group["momentum"] != 0:  # the first step makes the buffer, whole
            state["momentum_buffer"] = Tensor._wrap(sgd_step(p.array, grad, None, **hyper))
            return
        in_blocks(sgd_step, p.array, grad, buf, **hyper)
