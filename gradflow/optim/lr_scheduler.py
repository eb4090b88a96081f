"""Learning-rate schedulers (torch.optim.lr_scheduler), value for value like torch's.

A scheduler writes each param group's 'lr' when it is built (its step 0) and on every `step()`.
Most follow torch's recursive forms (each step scales the current lr), so they compose with
other changes to the lr; `_get_closed_form_lr` gives the value at `last_epoch` directly, which
SequentialLR uses when it hands over to the next scheduler at a milestone.
"""
from __future__ import annotations

import math
import types
from bisect import bisect_right
from collections import Counter
from typing import Any, Callable, Iterable, Sequence

from .. import argcheck
from .optimizer import Optimizer


def _check_optimizer(name: str, optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{name}: expected an Optimizer, got {type(optimizer).__name__}")


def _per_group(name: str, optimizer: Optimizer, arg: str, value: Any) -> list:
    """One value per param group: a scalar is repeated, a list must have one entry per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name}: {arg} has {len(value)} values but the optimizer has {n} "
                             "param groups")
        return list(value)
    return [value] * n


def _check_reals(name: str, arg: str, values: list, open_low: bool = False) -> None:
    """Check that each per-group value is >= 0 (> 0 with `open_low`); a list's entries are
    named arg[i]."""
    for i, v in enumerate(values):
        argcheck.real(name, arg if len(values) == 1 else f"{arg}[{i}]", v, 0, open_low=open_low)


class LRScheduler:
    """Base of the schedulers: records 'initial_lr' in each group, keeps `last_epoch`, and on
    `step()` writes `get_lr()` into the groups."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        _check_optimizer(type(self).__name__, optimizer)
        argcheck.integer(type(self).__name__, "last_epoch", last_epoch, minimum=-1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no "
                                   f"'initial_lr', needed to resume at last_epoch={last_epoch}; "
                                   "load the optimizer's state dict first")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Step 0, taken at construction; `_is_initial` lets recursive forms keep the lr."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for `last_epoch`, one per param group."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr()")

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler set last."""
        return self._last_lr

    def step(self) -> None:
        """Advance one epoch (or batch) and update the optimizer's learning rates."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._get_closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (which has its own state dict)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)

    def _group_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), one function or one per group (torch's LambdaLR)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable | Sequence[Callable],
                 last_epoch: int = -1) -> None:
        _check_optimizer("LambdaLR", optimizer)
        self.lr_lambdas = _per_group("LambdaLR", optimizer, "lr_lambda", lr_lambda)
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch (or one "
                                f"per param group), got {fn!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        """Plain functions are not saved (they cannot be); callable objects save their fields."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        for fn, saved in zip(self.lr_lambdas, state.pop("lr_lambdas")):
            if saved is not None:
                fn.__dict__.update(saved)
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """Multiply the lr by gamma every `step_size` epochs (torch's StepLR)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = argcheck.integer("StepLR", "step_size", step_size, minimum=1)
        argcheck.real("StepLR", "gamma", gamma, 0)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by gamma at each milestone epoch (torch's MultiStepLR)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        milestones = list(milestones)
        for i, m in enumerate(milestones):
            argcheck.integer("MultiStepLR", f"milestones[{i}]", m, minimum=0)
        argcheck.real("MultiStepLR", "gamma", gamma, 0)
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._group_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch (torch's ExponentialLR)."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        argcheck.real("ExponentialLR", "gamma", gamma, 0)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor moving linearly from `start_factor` to `end_factor` over
    `total_iters` epochs: the usual warm-up (torch's LinearLR)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        argcheck.real("LinearLR", "start_factor", start_factor, 0, 1, open_low=True)
        argcheck.real("LinearLR", "end_factor", end_factor, 0, 1)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = argcheck.integer("LinearLR", "total_iters", total_iters, minimum=1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._group_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        change = self.end_factor - self.start_factor
        # NOTE: the ratio of factor(t) to factor(t - 1), so the recursion lands on factor(t).
        ratio = 1.0 + change / (self.total_iters * self.start_factor
                                + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._group_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        change = self.end_factor - self.start_factor
        factor = (self.start_factor
                  + change * min(self.total_iters, self.last_epoch) / self.total_iters)
        return [base * factor for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal the lr from its initial value to `eta_min` along half a cosine over `T_max`
    epochs, in torch's recursive form (torch's CosineAnnealingLR)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        self.T_max = argcheck.integer("CosineAnnealingLR", "T_max", T_max, minimum=1)
        argcheck.real("CosineAnnealingLR", "eta_min", eta_min, 0)
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:
            return self._get_closed_form_lr()
        if (t - 1 - t_max) % (2 * t_max) == 0:
            # NOTE: the cosine's trough, where the ratio below would divide by zero.
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for lr, base in zip(self._group_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
        return [ratio * (lr - eta_min) + eta_min for lr in self._group_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run `schedulers` one after another, switching at each of `milestones` (one fewer than
    schedulers): LinearLR warm-up then CosineAnnealingLR, say (torch's SequentialLR)."""

    def __init__(self, optimizer: Optimizer, schedulers: list[LRScheduler],
                 milestones: list[int], last_epoch: int = -1) -> None:
        _check_optimizer("SequentialLR", optimizer)
        if not schedulers:
            raise ValueError("SequentialLR: expects at least one scheduler, got none")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR: scheduler {i} is a ReduceLROnPlateau, whose "
                                 "step needs a metric; it cannot be sequenced")
            if getattr(s, "optimizer", None) is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} ({type(s).__name__}) belongs to "
                                 "a different optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expects one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        for i, m in enumerate(milestones):
            argcheck.integer("SequentialLR", f"milestones[{i}]", m, minimum=0)
        if list(milestones) != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be sorted, got {milestones}")
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        # Each scheduler stepped once when it was built: restore the initial lrs, undo those
        # steps, and take step 0 with the first scheduler only.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        _undo_initial_step(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """Its own fields plus each wrapped scheduler's state dict."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        for s, saved in zip(self._schedulers, state.pop("_schedulers")):
            s.load_state_dict(saved)
        self.__dict__.update(state)


def _undo_initial_step(scheduler: LRScheduler) -> None:
    """Take back the step 0 that building a scheduler took, through nested SequentialLRs."""
    if isinstance(scheduler, SequentialLR):
        for s in scheduler._schedulers:
            _undo_initial_step(s)
    else:
        scheduler.last_epoch -= 1


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` when a metric has not improved for `patience` epochs
    (torch's ReduceLROnPlateau); `step(metric)` takes the metric."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | list[float] = 0,
                 eps: float = 1e-8) -> None:
        name = "ReduceLROnPlateau"
        argcheck.real(name, "factor", factor, 0)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor}")
        argcheck.choice(name, "mode", mode, ("min", "max"))
        argcheck.choice(name, "threshold_mode", threshold_mode, ("rel", "abs"))
        argcheck.integer(name, "patience", patience, minimum=0)
        argcheck.integer(name, "cooldown", cooldown, minimum=0)
        argcheck.real(name, "threshold", threshold, 0)
        argcheck.real(name, "eps", eps, 0)
        _check_optimizer(name, optimizer)
        self.optimizer = optimizer
        self.factor = factor
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.min_lrs = _per_group("ReduceLROnPlateau", optimizer, "min_lr", min_lr)
        _check_reals(name, "min_lr", self.min_lrs)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record this epoch's metric (a number or a one-element tensor) and maybe reduce."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._group_lrs()

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer now has {len(groups)} "
                                   f"param groups but min_lr gave {len(self.min_lrs)}; set "
                                   "min_lrs to one value per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def _is_better(self, a: float, best: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if rel else best - self.threshold)
        return a > (best * (1.0 + self.threshold) if rel else best + self.threshold)


class OneCycleLR(LRScheduler):
    """The 1cycle policy: lr rises from max_lr/div_factor to max_lr, then anneals far below the
    start, while momentum (or Adam's beta1) cycles the opposite way; step once per batch
    (torch's OneCycleLR)."""

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85,
                 max_momentum: float | list[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        _check_optimizer("OneCycleLR", optimizer)
        self.optimizer = optimizer
        self.total_steps = self._total_steps(total_steps, epochs, steps_per_epoch)
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be a float in [0, 1], got {pct_start}")
        argcheck.choice("OneCycleLR", "anneal_strategy", anneal_strategy, ("cos", "linear"))
        argcheck.real("OneCycleLR", "div_factor", div_factor, 0, open_low=True)
        argcheck.real("OneCycleLR", "final_div_factor", final_div_factor, 0, open_low=True)
        self.anneal_strategy = anneal_strategy
        warm_end = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        # Each phase: (end step, lr from, lr to, momentum from, momentum to).
        if three_phase:
            self._phases = [
                (warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (2 * warm_end, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (last, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (warm_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (last, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        groups = optimizer.param_groups
        max_lrs = _per_group("OneCycleLR", optimizer, "max_lr", max_lr)
        _check_reals("OneCycleLR", "max_lr", max_lrs, open_low=True)
        if last_epoch == -1:
            for group, top in zip(groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum needs an optimizer with momentum "
                                 f"or betas, and {type(optimizer).__name__} has neither")
            self.use_beta1 = "betas" in optimizer.defaults
            tops = _per_group("OneCycleLR", optimizer, "max_momentum", max_momentum)
            bases = _per_group("OneCycleLR", optimizer, "base_momentum", base_momentum)
            _check_reals("OneCycleLR", "max_momentum", tops)
            _check_reals("OneCycleLR", "base_momentum", bases)
            if last_epoch == -1:
                for group, top, base in zip(groups, tops, bases):
                    self._set_momentum(group, top)
                    group["max_momentum"] = top
                    group["base_momentum"] = base
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _total_steps(total_steps: int | None, epochs: int | None,
                     steps_per_epoch: int | None) -> int:
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"OneCycleLR: total_steps must be a positive integer, got "
                                 f"{total_steps}")
            return total_steps
        if epochs is None or steps_per_epoch is None:
            raise ValueError("OneCycleLR: give either total_steps or both epochs and "
                             "steps_per_epoch")
        for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"OneCycleLR: {name} must be a positive integer, got {value}")
        return epochs * steps_per_epoch

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        """The lrs for this step; as a side effect, also sets the cycled momentum."""
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, but total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end_step or i == len(self._phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
                    break
                start_step = end_step
        return lrs
