"""Optimizer: the base of every optimizer (torch.optim.Optimizer).

It owns what all optimizers share: parameter groups with per-group options, per-parameter state,
the step loop, `zero_grad`, and `state_dict`/`load_state_dict` in torch's format. For each
parameter the step picks the update once: the fused kernel (gradflow/cuda/optim.py) when a
hyperparameter row was written for it and `fusable` holds, else the reference rule, a function
on raw arrays that works in place on NumPy and CuPy alike. A subclass supplies its lazily
created state (`_init_state`), the state arrays its update writes (`_state_arrays`), the two
updates (`_fused_update`, `_reference_update`), and for the device tables its hyperparameter
row (`_scalars`) and by-value flags (`_flags`); gradflow/cuda/step_tables.py keeps the tables
and what a captured step needs replayed.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any, Callable, Iterable

import numpy as np

from .. import argcheck
from ..autograd.grad_mode import enable_grad
from ..backend import move_array, on_device
from ..cuda import optim as fused
from ..cuda import step_tables
from ..tensor import Tensor


class Optimizer:
    """Updates parameters from their `.grad`; `params` is an iterable of tensors or of dicts
    (param groups, each with its own options, the rest falling back to `defaults`)."""

    # Options that must be >= 0 (checked for every group, so per-group overrides are covered).
    _nonnegative: tuple[str, ...] = ()

    def __init__(self, params: Iterable, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(f"{self._name}: params should be an iterable of Tensors or dicts, "
                            "but got a Tensor; wrap it in a list")
        _check_ordered(self._name, params)
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])

    # -- parameter groups ---------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (fine-tuning unfreezes layers this way); unset options take defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: param_group must be a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: param_group has no 'params' entry")
        params = param_group["params"]
        _check_ordered(self._name, params)
        params = [params] if isinstance(params, Tensor) else list(params)
        index = len(self.param_groups)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, but parameter {i} of "
                                f"group {index} is a {type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor (parameter {i} "
                                 f"of group {index} has shape {tuple(p.shape)} and a grad_fn)")
            if id(p) in seen:
                raise ValueError(f"{self._name}: parameter {i} of group {index} (shape "
                                 f"{tuple(p.shape)}) appears more than once in the optimizer")
            seen.add(id(p))
        param_group["params"] = params
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self._check_group(param_group)
        self.param_groups.append(param_group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Reject bad hyper-parameters; subclasses add their own rules."""
        for arg in self._nonnegative:
            argcheck.real(self._name, arg, group[arg])
            self._require(group[arg] >= 0, arg, group[arg], f"{arg} >= 0")

    def _require(self, ok: bool, arg: str, value: Any, expected: str) -> None:
        if not ok:
            raise ValueError(f"{self._name}: invalid {arg} value {value!r}; expected {expected}")

    # -- stepping -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients, or with `set_to_none=False` replace them with zeros.

        NOTE: zeros are a fresh tensor rather than an in-place fill: autograd may hand several
        leaves the same gradient array, or a read-only broadcast view of one.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                with on_device(p.device):
                    p.grad = Tensor._wrap(p.grad._xp.zeros_like(p.grad.array))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; `closure` re-evaluates the loss first."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        todo = self._begin_step()
        rows = step_tables.for_step(self, todo)
        for (p, state, group), hp in zip(todo, rows):
            with on_device(p.device):
                self._update(p, p.grad.array, state, group, hp)
        return loss

    def _begin_step(self, stepped: list | None = None) -> list:
        """The host side of a step: (parameter, state, group) for each parameter with a
        gradient (or each of `stepped`, when a captured step replays), its state created on its
        first step and its step count advanced."""
        todo = []
        chosen = None if stepped is None else {id(p) for p in stepped}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None if chosen is None else id(p) not in chosen:
                    continue
                state = self.state[p]
                if not state:
                    with on_device(p.device):
                        state.update(self._init_state(p, group))
                if "step" in state:
                    state["step"] += 1
                p._version_box[0] += 1
                todo.append((p, state, group))
        return todo

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any],
                hp: Any | None) -> None:
        """Update `p.array` and its state in place, fused or reference, chosen here only: the
        fused kernel when the step wrote a hyperparameter row `hp` for `p` and the arrays
        allow (on the GPU, contiguous, one dtype), else the reference, which a capture
        refuses."""
        if hp is not None and fused.fusable(p.array, *self._state_arrays(state, group)):
            self._fused_update(p, grad, state, group, hp)
            return
        step_tables.check_reference_update(self, p)
        self._reference_update(p, grad, state, group)

    # -- what a subclass supplies -------------------------------------------------------------
    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The state a parameter starts with, created on its first step."""
        return {}

    def _state_arrays(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        """The state arrays the update writes, in the fused kernel's order (None for a slot
        this group does not use): `fusable` must hold for them, and a captured step bakes
        their addresses in."""
        raise NotImplementedError(f"{self._name} must define _state_arrays()")

    def _fused_update(self, p: Tensor, grad: Any, state: dict[str, Any],
                      group: dict[str, Any], hp: Any) -> None:
        """The update through the fused kernel, its hyperparameters read from row `hp`."""
        raise NotImplementedError(f"{self._name} must define _fused_update()")

    def _reference_update(self, p: Tensor, grad: Any, state: dict[str, Any],
                          group: dict[str, Any]) -> None:
        """The update through the NumPy/CuPy reference rule (the CPU's, and the fallback)."""
        raise NotImplementedError(f"{self._name} must define _reference_update()")

    def _scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        """The hyperparameter row the fused kernel reads for one parameter this step."""
        raise NotImplementedError(f"{self._name} must define _scalars()")

    def _flags(self, state: dict[str, Any], group: dict[str, Any]) -> tuple:
        """The options the fused kernel takes by value (fixed while a captured step replays)."""
        return tuple(v for v in group.values() if isinstance(v, bool))

    @staticmethod
    def _full_like(p: Tensor, value: float = 0.0) -> Tensor:
        """A state tensor shaped, typed and placed like the parameter."""
        return Tensor._wrap(p._xp.full_like(p.array, value))

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: per-parameter state}, 'param_groups': [options + 'params' as index
        lists]}, torch's format. Like torch, the state tensors are live references: save or
        deep-copy the result to keep a snapshot."""
        index: dict[int, int] = {}  # id of a parameter -> its number
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by `state_dict`; state tensors are copied onto each
        parameter's device (and floating dtype), so the source dict is never aliased."""
        where = f"{self._name}.load_state_dict"
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"{where}: the state dict has no {key!r} entry")
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: the state dict has {len(saved_groups)} parameter groups "
                             f"but the optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{where}: parameter group {i} has {len(saved['params'])} "
                                 f"parameters in the state dict but {len(group['params'])} in "
                                 "the optimizer")
        params = {k: p for saved, group in zip(saved_groups, self.param_groups)
                  for k, p in zip(saved["params"], group["params"])}
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for k, values in state_dict["state"].items():
            if k not in params:
                raise ValueError(f"{where}: the state dict has state for parameter {k!r}, which "
                                 "no parameter group lists")
            state[params[k]] = {name: _load_value(where, k, name, v, params[k])
                                for name, v in values.items()}
        for saved, group in zip(saved_groups, self.param_groups):
            saved["params"] = group["params"]
        self.state, self.param_groups = state, saved_groups


CACHE_BLOCK = 2**18  # elements per block: a rule's arrays and temporaries stay in cache


def in_blocks(rule: Callable, param: Any, grad: Any, *state: Any | None, **hyper: Any) -> None:
    """Run the elementwise in-place update `rule(param, grad, *state, **hyper)` block by block
    over flat views when the arrays are large C-contiguous NumPy arrays of one shape, else
    once on the whole arrays. A rule passes over its arrays several times and makes
    temporaries; a block at a time they stay in cache (an SGD momentum step over
    AlexNet-32's 23M parameters: 29 against 13 ms, same process). None slots stay None."""
    arrays = (param, grad) + tuple(a for a in state if a is not None)
    if (type(param) is not np.ndarray or param.size <= CACHE_BLOCK
            or not all(a.shape == param.shape and a.flags.c_contiguous for a in arrays)):
        rule(param, grad, *state, **hyper)
        return
    flat = [None if a is None else a.reshape(-1) for a in (param, grad) + state]
    for i in range(0, param.size, CACHE_BLOCK):
        rule(*(None if a is None else a[i:i + CACHE_BLOCK] for a in flat), **hyper)


def decayed_grad(param: Any, grad: Any, *, weight_decay: float, maximize: bool,
                 decoupled_lr: float | None = None) -> Any:
    """The gradient an update rule follows, on NumPy or CuPy arrays: negated with `maximize`,
    plus `weight_decay * param` (L2 decay). With `decoupled_lr` (AdamW's decoupled decay) the
    decay shrinks `param` in place by decoupled_lr * weight_decay instead, and the gradient is
    left as it is. The fused kernels share it as `decayed_grad` in kernels/optim.cu."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_lr is None:
            grad = grad + weight_decay * param
        else:
            param *= 1 - decoupled_lr * weight_decay
    return grad


def _check_ordered(name: str, params: Any) -> None:
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{name}: parameters must be an ordered collection, not a set (set "
                        "order changes between runs, and state_dict relies on it); use a list")


def _load_value(where: str, index: Any, name: str, value: Any, p: Tensor) -> Any:
    """One state entry, copied for parameter `p`: tensors onto its device, the step as an int."""
    if not isinstance(value, Tensor):
        return value
    if name == "step":
        return int(value.item())
    if value.shape != p.shape:
        raise ValueError(f"{where}: state {name!r} of parameter {index} has shape "
                         f"{tuple(value.shape)} but the parameter has shape {tuple(p.shape)}")
    arr = move_array(value.array, p.device)
    dtype = p.dtype if p.is_floating_point() else arr.dtype
    return Tensor._wrap(arr.astype(dtype, copy=True))
